"""The user's requests on a job, as decisions: CancelJob, RetryJob, UpdateJob (the "state by
operation" table of the README). Each takes the job as read and `now`, and returns the
`Decision` to commit, `LEAVE` (a harmless repeat), or raises `FailedPrecondition` naming the
state and what to do instead. Pausing is an account change (`core.accounts`): its effect on the
jobs is the scheduler's hold, not a decision about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from pinsched.core import flags
from pinsched.core.decision import LEAVE, Decision, FollowUp
from pinsched.core.errors import FailedPrecondition
from pinsched.core.jobs import UNSENT_STATES, Job, JobState, PinSpec, ScheduleSpec
from pinsched.core.video import current

S = JobState
#: Pin fields Pinterest lets us change after publishing (PinUpdate).
REMOTE_PATHS: Final = frozenset(
    {
        "pin.title",
        "pin.description",
        "pin.link",
        "pin.alt_text",
        "pin.board_id",
        "pin.board_section_id",
    }
)


def plan(spec: ScheduleSpec) -> datetime:
    """The publish time of *spec* on its own: its instant, or the middle of its window (the
    planner refines windowed jobs against the account's other plans)."""
    return spec.scheduled_at + spec.window / 2


def cancel(job: Job) -> Decision:
    """CancelJob in any state where it means something."""
    if job.state in (S.CANCELLED, S.CANCELLING) or (
        job.state is S.SUBMITTED and job.cancel_requested
    ):
        return LEAVE  # cancelling twice is harmless
    if job.state is S.PERMANENTLY_FAILED:
        raise FailedPrecondition(
            f"job {job.id!r} is PERMANENTLY_FAILED: it was never published and will not "
            "be retried, so there is nothing to cancel"
        )
    if job.state is S.SUBMITTED:
        return flags.request_cancel()
    if job.state is S.DELIVERED:
        return Decision(
            to=S.CANCELLING, reason="cancel requested: deleting the pin", follow_up=FollowUp.DELETE
        )
    return Decision(to=S.CANCELLED, reason="cancelled before submission")


def retry(job: Job, *, now: datetime) -> Decision:
    """RetryJob: a FAILED or PERMANENTLY_FAILED job goes round again with a fresh budget."""
    if job.state not in (S.FAILED, S.PERMANENTLY_FAILED):
        raise FailedPrecondition(
            f"job {job.id!r} is {job.state.value}; only FAILED or PERMANENTLY_FAILED "
            "jobs can be retried"
        )
    return Decision(
        to=S.PENDING,
        reason="retry requested",
        changes={"attempts": 0, "planned_at": max(now, job.planned_at), "next_attempt_at": None},
    )


def reauthorised(job: Job, *, now: datetime) -> Decision:
    """New credentials for the account: an auth-FAILED job goes back to PENDING."""
    return Decision(
        to=S.PENDING,
        reason="account re-authorised",
        changes={"planned_at": max(now, job.planned_at), "next_attempt_at": None},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    """A validated UpdateJob: the mask, the job's pin after it, and its new timing if the mask
    names one (`retry_for` when the mask names it)."""

    paths: Sequence[str]
    pin: PinSpec
    timing: ScheduleSpec | None = None
    retry_for: timedelta | None = None


def update(job: Job, request: Update) -> Decision:
    """UpdateJob according to the job's state: unsent jobs change at once (a QUEUED or RETRYING
    job whose time moved goes back to PENDING); a delivered pin's mutable fields are PATCHed
    (`remote_update`); anything else is FAILED_PRECONDITION."""
    paths = request.paths
    reason = f"updated: {', '.join(paths)}"
    if job.state in UNSENT_STATES:
        # The staging record (media id, upload target) of a video the pin no longer has goes
        # with it: an image keeps none, another video is staged anew.
        changes: dict[str, Any] = {
            "pin": request.pin,
            "media": current(job.media, request.pin.media),
        }
        if "retry_for" in paths:
            changes["retry_for"] = request.retry_for
        timing = request.timing
        if timing is not None:
            changes.update(
                scheduled_at=timing.scheduled_at,
                window=timing.window,
                local_time=timing.local_time,
                planned_at=plan(timing),
                slot=None,
            )
        moved = timing is not None and changes["planned_at"] != job.planned_at
        if moved and job.state in (S.QUEUED, S.RETRYING):
            changes["next_attempt_at"] = None
            return Decision(to=S.PENDING, reason=f"{reason}; re-planned", changes=changes)
        return Decision(reason=reason, changes=changes)
    if job.state is S.SUBMITTED:
        raise FailedPrecondition(
            f"job {job.id!r} is SUBMITTED: the outcome of its submission is being "
            "confirmed; update it again once it is DELIVERED or RETRYING"
        )
    if job.state is S.DELIVERED:
        fixed = [p for p in paths if p not in REMOTE_PATHS]
        if fixed:
            raise FailedPrecondition(
                f"job {job.id!r} is DELIVERED: {', '.join(fixed)} cannot change on a "
                "published pin; cancel the job (which deletes the pin) and schedule a "
                "new one"
            )
        return Decision(
            reason=f"{reason}; applying on Pinterest",
            changes={
                "pin": request.pin,
                "remote_update": flags.request_remote_update(job.remote_update, paths),
            },
            follow_up=FollowUp.PATCH,
        )
    raise FailedPrecondition(f"job {job.id!r} is {job.state.value}; it can no longer be updated")
