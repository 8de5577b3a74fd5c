"""Where a committed job goes next: one rule, fed with every committed change
(`dispatch.router.Router`).

    PENDING, RETRYING          → HEAP: the scheduler indexes it by its due time (an account that
                                 cannot publish holds it when it is due)
    PENDING, its video not ready and its time come
                               → UNTRACK: staging hands it back once the video is READY
    CANCELLING                 → DISPATCH: its dispatcher deletes the pin
    DELIVERED with a change to PATCH (not one waiting for its backoff)
                               → DISPATCH: its dispatcher sends the PATCH
    anything else              → UNTRACK: QUEUED and SUBMITTED jobs are their dispatcher's
                                 already; settled ones need nothing
"""

from __future__ import annotations

import enum
from datetime import datetime

from pinsched.core import flags
from pinsched.core.jobs import Job, JobState
from pinsched.core.staging import waits_for_video

S = JobState


class Route(enum.Enum):
    HEAP = "heap"
    DISPATCH = "dispatch"
    UNTRACK = "untrack"


def route(job: Job, *, now: datetime) -> Route:
    """Where *job*, as just committed, goes (see the module docstring)."""
    if job.state in (S.PENDING, S.RETRYING):
        if waits_for_video(job) and job.planned_at <= now:
            return Route.UNTRACK
        return Route.HEAP
    if job.state is S.CANCELLING or flags.awaits_patch(job):
        return Route.DISPATCH
    return Route.UNTRACK
