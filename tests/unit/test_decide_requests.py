"""The "state by operation" table of the README ("Changing plans: update, cancel, retry"), cell
by cell, over the pure decisions of `core.requests`: what UpdateJob (pin fields, time, media),
CancelJob and RetryJob do to a job in each state."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from pinsched.core import requests
from pinsched.core.decision import LEAVE, Decision, FollowUp
from pinsched.core.errors import FailedPrecondition
from pinsched.core.jobs import ImageUrl, Job, JobState, RemoteState, RemoteUpdate, ScheduleSpec
from tests.unit.decide_jobs import T0, committed, job

S = JobState
FP = "FP"  # FAILED_PRECONDITION
SAME = "same state"  # applied in place (version + 1)
NOTHING = "unchanged"  # a harmless repeat: same version, no event


def pin_fields(j: Job) -> requests.Update:
    return requests.Update(paths=["pin.title"], pin=dataclasses.replace(j.pin, title="new"))


def time(j: Job) -> requests.Update:
    at = T0 + timedelta(hours=3)
    spec = ScheduleSpec(account_id=j.account_id, pin=j.pin, scheduled_at=at)
    return requests.Update(paths=["scheduled_at"], pin=j.pin, timing=spec)


def media(j: Job) -> requests.Update:
    other = dataclasses.replace(j.pin, media=ImageUrl(url="https://example.com/b.jpg"))
    return requests.Update(paths=["pin.media_source"], pin=other)


def outcome(decide: object) -> str | JobState:
    """The table's word for a decision: its target state, SAME, NOTHING, or FP."""
    try:
        d = decide() if callable(decide) else decide
    except FailedPrecondition:
        return FP
    assert isinstance(d, Decision)
    if d is LEAVE or not d.commits:
        return NOTHING
    return SAME if d.to is None else d.to


TABLE: dict[JobState, tuple[object, object, object, object, object]] = {
    #                      pin fields     time         media        CancelJob     RetryJob
    S.PENDING: (SAME, SAME, SAME, S.CANCELLED, FP),
    S.QUEUED: (SAME, S.PENDING, SAME, S.CANCELLED, FP),
    S.SUBMITTED: (FP, FP, FP, SAME, FP),
    S.DELIVERED: (SAME, FP, FP, S.CANCELLING, FP),
    S.RETRYING: (SAME, S.PENDING, SAME, S.CANCELLED, FP),
    S.FAILED: (SAME, SAME, SAME, S.CANCELLED, S.PENDING),
    S.PERMANENTLY_FAILED: (FP, FP, FP, FP, S.PENDING),
    S.CANCELLING: (FP, FP, FP, NOTHING, FP),
    S.CANCELLED: (FP, FP, FP, NOTHING, FP),
}


@pytest.mark.parametrize("state", list(TABLE))
@pytest.mark.parametrize(
    ("column", "operation"),
    [
        (0, lambda j: requests.update(j, pin_fields(j))),
        (1, lambda j: requests.update(j, time(j))),
        (2, lambda j: requests.update(j, media(j))),
        (3, requests.cancel),
        (4, lambda j: requests.retry(j, now=T0)),
    ],
    ids=["update-pin-fields", "update-time", "update-media", "cancel", "retry"],
)
def test_each_cell_of_the_state_operation_table(
    state: JobState, column: int, operation: object
) -> None:
    """Each operation in each state decides what the README's table says (and a move the
    decision makes is one the transition table allows)."""
    j = job(state)
    got = outcome(lambda: operation(j))  # type: ignore[operator]
    assert got == TABLE[state][column]
    if got not in (FP, NOTHING):
        after = committed(j, operation(j))  # type: ignore[operator]
        assert after.version == j.version + 1
        assert after.state is (j.state if got == SAME else got)


def test_a_cancel_of_a_submitted_job_is_recorded_and_a_second_one_is_harmless() -> None:
    """CancelJob on SUBMITTED sets cancel_requested; again, it changes nothing."""
    after = committed(job(S.SUBMITTED), requests.cancel(job(S.SUBMITTED)))
    assert after.state is S.SUBMITTED
    assert after.cancel_requested
    assert requests.cancel(after) is LEAVE


def test_cancelling_a_delivered_pin_asks_for_its_delete() -> None:
    """CancelJob on DELIVERED moves to CANCELLING and asks the dispatcher for the delete."""
    assert requests.cancel(job(S.DELIVERED)).follow_up is FollowUp.DELETE


def test_updating_a_delivered_pin_asks_for_a_patch_with_a_new_revision() -> None:
    """An update of a delivered pin's fields is a pending remote update, one revision later,
    merged with a pending one's paths."""
    prior = RemoteUpdate(paths=("pin.link",), revision=2)
    j = job(S.DELIVERED, remote_update=prior)
    d = requests.update(j, pin_fields(j))
    assert d.follow_up is FollowUp.PATCH
    after = committed(j, d)
    assert after.remote_update == RemoteUpdate(paths=("pin.link", "pin.title"), revision=3)
    assert after.remote_update.state is RemoteState.PENDING
    assert after.pin.title == "new"


def test_a_retry_gives_a_fresh_budget_and_never_plans_in_the_past() -> None:
    """RetryJob resets the attempts and moves planned_at to now when it was earlier."""
    j = job(S.PERMANENTLY_FAILED, attempts=4)
    after = committed(j, requests.retry(j, now=T0 + timedelta(days=2)), T0 + timedelta(days=2))
    assert (after.attempts, after.planned_at) == (0, T0 + timedelta(days=2))


def test_a_time_update_of_a_retrying_job_drops_its_backoff() -> None:
    """A RETRYING job whose time moved goes back to PENDING without its next attempt time."""
    j = job(S.RETRYING, next_attempt_at=T0 + timedelta(minutes=5))
    after = committed(j, requests.update(j, time(j)))
    assert (after.state, after.next_attempt_at) == (S.PENDING, None)
    assert after.planned_at == T0 + timedelta(hours=3)
