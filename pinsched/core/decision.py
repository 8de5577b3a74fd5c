"""`Decision`: what is to happen to a job, as a value; `apply` turns it into the job's next
version and history entry (the only way a decision becomes a change).

A decision either moves the job to `to` (a transition `jobs.py` must allow) or changes it in
place (`to` is None, with a `reason`: an event with `from_state == to_state`), or leaves it as it
is (`LEAVE`, no commit). Beside the row it says what the shell does next: the pacer's effect, a
follow-up (look for the pin, delete it, PATCH it, refresh the token, look again later …) and
whether the attempt just made counts against the job's budget.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from pinsched.core.jobs import Job, JobError, JobState, Transition, touch, transition


class Pacer(enum.Enum):
    """What an outcome does to the account's pacer (`pacing.Pacer`)."""

    NONE = "none"
    SUCCESS = "success"  # the 429 streak ends
    RATE_LIMITED = "rate_limited"  # halve the write rate, hold writes `pacer_s`
    SPAM_BLOCKED = "spam_blocked"  # hold the whole account `pacer_s`


class FollowUp(enum.Enum):
    """What the shell does after committing (or instead of committing) a decision."""

    NONE = "none"
    RECONCILE = "reconcile"  # look for the pin on the board before anything is retried
    DELETE = "delete"  # delete the published pin (a cancel)
    PATCH = "patch"  # send the pin's pending change
    REFRESH = "refresh"  # refresh the account's token once, then decide again
    LOOK_AGAIN = "look_again"  # hand the job back to its dispatcher after `delay_s`
    SEND_AGAIN = "send_again"  # hand the job back to its dispatcher at once
    HOLD_ACCOUNT = "hold_account"  # Pinterest refuses the whole account: hold it
    NEEDS_REAUTH = "needs_reauth"  # mark the account NEEDS_REAUTH (reason: `note`)


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One decision about one job (see the module docstring)."""

    #: The state to move to; None: keep the state (a change in place when `reason` is set).
    to: JobState | None = None
    reason: str = ""
    #: Field changes (`Job` field names), applied with the move.
    changes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    #: The job is tried again (`next_attempt_at`) or looked at again this long after `now`.
    delay_s: float | None = None
    #: Whether the attempt just made counts (one not counted gives its attempt back).
    counts: bool = True
    pacer: Pacer = Pacer.NONE
    pacer_s: float = 0.0
    follow_up: FollowUp = FollowUp.NONE
    #: The error the follow-up carries (why a pin is looked for; what a refresh answers).
    error: JobError | None = None
    #: A note for the follow-up (the account's hold or re-auth reason).
    note: str = ""
    #: A second change committed with this one, in the same transaction.
    then: Decision | None = None

    @property
    def commits(self) -> bool:
        """Whether there is a change of the job to commit."""
        return self.to is not None or bool(self.reason)

    @property
    def retries_at(self) -> bool:
        """Whether `delay_s` sets the job's `next_attempt_at` (a move to RETRYING)."""
        return self.to is JobState.RETRYING


#: Leave the job as it is (nothing committed, nothing to do).
LEAVE: Final = Decision()


def apply(job: Job, decision: Decision, *, now: datetime) -> list[tuple[Job, Job, Transition]]:
    """The CAS changes `(old, new, entry)` that commit *decision* on *job* (empty: nothing to
    commit). Raises `IllegalTransition` when the table forbids the move."""
    out: list[tuple[Job, Job, Transition]] = []
    step: Decision | None = decision
    while step is not None and step.commits:
        changes = dict(step.changes)
        if step.retries_at and step.delay_s is not None:
            changes.setdefault("next_attempt_at", now + timedelta(seconds=step.delay_s))
        if not step.counts:
            changes["attempts"] = max(0, job.attempts - 1)
        if step.to is None:
            new, entry = touch(job, now=now, reason=step.reason, **changes)
        else:
            new, entry = transition(job, step.to, now=now, reason=step.reason, **changes)
        out.append((job, new, entry))
        job, step = new, step.then
    return out
