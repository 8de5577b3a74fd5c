"""Jobs for the tests of the pure decisions (`pinsched.core`): one per state, as the dispatcher
or a request would read it."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from pinsched.core.decision import Decision, apply
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec
from pinsched.core.retry import RetryPolicy

S = JobState
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def job(state: JobState = S.SUBMITTED, **changes: Any) -> Job:
    """A job in *state* planned at T0, one attempt made when it was sent."""
    sent = state not in (S.PENDING, S.QUEUED)
    base = Job(
        id="j1",
        account_id="acme",
        pin=PinSpec(board_id="b1", media=ImageUrl(url="https://example.com/a.jpg"), title="t"),
        state=state,
        scheduled_at=T0,
        planned_at=T0,
        attempts=1 if sent else 0,
        submitted_at=T0 if sent else None,
        pinterest_pin_id="p1" if state in (S.DELIVERED, S.CANCELLING) else "",
        created_at=T0 - timedelta(hours=1),
        updated_at=T0,
    )
    return dataclasses.replace(base, **changes)


def rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


def committed(j: Job, decision: Decision, now: datetime = T0) -> Job:
    """*j* after *decision* is applied (itself when there is nothing to commit)."""
    changes = apply(j, decision, now=now)
    return changes[-1][1] if changes else j
