"""What the answer to a DELETE of a cancelled job's pin does to the job (the decision about the
answer itself, retry or not, is `pinsched.core.remote_policy.decide`; a PATCH's is
`flags.patch_settled`).
Giving up leaves the pin live: the job goes back to DELIVERED with the error."""

from __future__ import annotations

from pinsched.core.decision import Decision
from pinsched.core.jobs import JobError, JobState

S = JobState


def deleted() -> Decision:
    """The pin is gone (a 2xx, or a 404: already gone)."""
    return Decision(to=S.CANCELLED, reason="pin deleted on Pinterest")


def delete_failed(err: JobError, *, refused: bool) -> Decision:
    """Pinterest *refused* the delete, or it was given up: the pin is still live."""
    verb = "refused" if refused else "given up"
    return Decision(
        to=S.DELIVERED,
        reason=f"delete {verb}, the pin is still live: {err.message}",
        changes={"last_error": err},
    )
