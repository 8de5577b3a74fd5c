"""Why a job is where it is, and what happens next (ExplainJob). Pure: no I/O, no clock reads.

`explain(facts)` turns what the daemon knows about one job — the job row, its account, the
app's credential state, the account's live pace (`pace_wait`) and what its dispatcher remembers
— into an `Explanation`: a phase (waiting for its time, held, waiting for pacing, sending,
backing off, outcome unknown, remote change, needs the user, finished), the structured details
of that phase, and one sentence for a human.

The facts, the explanation and `pace_wait` are in `pinsched.core.explanation`.

A job whose video is being staged on Pinterest (`Job.media` STAGING, `pinsched.media.staging`) is in
its own phase, between "held" and "waiting for its time".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from pinsched.core import notes
from pinsched.core.accounts import AccountState
from pinsched.core.explanation import (
    RULE_WORDS,
    Explanation,
    Facts,
    Hold,
    Phase,
    human_delay,
)
from pinsched.core.jobs import ErrorCategory, Job, JobError, JobState

S = JobState


def _at(t: datetime, now: datetime) -> str:
    stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp} (in {human_delay(t - now)})" if t > now else f"{stamp} (now)"


def _hold(facts: Facts) -> tuple[Hold, str] | None:
    if facts.app_refused:
        return Hold.APP_CREDENTIALS_REFUSED, facts.app_refused
    account = facts.account
    if account is None:
        return None
    state = account.state
    if state is AccountState.NEEDS_REAUTH or not account.access_token:
        return Hold.ACCOUNT_NEEDS_REAUTH, account.state_reason
    if state is AccountState.HELD:
        return Hold.ACCOUNT_HELD, account.hold_reason or account.state_reason
    if state is AccountState.PAUSED:
        return Hold.ACCOUNT_PAUSED, account.state_reason
    return None


_HOLD_WORDS = {
    Hold.ACCOUNT_PAUSED: "its account is paused: resume it with UpdateAccount (paused=false)",
    Hold.ACCOUNT_NEEDS_REAUTH: "its account needs re-authorisation: give new tokens with "
    "UpdateAccount",
    Hold.ACCOUNT_HELD: "Pinterest refuses its account; it waits until UpdateAccount changes "
    "the tokens, api_base or ad_account_id",
    Hold.APP_CREDENTIALS_REFUSED: "Pinterest refuses the app's client credentials (check "
    "PINSCHED_PINTEREST_CLIENT_ID / _SECRET); every account waits",
}


def _last_reason(job: Job) -> str:
    return job.history[-1].reason if job.history else ""


def explain(facts: Facts) -> Explanation:
    """The explanation of `facts.job` at `facts.now`."""
    job, now = facts.job, facts.now
    base = Explanation(
        job_id=job.id,
        state=job.state,
        phase=Phase.FINISHED,
        summary="",
        explained_at=now,
        attempts=job.attempts,
        board_id=job.pin.board_id,
        last_error=job.last_error,
        pinterest_pin_id=job.pinterest_pin_id,
        retry_until=facts.retry_until if job.state not in _DONE else None,
    )
    out = _explain(facts, base)
    risk = notes.last_risk(job.history) if job.state is S.PENDING else ""
    if risk:
        out = _with(out, at_risk=risk, summary=f"{out.summary} At risk: {risk}.")
    return out


_DONE = frozenset({S.DELIVERED, S.CANCELLED, S.PERMANENTLY_FAILED, S.CANCELLING, S.FAILED})


def _with(base: Explanation, **changes: object) -> Explanation:
    return replace(base, **changes)  # type: ignore[arg-type]


def _explain(facts: Facts, base: Explanation) -> Explanation:
    job, now = facts.job, facts.now
    state = job.state
    if state in (S.PENDING, S.QUEUED, S.RETRYING) and (hold := _hold(facts)) is not None:
        reason, detail = hold
        said = f" ({detail})" if detail else ""
        return _with(
            base,
            phase=Phase.HELD,
            hold=reason,
            hold_detail=detail,
            summary=f"Held: {_HOLD_WORDS[reason]}{said}; nothing is sent until then.",
        )
    stage = job.media
    if state in (S.PENDING, S.QUEUED) and stage is not None and stage.state == "STAGING":
        step = stage.detail or stage.step or "started"
        when = (
            "its planned time has passed: it goes as soon as the video is ready"
            if job.planned_at <= now
            else f"planned {_at(job.planned_at, now)}"
        )
        return _with(
            base,
            phase=Phase.STAGING_MEDIA,
            looking_since=stage.started_at,
            summary=f"Staging its video on Pinterest since "
            f"{stage.started_at:%Y-%m-%dT%H:%M:%SZ} ({step}); {when}.",
        )
    if state is S.RETRYING or (
        state is S.QUEUED and job.send_at != job.planned_at and job.send_at > now
    ):
        # A retry moved to QUEUED just ahead of its time still backs off until then.
        at = job.send_at
        err = job.last_error
        why = f"after {_error_words(err)}" if err else "after a failure"
        left = human_delay(base.retry_left)
        return _with(
            base,
            phase=Phase.BACKOFF,
            next_action_at=at,
            summary=f"Backing off {why}: next try at {_at(at, now)}, attempt "
            f"{job.attempts + 1}; transient failures are retried for {left} "
            f"more (until {facts.retry_until:%Y-%m-%dT%H:%M:%SZ}).",
        )
    if state is S.PENDING or (state is S.QUEUED and job.planned_at > now):
        if job.planned_at > now:
            return _with(
                base,
                phase=Phase.WAITING_FOR_TIME,
                next_action_at=job.planned_at,
                summary=f"Waiting for its planned time {_at(job.planned_at, now)}.",
            )
        return _with(
            base,
            phase=Phase.SENDING,
            next_action_at=now,
            summary="Due now: being handed to its account's dispatcher.",
        )
    if state is S.QUEUED:
        return _queued(facts, base)
    if state is S.SUBMITTED:
        return _submitted(facts, base)
    if state is S.CANCELLING or (
        state is S.DELIVERED and job.remote_update is not None and job.remote_update.pending
    ):
        return _remote(facts, base)
    if state is S.FAILED:
        err = job.last_error
        return _with(
            base,
            phase=Phase.NEEDS_USER,
            outcome=_last_reason(job),
            summary=f"Needs you: {_error_words(err) if err else _last_reason(job)}; "
            "fix the cause, then RetryJob (or CancelJob).",
        )
    return _finished(facts, base)


def _queued(facts: Facts, base: Explanation) -> Explanation:
    now, pace = facts.now, facts.pace
    behind = (
        f" behind {facts.queue_position} other job(s) of its account"
        if facts.queue_position
        else ""
    )
    if pace is not None:
        at = now + timedelta(seconds=pace.seconds)
        return _with(
            base,
            phase=Phase.WAITING_FOR_PACING,
            rule=pace.rule,
            next_action_at=at,
            queue_position=facts.queue_position,
            summary=f"Due, waiting{behind} for {RULE_WORDS[pace.rule]}: it frees up "
            f"at {_at(at, now)}.",
        )
    return _with(
        base,
        phase=Phase.SENDING,
        next_action_at=now,
        queue_position=facts.queue_position,
        summary=f"Due and free to go: being sent now{behind}.",
    )


def _submitted(facts: Facts, base: Explanation) -> Explanation:
    job, now = facts.job, facts.now
    since = job.submitted_at or job.updated_at
    err = job.last_error
    if err is None or err.category is not ErrorCategory.OUTCOME_UNKNOWN:
        return _with(
            base,
            phase=Phase.SENDING,
            looking_since=since,
            summary=f"Sent at {since:%Y-%m-%dT%H:%M:%SZ} (attempt {job.attempts}); "
            "waiting for Pinterest's answer.",
        )
    nxt = facts.settle_at if facts.settle_at and facts.settle_at > now else None
    looks = (
        f"; {facts.failed_looks} failed read(s) of the board so far" if facts.failed_looks else ""
    )
    then = f", next look at {_at(nxt, now)}" if nxt else ""
    return _with(
        base,
        phase=Phase.OUTCOME_UNKNOWN,
        looking_since=since,
        failed_looks=facts.failed_looks,
        next_action_at=nxt,
        summary=f"Outcome unknown ({err.message}): looking for the pin on board "
        f"{job.pin.board_id} since {since:%Y-%m-%dT%H:%M:%SZ}{then}{looks}; "
        "nothing is re-sent before it is known.",
    )


def _remote(facts: Facts, base: Explanation) -> Explanation:
    job = facts.job
    update = job.remote_update
    if job.state is S.CANCELLING:
        what = f"Deleting published pin {job.pinterest_pin_id} on Pinterest (cancel)"
        err = job.last_error
    else:
        assert update is not None
        what = (
            f"Updating published pin {job.pinterest_pin_id} on Pinterest "
            f"({', '.join(update.paths)}; {update.attempts} attempt(s))"
        )
        err = update.error
    tail = f"; last error: {_error_words(err)}" if err else ""
    return _with(
        base,
        phase=Phase.REMOTE_CHANGE,
        outcome=_last_reason(job),
        last_error=err,
        summary=f"{what}{tail}; retried with backoff for up to an hour.",
    )


def _finished(facts: Facts, base: Explanation) -> Explanation:
    job = facts.job
    reason = _last_reason(job)
    if job.state is S.DELIVERED:
        late = f", {human_delay(job.late_by)} after its planned time" if job.late_by else ""
        when = f" at {job.delivered_at:%Y-%m-%dT%H:%M:%SZ}" if job.delivered_at else ""
        text = f"Finished: published as pin {job.pinterest_pin_id}{when}{late}."
    elif job.state is S.CANCELLED:
        text = f"Finished: cancelled ({reason})."
    else:
        err = job.last_error
        text = f"Finished: failed for good: {_error_words(err) if err else reason}."
    return _with(base, phase=Phase.FINISHED, outcome=reason, summary=text)


def _error_words(err: JobError) -> str:
    parts = [err.category.value.lower().replace("_", " ")]
    if err.http_status:
        parts.append(f"HTTP {err.http_status}")
    if err.pinterest_code:
        parts.append(f"code {err.pinterest_code}")
    return f"{' '.join(parts)}: {err.message}"
