"""Tests of `pinsched.core.jobs`: the transition table against DESIGN §3, and the job value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pinsched.core.errors import IllegalTransition
from pinsched.core.jobs import (
    ACTIVE_STATES,
    SETTLED_STATES,
    TRANSITIONS,
    UNSENT_STATES,
    ErrorCategory,
    ImageUrl,
    Job,
    JobError,
    JobState,
    PinSpec,
    can_transition,
    touch,
    transition,
)

S = JobState
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

#: Every arrow drawn in DESIGN §3, written out one by one.
DESIGN_ARROWS = frozenset(
    {
        (S.PENDING, S.QUEUED),
        (S.QUEUED, S.SUBMITTED),
        (S.SUBMITTED, S.DELIVERED),
        (S.SUBMITTED, S.RETRYING),
        (S.RETRYING, S.QUEUED),
        (S.SUBMITTED, S.PERMANENTLY_FAILED),
        (S.SUBMITTED, S.FAILED),
        (S.PENDING, S.CANCELLED),
        (S.QUEUED, S.CANCELLED),
        (S.RETRYING, S.CANCELLED),
        (S.FAILED, S.CANCELLED),
        (S.QUEUED, S.PENDING),
        (S.RETRYING, S.PENDING),
        (S.SUBMITTED, S.CANCELLING),
        (S.SUBMITTED, S.CANCELLED),
        (S.DELIVERED, S.CANCELLING),
        (S.CANCELLING, S.CANCELLED),
        (S.FAILED, S.PENDING),
        (S.PERMANENTLY_FAILED, S.PENDING),
    }
)
#: Arrows the table adds to the drawing, each with its documented reason.
EXTRA_ARROWS = frozenset(
    {
        (S.CANCELLING, S.DELIVERED),  # Pinterest refused the delete for good: the pin stays live
        # The job's video failed staging (Pinterest's processing failed) before any send.
        (S.PENDING, S.PERMANENTLY_FAILED),
        (S.QUEUED, S.PERMANENTLY_FAILED),
        (S.RETRYING, S.PERMANENTLY_FAILED),
    }
)
FORBIDDEN_SAMPLE = [
    (S.DELIVERED, S.PENDING),
    (S.DELIVERED, S.SUBMITTED),
    (S.PENDING, S.DELIVERED),
    (S.PENDING, S.SUBMITTED),
    (S.QUEUED, S.DELIVERED),
    (S.SUBMITTED, S.PENDING),
    (S.SUBMITTED, S.QUEUED),
    (S.PERMANENTLY_FAILED, S.CANCELLED),
    (S.PERMANENTLY_FAILED, S.QUEUED),
    (S.FAILED, S.QUEUED),
    (S.CANCELLING, S.PENDING),
    *((S.CANCELLED, s) for s in JobState),
    *((s, s) for s in JobState),
]


def make_job(state: JobState = S.PENDING, **changes: object) -> Job:
    values: dict[str, object] = {
        "id": "job-1",
        "account_id": "acme",
        "pin": PinSpec(board_id="123", media=ImageUrl(url="https://example.com/a.jpg")),
        "state": state,
        "scheduled_at": T0,
        "planned_at": T0,
        "created_at": T0,
        "updated_at": T0,
        **changes,
    }
    return Job(**values)  # type: ignore[arg-type]


def table_arrows() -> frozenset[tuple[JobState, JobState]]:
    return frozenset((src, dst) for src, dsts in TRANSITIONS.items() for dst in dsts)


@pytest.mark.parametrize(("src", "dst"), sorted(DESIGN_ARROWS))
def test_every_design_arrow_is_allowed(src: JobState, dst: JobState) -> None:
    """Each arrow of DESIGN §3 is in the table and `transition` performs it."""
    assert can_transition(src, dst)
    job, entry = transition(make_job(src), dst, now=T0 + timedelta(seconds=1), reason="test")
    assert job.state is dst
    assert (entry.from_state, entry.to_state) == (src, dst)


def test_table_is_exactly_the_design_plus_documented_extras() -> None:
    """The table holds the design's arrows and the documented extras, and nothing else."""
    assert table_arrows() == DESIGN_ARROWS | EXTRA_ARROWS
    assert set(TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(("src", "dst"), FORBIDDEN_SAMPLE)
def test_forbidden_moves_raise(src: JobState, dst: JobState) -> None:
    """Moves the design does not draw raise IllegalTransition naming both states."""
    job = make_job(src)
    with pytest.raises(IllegalTransition) as info:
        transition(job, dst, now=T0 + timedelta(seconds=1), reason="test")
    assert (info.value.src, info.value.dst) == (src.value, dst.value)
    assert job.state is src
    assert job.version == 1


def test_cancelled_is_the_only_terminal_state() -> None:
    """CANCELLED has no way out; every other state has at least one."""
    assert [s for s, dsts in TRANSITIONS.items() if not dsts] == [S.CANCELLED]


def test_state_groups_partition_the_states() -> None:
    """Active and settled states split all states; unsent states were never sent to Pinterest."""
    assert set(JobState) == ACTIVE_STATES | SETTLED_STATES
    assert not ACTIVE_STATES & SETTLED_STATES
    assert S.SUBMITTED not in UNSENT_STATES
    assert S.DELIVERED not in UNSENT_STATES


def test_touch_keeps_the_state_and_records_the_event() -> None:
    """`touch` bumps the version and records a from == to history entry with the reason."""
    job = make_job(S.DELIVERED)
    later = T0 + timedelta(minutes=5)
    new, entry = touch(job, now=later, reason="pin patched", pinterest_pin_id="42")
    assert (new.state, new.version, new.updated_at, new.pinterest_pin_id) == (
        S.DELIVERED, 2, later, "42",
    )  # fmt: skip
    assert (entry.from_state, entry.to_state, entry.reason, entry.time) == (
        S.DELIVERED, S.DELIVERED, "pin patched", later,
    )  # fmt: skip


def test_state_and_version_cannot_be_smuggled_in_changes() -> None:
    """Passing `state` or `version` as a change is refused."""
    job = make_job()
    with pytest.raises(ValueError, match="state, version and updated_at"):
        touch(job, now=T0, reason="x", state=S.DELIVERED)
    with pytest.raises(ValueError, match="state, version and updated_at"):
        transition(job, S.QUEUED, now=T0, reason="x", version=7)


def test_error_is_recorded_except_on_delivery() -> None:
    """A transition carrying `last_error` records it, except a move to DELIVERED."""
    error = JobError(category=ErrorCategory.UNAVAILABLE, message="502", http_status=502)
    job = make_job(S.SUBMITTED, attempts=1)
    retrying, entry = transition(job, S.RETRYING, now=T0, reason="5xx", last_error=error)
    assert entry.error == error
    assert entry.attempt == 1
    assert retrying.last_error == error
    _, delivered = transition(job, S.DELIVERED, now=T0, reason="ok", last_error=error)
    assert delivered.error is None


def test_due_at_follows_the_state() -> None:
    """PENDING is due at planned_at, RETRYING at next_attempt_at, other states never."""
    retry_at = T0 + timedelta(minutes=3)
    assert make_job(S.PENDING).due_at == T0
    assert make_job(S.RETRYING, next_attempt_at=retry_at).due_at == retry_at
    assert make_job(S.RETRYING).due_at == T0
    for state in set(JobState) - {S.PENDING, S.RETRYING}:
        assert make_job(state).due_at is None


def test_window_end_adds_the_window() -> None:
    """window_end is scheduled_at plus the window."""
    assert make_job(window=timedelta(hours=2)).window_end == T0 + timedelta(hours=2)


def test_job_error_dict_round_trip() -> None:
    """A JobError survives to_dict/from_dict unchanged (the store keeps it as JSON)."""
    error = JobError(
        category=ErrorCategory.REJECTED,
        message="Board not found.",
        http_status=404,
        pinterest_code=40,
        retryable=False,
        pinterest_request_id="rid",
    )
    assert JobError.from_dict(error.to_dict()) == error


class TransitionMachine(RuleBasedStateMachine):
    """Walks the table at random: legal moves succeed, illegal ones change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.job = make_job()
        self.now = T0
        self.history: list[JobState] = [S.PENDING]

    def _tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    @rule(dst=st.sampled_from(list(JobState)))
    def move(self, dst: JobState) -> None:
        before = self.job
        now = self._tick()
        if can_transition(before.state, dst):
            after, entry = transition(before, dst, now=now, reason=f"to {dst}")
            assert after.state is dst
            assert after.version == before.version + 1
            assert after.updated_at == now
            assert (entry.from_state, entry.to_state, entry.time) == (before.state, dst, now)
            assert after.id == before.id
            assert after.pin == before.pin
            self.job = after
            self.history.append(dst)
        else:
            with pytest.raises(IllegalTransition):
                transition(before, dst, now=now, reason=f"to {dst}")
            assert self.job is before

    @rule()
    def touch_it(self) -> None:
        before = self.job
        after, entry = touch(before, now=self._tick(), reason="update")
        assert after.state is before.state
        assert after.version == before.version + 1
        assert entry.from_state is entry.to_state is before.state
        self.job = after

    @invariant()
    def cancelled_is_terminal(self) -> None:
        if S.CANCELLED in self.history:
            assert self.job.state is S.CANCELLED
            assert self.history[-1] is S.CANCELLED

    @invariant()
    def every_step_was_a_table_arrow(self) -> None:
        for src, dst in zip(self.history, self.history[1:], strict=False):
            assert dst in TRANSITIONS[src]


TestTransitionMachine = TransitionMachine.TestCase
TestTransitionMachine.settings = settings(max_examples=150, stateful_step_count=30, database=None)


def test_send_at_is_the_retry_time_only_when_it_is_after_the_plan() -> None:
    """A queued retry is sent at its retry time; a retry time left from before the job went
    back to PENDING and was planned later does not pull the send earlier."""
    retry_at = T0 + timedelta(seconds=30)
    assert make_job(S.QUEUED).send_at == T0
    assert make_job(S.QUEUED, next_attempt_at=retry_at).send_at == retry_at
    later = T0 + timedelta(hours=1)
    assert make_job(S.QUEUED, planned_at=later, next_attempt_at=retry_at).send_at == later
