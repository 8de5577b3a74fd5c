"""Notes: event-log entries about a job that are neither a transition nor a change of the job.

`job.at_risk` and `job.at_risk_cleared` (the checks ahead of a pin's moment,
`pinsched.checks.at_risk`) are recorded as events whose `from_state` and `to_state` are the job's
current state and whose reason starts with `AT_RISK` / `AT_RISK_CLEARED`. Unlike a `touch`, a note
leaves the job row alone (no new version, no compare-and-set that could race a publish), so the
state machine never sees it; the webhook type comes from the reason's prefix. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pinsched.core.jobs import Job, Transition

AT_RISK: Final = "at risk: "
AT_RISK_CLEARED: Final = "at risk cleared: "
AT_RISK_TYPE: Final = "job.at_risk"
AT_RISK_CLEARED_TYPE: Final = "job.at_risk_cleared"


def note_type(entry: Transition) -> str | None:
    """The webhook type of a note, or None for any other entry."""
    if entry.from_state is not entry.to_state:
        return None
    if entry.reason.startswith(AT_RISK):
        return AT_RISK_TYPE
    if entry.reason.startswith(AT_RISK_CLEARED):
        return AT_RISK_CLEARED_TYPE
    return None


def is_note(entry: Transition) -> bool:
    return note_type(entry) is not None


def history_at(history: tuple[Transition, ...], version: int) -> tuple[Transition, ...]:
    """*history* (a job's event log, in order) as of the job's *version*: its first *version*
    changes and the notes among and after them, without a later version's change. A log read
    a moment after the job's row may already hold one (they are two reads)."""
    changes = 0
    for i, entry in enumerate(history):
        if not is_note(entry):
            if changes == version:
                return history[:i]
            changes += 1
    return history


def at_risk(job: Job, now: datetime, reason: str, *, cleared: bool = False) -> Transition:
    """The note that *job* is at risk for *reason* (or, *cleared*, no longer is)."""
    return Transition(
        from_state=job.state,
        to_state=job.state,
        time=now,
        reason=(AT_RISK_CLEARED if cleared else AT_RISK) + reason,
        attempt=job.attempts,
    )


def last_risk(history: tuple[Transition, ...]) -> str:
    """The reason *history* last said the job is at risk, "" when it is not (or was cleared)."""
    for entry in reversed(history):
        kind = note_type(entry)
        if kind == AT_RISK_TYPE:
            return entry.reason.removeprefix(AT_RISK)
        if kind == AT_RISK_CLEARED_TYPE:
            return ""
    return ""
