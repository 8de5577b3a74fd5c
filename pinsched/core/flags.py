"""The two flags a job carries beside its state, handled here and nowhere else:

* `cancel_requested`: a cancel that arrived while the job was SUBMITTED. It is recorded in place
  (`request_cancel`) and carried out on the outcome (`carry_out_cancel`): a pin that landed is
  deleted (CANCELLING), anything else ends CANCELLED ("never published").
* `remote_update`: a change of a delivered pin's fields to PATCH on Pinterest. An UpdateJob
  merges into the pending one with a new revision (`request_remote_update`); the PATCH's answer
  settles it only while the revision it sent is the latest (`patch_settled`), else the newer one
  is sent; a retry bumps its attempts (`patch_retry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from pinsched.core.decision import Decision, FollowUp
from pinsched.core.jobs import Job, JobError, JobState, RemoteState, RemoteUpdate

S = JobState
#: What a pin that was never published ends as when a recorded cancel is carried out.
NEVER_PUBLISHED = "cancelled (never published)"
#: The outcomes a recorded cancel turns into CANCELLED.
_UNPUBLISHED = frozenset({S.RETRYING, S.FAILED, S.PERMANENTLY_FAILED})


def request_cancel() -> Decision:
    """A cancel of a SUBMITTED job: recorded, carried out once the outcome is known."""
    return Decision(
        reason="cancel requested: carried out once the outcome of the submission is known",
        changes={"cancel_requested": True},
    )


def carry_out_cancel(job: Job, decision: Decision) -> Decision:
    """*decision* (an outcome of *job*'s submission) with a recorded cancel carried out."""
    if not job.cancel_requested or decision.to is None:
        return decision
    if decision.to is S.DELIVERED:
        return replace(
            decision,
            to=S.CANCELLING,
            reason=f"{decision.reason}; cancel requested: deleting the pin",
            follow_up=FollowUp.DELETE,
        )
    if decision.to in _UNPUBLISHED:
        return replace(
            decision,
            to=S.CANCELLED,
            reason=NEVER_PUBLISHED,
            changes={"last_error": decision.changes.get("last_error")},
            delay_s=None,
            counts=True,
            follow_up=FollowUp.NONE,
        )
    return decision


def request_remote_update(prior: RemoteUpdate | None, paths: Sequence[str]) -> RemoteUpdate:
    """The remote change after an UpdateJob of *paths*: merged into a pending one, one revision
    later (so an answer to an older PATCH does not settle it)."""
    merged = tuple(sorted(set(paths) | (set(prior.paths) if prior and prior.pending else set())))
    return RemoteUpdate(paths=merged, revision=(prior.revision + 1) if prior else 1)


def awaits_patch(job: Job) -> bool:
    """Whether *job*'s pin has a change to PATCH now (not one waiting for its backoff: that one
    has an error and a timer)."""
    update = job.remote_update
    return (
        job.state is S.DELIVERED and update is not None and update.pending and update.error is None
    )


def patch_settled(
    job: Job,
    sent: RemoteUpdate,
    *,
    ok: bool,
    refused: bool,
    attempts: int,
    error: JobError | None,
) -> Decision:
    """A PATCH of revision `sent.revision` is done (*ok*) or given up: APPLIED or FAILED on the
    job; when a newer update arrived meanwhile, nothing is recorded and the newer one is sent."""
    current = job.remote_update
    if current is None or current.revision != sent.revision:
        return Decision(follow_up=FollowUp.SEND_AGAIN)
    done = replace(
        current,
        state=RemoteState.APPLIED if ok else RemoteState.FAILED,
        attempts=attempts,
        error=error,
    )
    verb = "refused by Pinterest" if refused else "given up"
    why = (
        "pin updated on Pinterest"
        if ok
        else f"update {verb}, the pin keeps its old values: "
        f"{error.message if error else 'unknown error'}"
    )
    return Decision(reason=why, changes={"remote_update": done})


def patch_retry(
    job: Job, sent: RemoteUpdate, *, attempts: int, error: JobError | None, now: datetime
) -> Decision:
    """A PATCH that is tried again: its attempts and error recorded, `failing_since` kept."""
    current = job.remote_update or sent
    return Decision(
        reason=f"update of the pin will be retried: {error.message if error else ''}",
        changes={
            "remote_update": replace(
                current,
                attempts=attempts,
                error=error,
                failing_since=current.failing_since or now,
            )
        },
    )
