"""What a Pinterest answer to a create does to the job (the failure table of the README), one
pure function per kind of answer; `dispatch.outcome.decide` picks the function for a classified
answer (`pinterest.classify`).

    delivered        → DELIVERED with the pin id (the 429 streak ends)
    rate_limited     → RETRYING after the hint (else exponential in the account's 429 streak);
                       the account is held back as long and its write rate halves; not counted
    spam_blocked     → RETRYING after a long cool-down of the whole account; not counted
    auth_expired     → one token refresh (REFRESH, then `after_refresh`); refused again right
                       after a refresh: FAILED and the account NEEDS_REAUTH; never counted
    account_refused  → the account is HELD; the job RETRYING at once, not counted
    rejected         → PERMANENTLY_FAILED with Pinterest's code and message
    backoff          → RETRYING with backoff until the job's retry deadline (by time, not
                       count), then PERMANENTLY_FAILED (EXHAUSTED)
    unknown          → RECONCILE before anything is retried

A recorded cancel is carried out on the job as it is committed (`flags.carry_out_cancel`).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime

from pinsched.core.decision import Decision, FollowUp, Pacer
from pinsched.core.jobs import ErrorCategory, Job, JobError, JobState
from pinsched.core.retry import RetryPolicy, rate_limit_delay_s, retry_deadline

S = JobState
#: The reason of a job failed because its account must be authorised again.
REAUTHORISE = "authorisation failed: re-authorise the account with UpdateAccount"
NOT_COUNTED = "(attempt not counted)"


def retry(err: JobError, delay_s: float, reason: str, *, counts: bool) -> Decision:
    """RETRYING after *delay_s* with *err* as the last error."""
    return Decision(
        to=S.RETRYING,
        reason=reason,
        changes={"last_error": err},
        delay_s=delay_s,
        counts=counts,
    )


def finish(to: JobState, reason: str, err: JobError, *, counts: bool = True) -> Decision:
    """A settled failure (*to*: FAILED or PERMANENTLY_FAILED) with *err*."""
    return Decision(
        to=to,
        reason=reason,
        changes={"last_error": err, "next_attempt_at": None},
        counts=counts,
    )


def delivered(pin_id: str, reason: str, *, now: datetime, success: bool = False) -> Decision:
    """The pin *pin_id* is the job's (*success*: Pinterest said so; the 429 streak ends)."""
    return Decision(
        to=S.DELIVERED,
        reason=reason,
        changes={
            "pinterest_pin_id": pin_id,
            "delivered_at": now,
            "last_error": None,
            "next_attempt_at": None,
        },
        pacer=Pacer.SUCCESS if success else Pacer.NONE,
    )


def unknown(err: JobError) -> Decision:
    """The request may have reached Pinterest: look for the pin before anything else."""
    return Decision(follow_up=FollowUp.RECONCILE, error=err)


def no_pin_id() -> Decision:
    """A 2xx without a pin id: as an unknown outcome."""
    return unknown(
        JobError(
            category=ErrorCategory.OUTCOME_UNKNOWN,
            retryable=True,
            message="Pinterest answered 2xx without a pin id",
        )
    )


def rate_limited(
    err: JobError,
    hint_s: float | None,
    *,
    strikes: int,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    """A 429, the account's (*strikes* + 1)-th in a row."""
    delay = rate_limit_delay_s(hint_s, strikes + 1, rng, policy=policy)
    why = (
        f"rate limited: retry after {hint_s:g} s as told"
        if hint_s is not None
        else f"rate limited ({strikes + 1} in a row): backing off"
    )
    return replace(
        retry(err, delay, f"{why} {NOT_COUNTED}", counts=False),
        pacer=Pacer.RATE_LIMITED,
        pacer_s=hint_s if hint_s is not None else delay,
    )


def spam_blocked(err: JobError, cooldown_s: float) -> Decision:
    """A spam block: the whole account cools down."""
    why = f"spam block: account cooling down for {cooldown_s:g} s {NOT_COUNTED}"
    return replace(
        retry(err, cooldown_s, why, counts=False), pacer=Pacer.SPAM_BLOCKED, pacer_s=cooldown_s
    )


def account_refused(err: JobError) -> Decision:
    """Pinterest refuses the whole account (not this pin): hold the account, not the job."""
    return replace(
        retry(err, 0.0, f"held: Pinterest refuses the whole account {NOT_COUNTED}", counts=False),
        follow_up=FollowUp.HOLD_ACCOUNT,
        note=f"Pinterest refuses the account: {err.message} (code {err.pinterest_code})",
    )


def rejected(err: JobError) -> Decision:
    return finish(S.PERMANENTLY_FAILED, f"rejected: {err.message}", err)


def auth_expired(job: Job, err: JobError) -> Decision:
    """A 401: refresh once (REFRESH, then `after_refresh`); refused again with a token refreshed
    for this very job (its last error is that 401): FAILED, and the account NEEDS_REAUTH."""
    previous = job.last_error
    if (
        previous is not None
        and previous.category is ErrorCategory.AUTH
        and previous.http_status == 401
        and previous.retryable
    ):
        reason = f"a freshly refreshed access token was refused too: {err.message}"
        failed = replace(err, message=reason, retryable=False)
        return replace(
            finish(S.FAILED, f"{REAUTHORISE} {NOT_COUNTED}", failed, counts=False),
            follow_up=FollowUp.NEEDS_REAUTH,
            note=reason,
        )
    return Decision(follow_up=FollowUp.REFRESH, error=err)


def after_refresh(
    job: Job,
    err: JobError,
    *,
    refreshed: bool,
    client_refused: bool = False,
    permanent: bool = False,
    refresh_error: JobError | None = None,
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random,
) -> Decision:
    """After the refresh an `auth_expired` asked for: granted → RETRYING at once; the app's
    client credentials refused → held (not the account's fault); refused for good → FAILED;
    a transient failure of the refresh → as a transient failure of the create."""
    if refreshed:
        return retry(err, 0.0, f"access token refreshed {NOT_COUNTED}", counts=False)
    failure = refresh_error or err
    if client_refused:
        return retry(
            failure,
            0.0,
            f"held: Pinterest refuses the app's client credentials {NOT_COUNTED}",
            counts=False,
        )
    if permanent:
        return finish(S.FAILED, f"{REAUTHORISE} {NOT_COUNTED}", failure, counts=False)
    return backoff(job, failure, policy=policy, now=now, rng=rng, note="token refresh failed: ")


def backoff(
    job: Job,
    err: JobError,
    *,
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random,
    note: str = "",
) -> Decision:
    """A transient failure: retried with backoff until the job's retry deadline (by time, not
    by count); past it, PERMANENTLY_FAILED (EXHAUSTED) with the last error."""
    deadline = retry_deadline(
        planned_at=job.planned_at, window_end=job.window_end, retry_for=job.retry_for
    )
    at = policy.next_attempt_at(job.attempts, now=now, deadline=deadline, rng=rng)
    if at is None:
        why = (
            f"{job.attempts} attempts failed"
            if policy.exhausted(job.attempts)
            else f"{job.attempts} attempts failed by {deadline:%Y-%m-%dT%H:%M:%SZ}, the end "
            "of its retry budget"
        )
        exhausted = JobError(
            category=ErrorCategory.EXHAUSTED,
            message=f"{why}; last: {err.message}",
            http_status=err.http_status,
            pinterest_code=err.pinterest_code,
            pinterest_request_id=err.pinterest_request_id,
        )
        return finish(S.PERMANENTLY_FAILED, f"{note}retry budget spent", exhausted)
    return retry(err, (at - now).total_seconds(), f"{note}{err.message}", counts=True)
