"""What to do after a write to a published pin: a DELETE (cancel) or a PATCH (update). Pure: the
caller passes the outcome, the time and a random source.

    Delivered (2xx); a 404 on a DELETE      → DONE (a 404 means the pin is already gone)
    Rejected (any other 4xx)               → REFUSED at once, with Pinterest's code and message
    AuthExpired, first time in this run    → REFRESH the token once, then send again
    AuthExpired after that refresh         → GIVE_UP: never loops on the token endpoint
    RateLimited                            → RETRY after `Retry-After` (else exponential in the
                                             account's 429 streak); not counted as an attempt
    SpamBlocked, Unavailable, OutcomeUnknown → RETRY with full-jitter backoff
    a retry due past `failing_since + give_up_after_s` → GIVE_UP with the last error

Giving up leaves the pin live: a cancel returns the job to DELIVERED with `last_error`, an update
is marked FAILED. Applying the decision (and pacing the write bucket) is the dispatcher's job.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pinsched.core import answers as pt
from pinsched.core.jobs import ErrorCategory, JobError
from pinsched.core.retry import RetryPolicy, rate_limit_delay_s

#: How long a delete or PATCH of a published pin is retried before pinsched gives up.
GIVE_UP_AFTER_S: Final = 3600.0


class Action(enum.Enum):
    DONE = "done"
    REFUSED = "refused"
    REFRESH = "refresh"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteDecision:
    action: Action
    error: JobError | None = None
    delay_s: float = 0.0
    counted: bool = True  # a RETRY that counts as an attempt (a 429 does not)
    rate_limited: bool = False  # the account's write rate must slow down (429)
    hint_s: float | None = None  # Pinterest's Retry-After, if any


def decide(
    outcome: pt.Outcome,
    *,
    delete: bool,
    now: datetime,
    failing_since: datetime | None,
    attempts: int,
    refreshed: bool,
    strikes: int,
    policy: RetryPolicy,
    rng: random.Random,
    give_up_after_s: float = GIVE_UP_AFTER_S,
) -> RemoteDecision:
    """The decision for one answer (see the module docstring). *failing_since* is when this
    operation first failed (None: this is its first failure), *attempts* the counted attempts
    so far (this one included), *strikes* the account's 429s in a row before this answer."""
    if isinstance(outcome, pt.Delivered):
        return RemoteDecision(action=Action.DONE)
    err = outcome.error
    if isinstance(outcome, pt.Rejected):
        if delete and err.http_status == 404:
            return RemoteDecision(action=Action.DONE)
        return RemoteDecision(action=Action.REFUSED, error=err)
    if isinstance(outcome, pt.AuthExpired):
        if not refreshed:
            return RemoteDecision(action=Action.REFRESH, error=err)
        return RemoteDecision(
            action=Action.GIVE_UP,
            error=JobError(
                category=ErrorCategory.AUTH,
                http_status=err.http_status,
                pinterest_code=err.pinterest_code,
                pinterest_request_id=err.pinterest_request_id,
                message=f"a freshly refreshed access token was refused too: {err.message}",
            ),
        )
    since = failing_since or now
    if isinstance(outcome, pt.RateLimited):
        delay = rate_limit_delay_s(outcome.retry_after_s, strikes + 1, rng, policy=policy)
        decision = RemoteDecision(
            action=Action.RETRY,
            error=err,
            delay_s=delay,
            counted=False,
            rate_limited=True,
            hint_s=outcome.retry_after_s,
        )
    else:
        delay = policy.backoff_s(max(1, attempts), rng)
        decision = RemoteDecision(action=Action.RETRY, error=err, delay_s=delay)
    if now + timedelta(seconds=decision.delay_s) > since + timedelta(seconds=give_up_after_s) or (
        decision.counted and policy.exhausted(attempts)
    ):
        waited = (now - since).total_seconds()
        return RemoteDecision(
            action=Action.GIVE_UP,
            error=JobError(
                category=err.category,
                http_status=err.http_status,
                pinterest_code=err.pinterest_code,
                pinterest_request_id=err.pinterest_request_id,
                retryable=False,
                message=f"gave up after {waited:.0f} s of failures; last: {err.message}",
            ),
        )
    return decision
