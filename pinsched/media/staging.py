"""Video staging: a `video_url` / `video_asset` pin's video is on Pinterest, processed, before
`planned_at`, so the pin is created on time with the `video_id` source.

For each active job with such a video, at `planned_at - media_lead_time_s` (at once when that
is past) one task takes these steps, each committed on the job (`Job.media`, a `MediaStage`)
before the next starts, so that a restart resumes where it stopped:

    (start)      media {STAGING}                                      event job.media_staging
    bytes        the asset from the media directory, or the URL downloaded into it
    register     POST /v5/media (the account's write bucket)  → step REGISTERED, media id,
                 upload target (parameters sealed: `upload_secrets`)  event job.media_staging
    upload       the multipart POST → step UPLOADED. After a restart in this step, the media's
                 status says whether the bytes arrived (not `registered`): never sent twice
    poll         GET /v5/media/{id} with backoff (5 s doubling to 60 s)
                 succeeded → media {READY}                            event job.media_ready
                 failed    → media {FAILED} and the job PERMANENTLY_FAILED (category MEDIA)
                                                                      event job.media_failed

Transient failures (5xx, network, 429, an expired token that refreshes) retry the step with
backoff; a refusal for good (the URL answers 4xx, a type or size Pinterest refuses, a blocked
address) fails the job like a failed processing. Only a registration whose answer was lost is
made again (the media it created is never used). A job whose video changes (UpdateJob) is
staged anew: `MediaStage.source` no longer matches.

Each step first waits while pins are being published (`pinsched.media.publish_first`).

At `planned_at` the dispatcher parks a job whose video is not READY (`core.staging.park`): it
goes back to PENDING ("waiting for its video") and is routed to the scheduler once its video
is READY (`core.route`). What each step does to the job is decided by `core.staging` and
committed with `store.changes.change`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final

import structlog

from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Activity, Clock
from pinsched.core import staging as rules
from pinsched.core.accounts import Account
from pinsched.core.errors import JobNotFound
from pinsched.core.jobs import (
    ACTIVE_STATES,
    ErrorCategory,
    Job,
    JobError,
    JobState,
    PinSpec,
    Video,
)
from pinsched.core.retry import retry_deadline
from pinsched.core.staging import REASON_READY, REASON_STAGING
from pinsched.core.video import (
    FAILED,
    READY,
    STAGING,
    STEP_REGISTERED,
    STEP_UPLOADED,
    MediaStage,
    StagedVideo,
    VideoAsset,
    VideoUrl,
    current,
    is_staged,
    source_key,
)
from pinsched.media import upload_secrets
from pinsched.media.assets import Asset, MediaAssets
from pinsched.media.publish_first import PublishFirst, take_write
from pinsched.pinterest import media as pm
from pinsched.pinterest.client import PinterestClient
from pinsched.store import Event, Store
from pinsched.store.changes import change

log = structlog.get_logger("pinsched.media.staging")
S = JobState

#: Downloads and uploads at once (the heavy steps; registrations and polls are not limited), so
#: that staging many videos leaves the event loop to the pins being published.
MAX_TRANSFERS: Final = 2
POLL_FIRST_S: Final = 5.0
POLL_MAX_S: Final = 60.0
RETRY_MAX_S: Final = 300.0


def pin_to_send(pin: PinSpec, stage: MediaStage | None) -> PinSpec:
    """*pin* as Pinterest gets it: a staged video becomes its `video_id` source."""
    media = pin.media
    if not isinstance(media, VideoUrl | VideoAsset):
        return pin
    ready = current(stage, media)
    if ready is None or ready.state != READY:
        raise ValueError("the video is not staged")
    return dataclasses.replace(
        pin,
        media=Video(
            media_id=ready.pinterest_media_id,
            cover_image_url=media.cover_image_url,
            cover_image_key_frame_time=media.cover_image_key_frame_time,
        ),
    )


class Stager:
    """Stages the videos of jobs; one task per job being staged."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        client: PinterestClient,
        accounts: AccountRegistry,
        assets: MediaAssets,
        *,
        lead_s: float,
        rng: random.Random | None = None,
        activity: Activity | None = None,
        first: PublishFirst | None = None,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        """*owns*: in a cluster, whether this daemon publishes an account now (only its owner
        stages its videos; `adopt` picks them up when an account arrives)."""
        self.store, self.clock, self.client, self.accounts = store, clock, client, accounts
        self.owns = owns
        self.assets, self.lead_s, self.first = assets, lead_s, first
        self.rng = rng or random.Random()
        self.activity = activity or Activity()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.polls: dict[str, int] = {}  # job id → status polls without news (backoff)
        self.stopping = asyncio.Event()
        self.transfers = asyncio.Semaphore(MAX_TRANSFERS)

    async def start(self) -> int:
        """Pick up every job whose video still needs staging (after a restart)."""
        jobs = await self.store.video_jobs()
        for job in jobs:
            self.consider(job)
        return len(self.tasks)

    async def adopt(self, account_id: str) -> None:
        """An account this daemon just took over: stage its videos that still need it."""
        for job in await self.store.video_jobs(account_id):
            self.consider(job)

    def _mine(self, account_id: str) -> bool:
        return self.owns is None or self.owns(account_id)

    def observe(self, events: Sequence[Event]) -> None:
        """Committed events (the store's sink): start, keep or drop the staging of their jobs."""
        for event in events:
            if event.job is not None:
                self.consider(event.job)

    def consider(self, job: Job) -> None:
        """Start staging *job*'s video if it needs it and nothing stages it yet."""
        if self.stopping.is_set() or not is_staged(job.pin.media) or not self._mine(job.account_id):
            return
        task = self.tasks.get(job.id)
        if job.state not in ACTIVE_STATES or job.state in (S.SUBMITTED, S.CANCELLING):
            if task is not None and job.state not in ACTIVE_STATES:
                task.cancel()
            return
        stage = current(job.media, job.pin.media)
        if stage is not None and stage.state == READY:
            return  # (a FAILED stage on an active job: RetryJob, staged again)
        if task is None or task.done():
            self.activity.enter()
            task = asyncio.create_task(self._run(job.id), name=f"stage-{job.id}")
            self.tasks[job.id] = task
            task.add_done_callback(functools.partial(self._done, job.id))

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(job_id) is task:
            del self.tasks[job_id]
            self.polls.pop(job_id, None)
        self.activity.leave()

    async def stop(self) -> None:
        self.stopping.set()
        tasks = list(self.tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------------------- the task

    async def _run(self, job_id: str) -> None:
        try:
            job = await self.store.get_job(job_id)
            wait = (
                job.planned_at - timedelta(seconds=self.lead_s) - self.clock.now()
            ).total_seconds()
            if wait > 0:
                await self._sleep(wait)
            failures = 0
            urgent_at = job.planned_at - timedelta(seconds=self.lead_s / 2)
            while not self.stopping.is_set():
                if self.first is not None:  # pins due now are published first
                    await self.first.turn(urgent_at=urgent_at, sleep=self._sleep)
                try:
                    delay = await self.step(job_id)
                    failures = 0
                except pm.MediaFailed as exc:
                    failures += 1
                    delay = min(RETRY_MAX_S, 2.0 * 2 ** min(failures, 10))
                    delay = delay / 2 + self.rng.uniform(0, delay / 2)
                    log.info(
                        "media_step_retry",
                        job_id=job_id,
                        error=exc.error.message,
                        delay_s=round(delay, 1),
                    )
                if delay is None:
                    return
                if delay > 0:  # no step is left half-done while the clock may move
                    await self._sleep(delay)
        except (JobNotFound, asyncio.CancelledError):
            return
        except Exception:
            log.exception("media_staging_failed", job_id=job_id)

    async def _sleep(self, seconds: float) -> None:
        self.activity.leave()
        try:
            await self.clock.sleep(seconds)
        finally:
            self.activity.enter()

    async def step(self, job_id: str) -> float | None:
        """Take the next step of *job_id*'s staging; the delay before the next one, or None
        when there is nothing more to do. MediaFailed (retryable) when the step must be tried
        again; a failure for good is recorded on the job here."""
        job = await self.store.get_job(job_id)
        media = job.pin.media
        if (
            not self._mine(job.account_id)  # moved to another daemon: its owner stages it
            or job.state not in ACTIVE_STATES
            or job.state in (S.SUBMITTED, S.CANCELLING)
            or not isinstance(media, VideoUrl | VideoAsset)
        ):
            return None
        stage = current(job.media, media)
        if stage is None or stage.state == FAILED:
            await self._record(
                job,
                MediaStage(
                    state=STAGING,
                    source=source_key(media),
                    started_at=self.clock.now(),
                    detail="staging started",
                ),
                f"{REASON_STAGING}: started",
            )
            return 0.0
        if stage.state != STAGING:
            return None
        account = await self.accounts.get(job.account_id)
        try:
            if not stage.step:
                return await self._register(job, stage, media, account)
            if stage.step == STEP_REGISTERED:
                return await self._upload(job, stage, media, account)
            return await self._poll(job, stage, account)
        except pm.MediaFailed as exc:
            deadline = retry_deadline(
                planned_at=job.planned_at, window_end=job.window_end, retry_for=job.retry_for
            )
            if exc.error.retryable and self.clock.now() < deadline:
                if exc.error.category is ErrorCategory.AUTH:
                    await self.accounts.refresh(account, reason="media staging")
                raise
            # A failure for good, or transient ones past the job's retry deadline (the budget
            # a create has too): the job fails, never waits for its video forever.
            await self._failed(job, stage, exc.error)
            return None

    async def _register(
        self, job: Job, stage: MediaStage, media: StagedVideo, account: Account
    ) -> float:
        async with self.transfers:  # a URL that is no video fails before the registration
            asset = await self._bytes(media, stage)
        await take_write(self.accounts, self.clock, job.account_id, self.stopping, self._sleep)
        reg = await pm.register(self.client, account.access_token)
        await self._record(
            job,
            dataclasses.replace(
                stage,
                step=STEP_REGISTERED,
                pinterest_media_id=reg.media_id,
                asset_id=asset.asset_id,
                upload_url=reg.upload_url,
                **upload_secrets.sealed(reg.upload_parameters, self.store.cipher),
                detail=f"registered as media {reg.media_id}",
            ),
            f"{REASON_STAGING}: registered media {reg.media_id}",
        )
        return 0.0

    async def _upload(
        self, job: Job, stage: MediaStage, media: StagedVideo, account: Account
    ) -> float:
        # A restart may have come after the bytes arrived: ask before sending them again.
        status = await pm.status(self.client, account.access_token, stage.pinterest_media_id)
        parameters = upload_secrets.unseal(stage, self.store.cipher)
        if status == "registered" and parameters is None:  # no key opens them: register anew
            await self._record(job, upload_secrets.forget(stage), f"{REASON_STAGING}: again")
            return 0.0
        if status == "registered":
            async with self.transfers:
                asset = await self._bytes(media, stage)
                await pm.upload(
                    self.client,
                    stage.upload_url,
                    parameters or {},
                    self.assets.path(asset.asset_id),
                    asset.content_type,
                )
            detail = f"uploaded {asset.size} bytes; processing"
        else:
            detail = f"uploaded; {status}"
        await self._record(
            job,
            dataclasses.replace(stage, step=STEP_UPLOADED, detail=detail),
            f"{REASON_STAGING}: uploaded media {stage.pinterest_media_id}",
        )
        return POLL_FIRST_S

    async def _bytes(self, media: StagedVideo, stage: MediaStage) -> Asset:
        if stage.asset_id and (kept := self.assets.get(stage.asset_id)) is not None:
            return kept  # downloaded before a restart
        if isinstance(media, VideoAsset):
            asset = self.assets.get(media.asset_id)
            if asset is None:
                raise pm.MediaFailed(
                    JobError(
                        category=ErrorCategory.MEDIA,
                        message=f"the uploaded video {media.asset_id} is no longer stored",
                    )
                )
            return asset
        return await pm.download(media.url, self.assets)

    async def _poll(self, job: Job, stage: MediaStage, account: Account) -> float | None:
        status = await pm.status(self.client, account.access_token, stage.pinterest_media_id)
        if status == "succeeded":
            ready = dataclasses.replace(stage, state=READY, detail="processed by Pinterest")
            # Committed READY, the job is routed to the scheduler (`core.route`).
            await self._record(job, ready, f"{REASON_READY}: media {stage.pinterest_media_id}")
            return None
        if status == "failed":
            await self._failed(
                job,
                stage,
                JobError(
                    category=ErrorCategory.MEDIA,
                    http_status=200,
                    message=f"Pinterest's processing of media {stage.pinterest_media_id} "
                    "failed (status: failed)",
                ),
            )
            return None
        polls = self.polls[job.id] = self.polls.get(job.id, 0) + 1
        return min(POLL_MAX_S, POLL_FIRST_S * float(2 ** min(polls, 8)))

    async def _failed(self, job: Job, stage: MediaStage, error: JobError) -> None:
        """Record the failure on the job and fail it for good, in one transaction."""
        done = await change(
            self.store,
            job,
            lambda j: rules.failed(j, stage, error),
            now=self.clock.now,
            expect=rules.fails,
        )
        if done is not None:  # (None: cancelled, or updated with another video meanwhile)
            log.info("media_failed", job_id=job.id, error=error.message)

    async def _record(self, job: Job, stage: MediaStage, reason: str) -> Job | None:
        """Commit *stage* on *job* (decided again on a lost race while it stages the same
        video; None when it no longer does)."""
        done = await change(
            self.store,
            job,
            lambda _: rules.record(stage, reason),
            now=self.clock.now,
            expect=lambda j: rules.stages(j, stage.source),
        )
        return done.job if done is not None else None
