"""The SSE `event:` name of a JobEvent is the webhook type of the same history entry, including
entries that keep the state and are told apart by their reason (media staging, at risk)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pinsched.api import convert as cv
from pinsched.core.jobs import JobState, Transition
from pinsched.core.notes import AT_RISK, AT_RISK_CLEARED
from pinsched.http.sse import EventFormatter
from pinsched.webhooks.messages import event_type

S = JobState
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ENTRIES = [
    Transition(from_state=None, to_state=S.PENDING, time=AT, reason="scheduled"),
    Transition(from_state=S.PENDING, to_state=S.QUEUED, time=AT, reason="due"),
    Transition(from_state=S.SUBMITTED, to_state=S.DELIVERED, time=AT, reason="created pin 1"),
    Transition(
        from_state=S.PENDING,
        to_state=S.PENDING,
        time=AT,
        reason="media staging: uploading the video",
    ),
    Transition(from_state=S.PENDING, to_state=S.PENDING, time=AT, reason="media ready: video 42"),
    Transition(
        from_state=S.PENDING, to_state=S.PENDING, time=AT, reason="media failed: upload refused"
    ),
    Transition(
        from_state=S.PENDING,
        to_state=S.PENDING,
        time=AT,
        reason=f"{AT_RISK}the token expires before the post",
    ),
    Transition(
        from_state=S.PENDING,
        to_state=S.PENDING,
        time=AT,
        reason=f"{AT_RISK_CLEARED}the token was renewed",
    ),
    Transition(from_state=S.PENDING, to_state=S.PENDING, time=AT, reason="title changed"),
]


def _frame_event(frame: bytes) -> str:
    line = next(ln for ln in frame.decode().split("\n") if ln.startswith("event: "))
    return line.removeprefix("event: ")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.reason)
def test_event_name_is_the_webhook_type(entry: Transition) -> None:
    """A frame's `event:` equals `event_type` of its history entry (the reason included)."""
    proto = cv.event_to_proto(
        7, "01JOB", "acme", entry.from_state, entry.to_state, entry.time, entry.reason, None
    )
    assert _frame_event(EventFormatter()(proto)) == event_type(entry)


def test_media_ready_is_not_a_plain_update() -> None:
    """A `media ready` entry is named `job.media_ready`, not `job.updated` (the old name)."""
    entry = ENTRIES[4]
    proto = cv.event_to_proto(
        8, "01JOB", "acme", entry.from_state, entry.to_state, entry.time, entry.reason, None
    )
    assert _frame_event(EventFormatter()(proto)) == "job.media_ready"
