"""What video staging does to a job (`pinsched.media.staging` runs the steps): a step recorded
on the job, a failure for good, and parking a job whose video is not ready at publish time.

    record   → `media` changed in place (while the job still stages that very video)
    failed   → `media` FAILED, and the job PERMANENTLY_FAILED (category MEDIA) while unsent
    park     → a QUEUED job whose video is not READY goes back to PENDING ("waiting for its
               video"); staging hands it to the scheduler once it is
"""

from __future__ import annotations

import dataclasses

from pinsched.core.decision import LEAVE, Decision
from pinsched.core.jobs import ACTIVE_STATES, Job, JobError, JobState
from pinsched.core.video import FAILED, READY, MediaStage, current, is_staged, source_key

S = JobState
#: Reasons of the staging events; `webhook_format` types the events by them.
REASON_STAGING = "media staging"
REASON_READY = "media ready"
REASON_FAILED = "media failed"


def video_ready(job: Job) -> bool:
    """Whether *job* can be sent as far as its media goes (no video to stage, or it is READY)."""
    if not is_staged(job.pin.media):
        return True
    stage = current(job.media, job.pin.media)
    return stage is not None and stage.state == READY


def waits_for_video(job: Job) -> bool:
    """Whether *job* is parked for its video (PENDING, its video not READY)."""
    return job.state is S.PENDING and not video_ready(job)


def park(job: Job) -> Decision:
    """At publish time: a job whose video is not READY goes back to PENDING; else LEAVE."""
    if video_ready(job):
        return LEAVE
    stage = current(job.media, job.pin.media)
    detail = stage.detail if stage is not None else "staging not started"
    return Decision(to=S.PENDING, reason=f"waiting for its video: {detail}")


def stages(job: Job, source: str) -> bool:
    """Whether *job* is still active and staging the video *source* (a step is recorded on it
    only then)."""
    media = job.pin.media
    return job.state in ACTIVE_STATES and is_staged(media) and source_key(media) == source  # type: ignore[arg-type]


def record(stage: MediaStage, reason: str) -> Decision:
    """A staging step recorded on the job, in place."""
    return Decision(reason=reason, changes={"media": stage})


def failed(job: Job, stage: MediaStage, error: JobError) -> Decision:
    """The video failed for good: recorded on the job, and an unsent job fails with it."""
    marked = dataclasses.replace(stage, state=FAILED, detail=error.message)
    then = None
    if job.state in (S.PENDING, S.QUEUED, S.RETRYING):
        then = Decision(
            to=S.PERMANENTLY_FAILED,
            reason=f"video failed: {error.message}",
            changes={"last_error": error, "next_attempt_at": None},
        )
    return Decision(
        reason=f"{REASON_FAILED}: {error.message}", changes={"media": marked}, then=then
    )


def fails(job: Job) -> bool:
    """Whether a media failure still concerns *job* (active, with the video it staged)."""
    return job.state in ACTIVE_STATES and current(job.media, job.pin.media) is not None
