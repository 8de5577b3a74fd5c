"""Reconciliation results (`core.settle`), deletes (`core.remote`), PATCHes (`core.flags`),
video staging (`core.staging`) and the route of a committed job (`core.route`), as pure
decisions."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from pinsched.core import flags, settle
from pinsched.core import remote as remote_rules
from pinsched.core import staging as staging_rules
from pinsched.core.decision import FollowUp
from pinsched.core.jobs import ErrorCategory, Job, JobError, JobState, RemoteState, RemoteUpdate
from pinsched.core.reconcile import Ambiguous
from pinsched.core.route import Route, route
from pinsched.core.video import READY, STAGING, MediaStage, VideoUrl, source_key
from tests.unit.decide_jobs import POLICY, T0, committed, job, rng

S = JobState
ERR = JobError(category=ErrorCategory.OUTCOME_UNKNOWN, retryable=True, message="HTTP 503")
SETTLE_AT = T0 + timedelta(seconds=35)
EARLY, LATE = T0 + timedelta(seconds=1), T0 + timedelta(seconds=40)


@pytest.mark.parametrize(
    ("found", "read_started", "to", "follow_up"),
    [
        ("p7", EARLY, S.DELIVERED, FollowUp.NONE),  # found: DELIVERED with that pin
        ("p7", LATE, S.DELIVERED, FollowUp.NONE),
        (settle.Search.INCONCLUSIVE, LATE, S.FAILED, FollowUp.NONE),  # could not prove absence
        (Ambiguous(("p7", "p8")), LATE, S.FAILED, FollowUp.NONE),  # still ambiguous: for the user
        (Ambiguous(("p7", "p8")), EARLY, None, FollowUp.LOOK_AGAIN),  # none claimed, look again
        (settle.Search.ABSENT, LATE, S.RETRYING, FollowUp.NONE),  # no pin: as transient
        (settle.Search.ABSENT, EARLY, None, FollowUp.LOOK_AGAIN),  # too early to say "no pin"
    ],
)
def test_each_reconciliation_result(
    found: str | Ambiguous | settle.Search,
    read_started: datetime,
    to: JobState | None,
    follow_up: FollowUp,
) -> None:
    """What each result of a board listing does to a SUBMITTED job (module docstring table)."""
    d = settle.after_search(
        job(),
        ERR,
        found,
        read_started=read_started,
        settle_at=SETTLE_AT,
        policy=POLICY,
        now=read_started,
        rng=rng(),
    )
    assert (d.to, d.follow_up) == (to, follow_up)
    if follow_up is FollowUp.LOOK_AGAIN:
        assert d.delay_s == pytest.approx((SETTLE_AT - EARLY).total_seconds())
        assert committed(job(), d).state is S.SUBMITTED  # a note, the job stays SUBMITTED


def test_no_pin_is_never_concluded_before_the_request_can_no_longer_land() -> None:
    """A listing that started before settle_at never retries the create (the pin may land)."""
    for now in (T0, EARLY, SETTLE_AT - timedelta(microseconds=1)):
        d = settle.after_search(
            job(), ERR, settle.Search.ABSENT, read_started=now, settle_at=SETTLE_AT,
            policy=POLICY, now=now, rng=rng(),
        )  # fmt: skip
        assert d.to is None


def test_a_board_unreadable_for_too_long_is_handed_to_the_user() -> None:
    """Failed reads are looked at again until MAX_FAILURES in a row, then FAILED, not
    retryable (the pin may exist)."""
    assert settle.after_read_failure(ERR, failures=settle.MAX_FAILURES - 1, problem="x") is None
    d = settle.after_read_failure(ERR, failures=settle.MAX_FAILURES, problem="x")
    assert d is not None
    assert d.to is S.FAILED
    error = committed(job(), d).last_error
    assert error is not None
    assert not error.retryable


def test_deletes_end_cancelled_or_leave_the_pin_live() -> None:
    """A done delete cancels the job; a refused or given-up one returns it to DELIVERED with
    the error."""
    assert committed(job(S.CANCELLING), remote_rules.deleted()).state is S.CANCELLED
    err = JobError(category=ErrorCategory.REJECTED, http_status=403, message="no")
    after = committed(job(S.CANCELLING), remote_rules.delete_failed(err, refused=True))
    assert (after.state, after.last_error) == (S.DELIVERED, err)


def test_a_patch_answer_settles_only_the_revision_it_sent() -> None:
    """A PATCH's answer marks APPLIED the revision it sent; a newer update is sent instead."""
    sent = RemoteUpdate(paths=("pin.title",), revision=1)
    j = job(S.DELIVERED, remote_update=sent)
    done = flags.patch_settled(j, sent, ok=True, refused=False, attempts=1, error=None)
    applied = committed(j, done).remote_update
    assert applied is not None
    assert applied.state is RemoteState.APPLIED
    newer = job(S.DELIVERED, remote_update=RemoteUpdate(paths=("pin.title",), revision=2))
    again = flags.patch_settled(newer, sent, ok=True, refused=False, attempts=1, error=None)
    assert (again.commits, again.follow_up) == (False, FollowUp.SEND_AGAIN)


def test_a_patch_retry_keeps_when_it_first_failed() -> None:
    """A PATCH tried again records its attempts and error and keeps `failing_since`."""
    sent = RemoteUpdate(paths=("pin.title",), failing_since=T0)
    j = job(S.DELIVERED, remote_update=sent)
    d = flags.patch_retry(j, sent, attempts=2, error=ERR, now=T0 + timedelta(minutes=5))
    update = committed(j, d).remote_update
    assert update is not None
    assert (update.attempts, update.error, update.failing_since) == (2, ERR, T0)


VIDEO = VideoUrl(url="https://example.com/v.mp4")


def video_job(state: JobState, stage_state: str) -> Job:
    """A job in *state* with a video URL whose staging is at *stage_state*."""
    stage = MediaStage(state=stage_state, source=source_key(VIDEO), started_at=T0)
    return job(state, pin=dataclasses.replace(job().pin, media=VIDEO), media=stage)


def test_a_job_whose_video_is_not_ready_is_parked_and_a_ready_one_is_not() -> None:
    """At publish time a QUEUED job waits PENDING for its video unless the video is READY."""
    parked = staging_rules.park(video_job(S.QUEUED, STAGING))
    assert parked.to is S.PENDING
    assert parked.reason.startswith("waiting for its video")
    assert not staging_rules.park(video_job(S.QUEUED, READY)).commits
    assert not staging_rules.park(job(S.QUEUED)).commits  # an image: nothing to wait for


def test_a_failed_video_fails_an_unsent_job_with_it() -> None:
    """A media failure marks the stage FAILED and the unsent job PERMANENTLY_FAILED (MEDIA),
    in one commit."""
    j = video_job(S.PENDING, STAGING)
    stage = MediaStage(state=STAGING, source=source_key(VIDEO), started_at=T0)
    err = JobError(category=ErrorCategory.MEDIA, message="processing failed")
    after = committed(j, staging_rules.failed(j, stage, err))
    assert after.state is S.PERMANENTLY_FAILED
    assert after.media is not None
    assert after.media.state == "FAILED"


@pytest.mark.parametrize(
    ("j", "expected"),
    [
        (job(S.PENDING), Route.HEAP),
        (job(S.RETRYING), Route.HEAP),
        (job(S.QUEUED), Route.UNTRACK),
        (job(S.SUBMITTED), Route.UNTRACK),
        (job(S.CANCELLING), Route.DISPATCH),
        (job(S.DELIVERED), Route.UNTRACK),
        (job(S.DELIVERED, remote_update=RemoteUpdate(paths=("pin.title",))), Route.DISPATCH),
        (
            job(S.DELIVERED, remote_update=RemoteUpdate(paths=("pin.title",), error=ERR)),
            Route.UNTRACK,  # waiting for its backoff: its timer sends it
        ),
        (job(S.CANCELLED), Route.UNTRACK),
        (video_job(S.PENDING, STAGING), Route.UNTRACK),  # its time come: staging hands it back
        (video_job(S.PENDING, READY), Route.HEAP),
    ],
)
def test_where_a_committed_job_goes(j: Job, expected: Route) -> None:
    """The one routing rule: heap, dispatcher or neither, for each kind of committed job."""
    assert route(j, now=T0 + timedelta(seconds=1)) is expected


def test_a_video_job_planned_later_stays_on_the_heap_while_it_stages() -> None:
    """A PENDING video job whose time has not come is on the heap even while it stages."""
    j = video_job(S.PENDING, STAGING)
    assert route(j, now=T0 - timedelta(hours=1)) is Route.HEAP
