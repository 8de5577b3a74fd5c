"""The decision for a classified answer to a create (`pinterest.classify`): picks the rule of
`core.outcomes` for each kind of answer. Pure (no I/O, no clock); it lives beside the dispatcher
because the answer types are the Pinterest client's."""

from __future__ import annotations

import random
from datetime import datetime

from pinsched.core import outcomes, tokens
from pinsched.core.decision import Decision
from pinsched.core.jobs import Job
from pinsched.core.retry import RetryPolicy
from pinsched.pinterest import client as pt


def decide(
    job: Job,
    outcome: pt.Outcome,
    *,
    strikes: int,
    spam_cooldown_s: float,
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random,
) -> Decision:
    """What *outcome* (the answer to *job*'s create) does; *strikes* is the account's 429s in
    a row before it."""
    match outcome:
        case pt.Delivered() if outcome.pin_id:
            return outcomes.delivered(outcome.pin_id, "published", now=now, success=True)
        case pt.Delivered():
            return outcomes.no_pin_id()
        case pt.RateLimited(error=err, retry_after_s=hint):
            return outcomes.rate_limited(err, hint, strikes=strikes, policy=policy, rng=rng)
        case pt.SpamBlocked(error=err):
            return outcomes.spam_blocked(err, spam_cooldown_s)
        case pt.AuthExpired(error=err):
            return outcomes.auth_expired(job, err)
        case pt.Rejected(error=err) if tokens.account_refusal(err):
            return outcomes.account_refused(err)
        case pt.Rejected(error=err):
            return outcomes.rejected(err)
        case pt.Unavailable(error=err):
            return outcomes.backoff(job, err, policy=policy, now=now, rng=rng)
        case pt.OutcomeUnknown(error=err):
            return outcomes.unknown(err)
    raise AssertionError(f"unknown outcome {outcome!r}")
