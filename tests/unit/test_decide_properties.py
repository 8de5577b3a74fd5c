"""Properties of the pure decisions (`pinsched.core`), over generated jobs and answers:

* a job with a cancel requested never publishes;
* an attempt that does not count never exhausts the budget;
* a terminal job never changes state except by an explicit retry.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pinsched.core import flags, outcomes, requests, settle
from pinsched.core import staging as staging_rules
from pinsched.core.decision import Decision, FollowUp, apply
from pinsched.core.errors import FailedPrecondition
from pinsched.core.jobs import ErrorCategory, Job, JobError, JobState, ScheduleSpec
from pinsched.core.reconcile import Ambiguous
from pinsched.core.retry import RetryPolicy
from pinsched.core.route import Route, route
from pinsched.core.video import STAGING, MediaStage
from pinsched.dispatch.outcome import decide
from pinsched.pinterest import client as pt
from tests.unit.decide_jobs import T0, job

S = JobState
TERMINAL = (S.PERMANENTLY_FAILED, S.CANCELLED)

errors = st.builds(
    JobError,
    # What Pinterest's answers carry: EXHAUSTED is pinsched's own verdict.
    category=st.sampled_from([c for c in ErrorCategory if c is not ErrorCategory.EXHAUSTED]),
    message=st.text(max_size=20),
    http_status=st.sampled_from([0, 400, 401, 403, 404, 408, 429, 500, 503]),
    pinterest_code=st.sampled_from([0, 1, 2, 3, 8, 9, 29, 1104, 2787]),
    retryable=st.booleans(),
)
answers = st.one_of(
    st.builds(pt.Delivered, st.fixed_dictionaries({"id": st.sampled_from(["p1", "p2"])})),
    st.just(pt.Delivered({})),
    st.builds(pt.RateLimited, errors, st.one_of(st.none(), st.floats(0, 3600))),
    st.builds(pt.SpamBlocked, errors),
    st.builds(pt.AuthExpired, errors),
    st.builds(pt.Rejected, errors),
    st.builds(pt.Unavailable, errors),
    st.builds(pt.OutcomeUnknown, errors),
)
policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(0, 5),
    base_delay_s=st.floats(0.1, 60),
    max_delay_s=st.floats(60, 7200),
)
later = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))
submitted_jobs = st.builds(
    lambda attempts, last_error, retry_for, cancel: job(
        S.SUBMITTED,
        attempts=attempts,
        last_error=last_error,
        retry_for=retry_for,
        cancel_requested=cancel,
    ),
    st.integers(1, 50),
    st.one_of(st.none(), errors),
    st.one_of(st.none(), st.timedeltas(timedelta(minutes=1), timedelta(days=30))),
    st.booleans(),
)


def all_decisions(
    j: Job, answer: pt.Outcome, policy: RetryPolicy, elapsed: timedelta, seed: int
) -> list[Decision]:
    """Every decision the core can make about *j*'s submission answered *answer*: the answer's
    own, what a refresh leads to, and what a reconciliation concludes."""
    now, rng = T0 + elapsed, random.Random(seed)
    first = decide(
        j, answer, strikes=seed % 5, spam_cooldown_s=21600.0, policy=policy, now=now, rng=rng
    )
    out = [first]
    err = first.error or JobError(category=ErrorCategory.OUTCOME_UNKNOWN, message="x")
    if first.follow_up is FollowUp.REFRESH:
        out += [
            outcomes.after_refresh(
                j, err, refreshed=r, client_refused=c, permanent=p, policy=policy, now=now, rng=rng
            )
            for r, c, p in [
                (True, False, False),
                (False, True, False),
                (False, False, True),
                (False, False, False),
            ]
        ]
    if first.follow_up is FollowUp.RECONCILE:
        for found in (
            "p7",
            Ambiguous(("p7", "p8")),
            settle.Search.ABSENT,
            settle.Search.INCONCLUSIVE,
        ):
            out.append(
                settle.after_search(
                    j,
                    err,
                    found,
                    read_started=now,
                    settle_at=T0 + timedelta(seconds=35),
                    policy=policy,
                    now=now,
                    rng=rng,
                )
            )
        failed = settle.after_read_failure(err, failures=settle.MAX_FAILURES, problem="down")
        assert failed is not None
        out.append(failed)
    return out


@settings(max_examples=300, deadline=None)
@given(submitted_jobs, answers, policies, later, st.integers(0, 10_000))
def test_a_job_with_a_cancel_requested_never_publishes(
    j: Job, answer: pt.Outcome, policy: RetryPolicy, elapsed: timedelta, seed: int
) -> None:
    """Whatever Pinterest answers, a SUBMITTED job with a cancel recorded is never sent again:
    it ends CANCELLED, or its landed pin is deleted (CANCELLING), or it stays SUBMITTED."""
    j = dataclasses.replace(j, cancel_requested=True)
    for d in all_decisions(j, answer, policy, elapsed, seed):
        final = flags.carry_out_cancel(j, d)
        assert final.to in (None, S.CANCELLED, S.CANCELLING)
        if final.to is S.CANCELLING:
            assert final.follow_up is FollowUp.DELETE
        changes = apply(j, final, now=T0 + elapsed)
        after = changes[-1][1] if changes else j
        assert after.state in (S.SUBMITTED, S.CANCELLED, S.CANCELLING)
        assert route(after, now=T0 + elapsed) is not Route.HEAP  # never due again


@settings(max_examples=300, deadline=None)
@given(submitted_jobs, answers, policies, later, st.integers(0, 10_000))
def test_an_attempt_that_does_not_count_never_exhausts_the_budget(
    j: Job, answer: pt.Outcome, policy: RetryPolicy, elapsed: timedelta, seed: int
) -> None:
    """A decision whose attempt does not count never ends the job as EXHAUSTED, and gives
    the attempt the send took back (the count never grows)."""
    j = dataclasses.replace(j, cancel_requested=False)
    for d in all_decisions(j, answer, policy, elapsed, seed):
        if d.counts:
            continue
        changes = apply(j, d, now=T0 + elapsed)
        after = changes[-1][1] if changes else j
        assert after.attempts == j.attempts - 1
        assert after.state is not S.PERMANENTLY_FAILED
        assert after.last_error is None or after.last_error.category is not ErrorCategory.EXHAUSTED


requests_on = st.sampled_from(
    ["cancel", "update-title", "update-time", "stage", "fail-video", "retry"]
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TERMINAL), requests_on, later)
def test_a_terminal_job_never_changes_state_except_by_an_explicit_retry(
    state: JobState, request: str, elapsed: timedelta
) -> None:
    """On a PERMANENTLY_FAILED or CANCELLED job every decision is refused or keeps the state,
    except RetryJob (PENDING, from PERMANENTLY_FAILED); nothing routes it anywhere."""
    j = job(state)
    now = T0 + elapsed
    stage = MediaStage(state=STAGING, source="url:x", started_at=T0)
    spec = ScheduleSpec(account_id=j.account_id, pin=j.pin, scheduled_at=now + timedelta(hours=1))
    make: Callable[[], Decision] = {
        "cancel": lambda: requests.cancel(j),
        "update-title": lambda: requests.update(j, requests.Update(paths=["pin.title"], pin=j.pin)),
        "update-time": lambda: requests.update(
            j, requests.Update(paths=["scheduled_at"], pin=j.pin, timing=spec)
        ),
        "stage": lambda: staging_rules.record(stage, "media staging: started"),
        "fail-video": lambda: staging_rules.failed(
            j, stage, JobError(category=ErrorCategory.MEDIA, message="bad")
        ),
        "retry": lambda: requests.retry(j, now=now),
    }[request]
    assert route(j, now=now) is Route.UNTRACK
    try:
        changes = apply(j, make(), now=now)
    except FailedPrecondition:
        return  # refused (an illegal move is refused too)
    states = {new.state for _, new, _ in changes}
    if request == "retry":
        assert states == {S.PENDING}
        assert state is S.PERMANENTLY_FAILED
    else:
        assert states <= {state}
