"""Settling a job whose request may have reached Pinterest, from what the board listing showed
(`reconcile.py` finds the candidates; this decides).

    found            → DELIVERED with that pin id
    inconclusive     → FAILED: the listing could not prove that no pin was created
    ambiguous, late  → FAILED naming the pins that could each be the job's
    ambiguous, early → stays SUBMITTED (a note), looked at again once the request cannot land
    absent, late     → as a transient failure (`outcomes.backoff`)
    absent, early    → stays SUBMITTED (a note), looked at again once the request cannot land
    unreadable       → stays SUBMITTED, looked at again with backoff; after `MAX_FAILURES`
                       looks in a row FAILED, for the user (never retried blindly)

"Late" means the listing started once the request could no longer land or be hidden by read
lag (`settle_at`: the submission plus the request timeout and the read lag).
"""

from __future__ import annotations

import enum
import random
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from pinsched.core import outcomes
from pinsched.core.decision import Decision, FollowUp
from pinsched.core.jobs import ErrorCategory, Job, JobError, JobState
from pinsched.core.retry import RetryPolicy

if TYPE_CHECKING:  # (`reconcile` reads Pinterest's time format through the client module)
    from pinsched.core.reconcile import Ambiguous

S = JobState
#: Upper bound of the wait between two looks for a pin whose board could not be read.
MAX_DELAY_S = 300.0
#: Failed looks in a row (about an hour of backoff) before a SUBMITTED job is handed to the user.
MAX_FAILURES = 30
NEEDS_A_LOOK = "outcome unknown: needs a look"


class Search(enum.Enum):
    """A board listing that found no pin of the job: it proved the absence, or could not."""

    ABSENT = "absent"
    INCONCLUSIVE = "inconclusive"


def interrupted() -> JobError:
    """Why a job found SUBMITTED at start-up is looked for."""
    return JobError(
        category=ErrorCategory.OUTCOME_UNKNOWN,
        retryable=True,
        message="interrupted while submitted (the daemon stopped)",
    )


def after_search(
    job: Job,
    err: JobError,
    found: str | Ambiguous | Search,
    *,
    read_started: datetime,
    settle_at: datetime,
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random,
) -> Decision:
    """The decision after a listing that started at *read_started* found *found*."""
    if isinstance(found, str):
        return outcomes.delivered(found, "reconciled: the pin was found on the board", now=now)
    if found is Search.INCONCLUSIVE:
        unsure = replace(
            err,
            message=f"{err.message}; the board listing could not prove "
            "that no pin was created: check the board, then RetryJob",
            retryable=False,
        )
        return outcomes.finish(S.FAILED, NEEDS_A_LOOK, unsure)
    late_enough = read_started >= settle_at
    if not isinstance(found, Search):  # Ambiguous: several pins could each be the job's
        ids = ", ".join(found.pin_ids)
        if late_enough:
            unsure = replace(
                err,
                retryable=False,
                message=f"{err.message}; pins {ids} "
                "could each be this job's (no title, description, link or alt "
                "text to tell them apart): check the board, then RetryJob or "
                "CancelJob",
            )
            return outcomes.finish(S.FAILED, "outcome unknown: ambiguous, needs a look", unsure)
        note = (
            f"ambiguous: pins {ids} could each be this job's; none claimed, looking "
            "again once the request can no longer land"
        )
    elif late_enough:
        return outcomes.backoff(
            job, err, policy=policy, now=now, rng=rng, note="reconciled: no pin on the board; "
        )
    else:
        note = f"outcome unknown ({err.message}): looking for the pin before any retry"
    # The request may still land (or be hidden by read lag): look again once it cannot.
    return Decision(
        reason=note,
        changes={"last_error": err},
        delay_s=max((settle_at - now).total_seconds(), 0.001),
        follow_up=FollowUp.LOOK_AGAIN,
        error=err,
    )


def after_read_failure(err: JobError, *, failures: int, problem: str) -> Decision | None:
    """The board could not be read (*problem*) after *failures* failed looks in a row: FAILED
    for the user once there were `MAX_FAILURES`, else None (look again with backoff)."""
    if failures < MAX_FAILURES:
        return None
    unsure = replace(
        err,
        message=f"{err.message}; the board could not be read to look "
        f"for the pin ({problem}): check the board, then RetryJob",
        retryable=False,
    )
    return outcomes.finish(S.FAILED, NEEDS_A_LOOK, unsure)


def look_again_s(failures: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Backoff before the (*failures* + 1)-th look for a pin after failed reads."""
    return min(MAX_DELAY_S, policy.base_delay_s + policy.backoff_s(failures, rng))
