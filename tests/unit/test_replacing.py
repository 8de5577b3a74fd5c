"""`core.replacing.replacer` is `dataclasses.replace`, faster: the same copy for `Job` (the
changed fields, every other field the same object), the same TypeError for a name that is not
a field, and `dataclasses.replace` itself for a class with `__post_init__`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pinsched.core.jobs import ImageUrl, Job, JobError, JobState, PinSpec, transition
from pinsched.core.replacing import replacer

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
JOB = Job(
    id="j",
    account_id="a",
    state=JobState.QUEUED,
    pin=PinSpec(board_id="1", media=ImageUrl(url="https://example.com/a.jpg")),
    scheduled_at=NOW,
    planned_at=NOW,
    created_at=NOW,
    updated_at=NOW,
)


def test_a_job_copy_equals_dataclasses_replace() -> None:
    """Changed fields take the new values (None included), every other field is the same
    object as before, and the result equals `dataclasses.replace`'s."""
    changes: dict[str, Any] = {
        "state": JobState.RETRYING,
        "attempts": 3,
        "next_attempt_at": NOW + timedelta(minutes=1),
        "last_error": JobError.from_dict({"category": "UNAVAILABLE", "message": "down"}),
        "late_by": None,
    }
    fast = replacer(Job)(JOB, changes)
    assert fast == dataclasses.replace(JOB, **changes)
    assert type(fast) is Job
    for name in Job.__dataclass_fields__:
        if name not in changes:
            assert getattr(fast, name) is getattr(JOB, name), name
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.attempts = 4  # type: ignore[misc]


def test_a_state_change_goes_through_it() -> None:
    """`transition` (every state change) yields the version, time and fields asked for."""
    new, entry = transition(JOB, JobState.SUBMITTED, now=NOW, reason="attempt 1", attempts=1)
    assert (new.state, new.version, new.attempts, new.pin) == (
        JobState.SUBMITTED,
        JOB.version + 1,
        1,
        JOB.pin,
    )
    assert new.pin is JOB.pin
    assert entry.to_state is JobState.SUBMITTED


def test_an_unknown_field_is_a_type_error() -> None:
    """A name that is not a field of the class raises TypeError naming it."""
    with pytest.raises(TypeError, match="no field"):
        replacer(Job)(JOB, {"atempts": 1})


@dataclasses.dataclass(frozen=True)
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


def test_a_class_with_post_init_keeps_its_checks() -> None:
    """For a class with `__post_init__` the copy still runs it (dataclasses.replace)."""
    assert replacer(Checked)(Checked(1), {"value": 2}) == Checked(2)
    with pytest.raises(ValueError, match="negative"):
        replacer(Checked)(Checked(1), {"value": -1})
