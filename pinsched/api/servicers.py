"""gRPC servicers: convert, call the service, convert back. No decisions here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc

from pinsched.api import convert as cv
from pinsched.api import explain as api_explain
from pinsched.api import slots as api_slots
from pinsched.api import validation as va
from pinsched.api import video_validation
from pinsched.api.pagination import page_size, page_token, read_page_token
from pinsched.api.status import unary
from pinsched.api.watch import WatchJobsServicer
from pinsched.checks.dryrun import DryRun
from pinsched.checks.pins import Checker
from pinsched.clock import Clock
from pinsched.core import errors
from pinsched.core.jobs import ImageBase64, Job, PinSpec, ScheduleSpec
from pinsched.core.requests import Update
from pinsched.events import EventBus
from pinsched.media.urlprobe import UrlProbe
from pinsched.ops import limits
from pinsched.service import PinService
from pinsched.store import JobFilter
from pinsched.v1 import (
    job_pb2,
    scheduler_pb2,
)

MAX_BATCH = limits.MAX_BATCH
VIEWS = frozenset(
    {scheduler_pb2.JOB_VIEW_UNSPECIFIED, scheduler_pb2.JOB_VIEW_BASIC, scheduler_pb2.JOB_VIEW_FULL}
)
JOB_PATHS = frozenset(
    {
        "pin",
        "pin.title",
        "pin.description",
        "pin.link",
        "pin.alt_text",
        "pin.dominant_color",
        "pin.board_id",
        "pin.board_section_id",
        "pin.media_source",
        "scheduled_at",
        "local_time",
        "delivery_window",
        "retry_for",
        "next_free_slot",
    }
)
Ctx = grpc.aio.ServicerContext[Any, Any]


def _keep_current_image(pin: job_pb2.Pin, current: PinSpec) -> None:
    """A pin given back as the API shows it (inline image named by `sha256`, no bytes) keeps
    the job's current image. Only the job's own image can be named so, never another one."""
    source = pin.media_source
    if not (pin.HasField("media_source") and source.HasField("image_base64")):
        return
    image, media = source.image_base64, current.media
    if not image.data and isinstance(media, ImageBase64) and image.sha256 == media.sha256:
        image.data = media.data


class PinSchedulerServicer(WatchJobsServicer):
    def __init__(
        self,
        service: PinService,
        bus: EventBus,
        clock: Clock,
        *,
        skew: timedelta,
        horizon: timedelta,
        max_watchers: int = limits.MAX_WATCH_STREAMS,
        checker: Checker | None = None,
        asset_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.service, self.bus, self.clock = service, bus, clock
        self.dry = DryRun(service, checker or Checker(service.dispatchers.client, UrlProbe()))
        self.asset_exists = asset_exists  # uploaded videos (`MediaAssets`)
        self.skew, self.horizon = skew, horizon
        self.max_watchers = max_watchers
        self.watching = 0
        self._event_cache: dict[tuple[int, int], job_pb2.JobEvent] = {}

    def _spec(self, req: Any, prefix: str = "") -> ScheduleSpec:
        spec = va.schedule_spec_from_proto(
            req, now=self.clock.now(), skew_tolerance=self.skew, horizon=self.horizon, prefix=prefix
        )
        video_validation.check_asset(
            spec.pin, f"{prefix}.pin" if prefix else "pin", self.asset_exists
        )
        return spec

    @unary
    async def SchedulePin(
        self, request: scheduler_pb2.SchedulePinRequest, context: Ctx
    ) -> job_pb2.Job:
        spec = self._spec(request)
        if request.validate_only:
            ((job, _),) = await self.dry.schedule_results([spec])
        else:
            (job,) = await self.service.schedule([spec])
        return cv.job_to_proto(job, with_history=request.validate_only and not job.id)

    @unary
    async def BatchSchedulePins(
        self, request: scheduler_pb2.BatchSchedulePinsRequest, context: Ctx
    ) -> scheduler_pb2.BatchSchedulePinsResponse:
        n = len(request.requests)
        if not 1 <= n <= MAX_BATCH:
            raise errors.InvalidArgument.one("requests", f"1 to {MAX_BATCH} requests, got {n}")
        specs: list[ScheduleSpec] = []
        violations: list[errors.FieldViolation] = []
        for i, req in enumerate(request.requests):
            try:
                specs.append(self._spec(req, prefix=f"requests[{i}]"))
            except errors.InvalidArgument as exc:
                violations.extend(exc.violations)
        if violations:
            raise errors.InvalidArgument(violations)
        if request.validate_only:
            results = await self.dry.schedule_results(
                specs, prefixes=[f"requests[{i}]" for i in range(n)]
            )
        else:
            results = await self.service.schedule_results(specs)
        return scheduler_pb2.BatchSchedulePinsResponse(
            jobs=[
                cv.job_to_proto(j, with_history=request.validate_only and not j.id)
                for j, _ in results
            ],
            created=[c for _, c in results],
        )

    @unary
    async def GetJob(self, request: scheduler_pb2.GetJobRequest, context: Ctx) -> job_pb2.Job:
        if not request.job_id:
            raise errors.InvalidArgument.one("job_id", "required")
        if request.view not in VIEWS:
            raise errors.InvalidArgument.one(
                "view", f"unknown view {request.view}; use JOB_VIEW_BASIC or JOB_VIEW_FULL"
            )
        full = request.view == scheduler_pb2.JOB_VIEW_FULL
        job = await self.service.get(request.job_id, with_media=full)
        return cv.job_to_proto(job, with_history=True, with_media=full)

    @unary
    async def ListJobs(
        self, request: scheduler_pb2.ListJobsRequest, context: Ctx
    ) -> scheduler_pb2.ListJobsResponse:
        size = page_size(request.page_size)
        flt = JobFilter(
            account_id=request.account_id,
            states=frozenset(
                cv.state_from_proto(s, field=f"states[{i}]") for i, s in enumerate(request.states)
            ),
            board_id=request.board_id,
            planned_after=(
                va.timestamp_from_proto(request.planned_after, field="planned_after")
                if request.HasField("planned_after")
                else None
            ),
            planned_before=(
                va.timestamp_from_proto(request.planned_before, field="planned_before")
                if request.HasField("planned_before")
                else None
            ),
            group_id=request.group_id,
        )
        scope = repr(flt)
        before = read_page_token(request.page_token, "jobs", scope)
        jobs = await self.service.list(flt, before_id=before, limit=size + 1)
        more = len(jobs) > size
        jobs = jobs[:size]
        return scheduler_pb2.ListJobsResponse(
            jobs=[cv.job_to_proto(j) for j in jobs],
            next_page_token=page_token("jobs", jobs[-1].id, scope) if more else "",
        )

    @unary
    async def UpdateJob(self, request: scheduler_pb2.UpdateJobRequest, context: Ctx) -> job_pb2.Job:
        req = request.job
        if not req.id:
            raise errors.InvalidArgument.one("job.id", "required")
        paths = list(dict.fromkeys(request.update_mask.paths))
        if not paths:
            raise errors.InvalidArgument.one("update_mask", "name at least one field to change")
        bad = [p for p in paths if p not in JOB_PATHS]
        if bad:
            raise errors.InvalidArgument(
                [
                    errors.FieldViolation(
                        "update_mask",
                        f"{p!r} cannot be updated; allowed: {', '.join(sorted(JOB_PATHS))}",
                    )
                    for p in bad
                ]
            )
        if "scheduled_at" in paths and "local_time" in paths:
            raise errors.InvalidArgument.one(
                "update_mask", "give scheduled_at or local_time, not both"
            )
        if request.expected_version < 0:
            raise errors.InvalidArgument.one("expected_version", "must not be negative")
        if "next_free_slot" in paths:  # the store picks the slot as it moves the job
            if len(paths) > 1:
                raise errors.InvalidArgument.one(
                    "update_mask",
                    "next_free_slot moves the job alone: update other fields in another call",
                )
            not_before = api_slots.update_not_before(
                request, now=self.clock.now(), skew=self.skew, horizon=self.horizon
            )
            svc = self.dry if request.validate_only else self.service
            job = await svc.reslot(
                req.id, expected_version=request.expected_version, not_before=not_before
            )
            return cv.job_to_proto(job, with_history=True)

        # The mask is merged into the job as read, so the update is applied only to that very
        # version: when another change lands in between, read again and merge again (a given
        # expected_version is the client's own check and is reported instead).
        async def merge(current: Job, current_pin: PinSpec, version: int) -> Job:
            return await self._update_once(request, paths, current, current_pin, version)

        job = await self.service.update_merged(req.id, request.expected_version, merge)
        return cv.job_to_proto(job, with_history=True)

    async def _update_once(
        self,
        request: scheduler_pb2.UpdateJobRequest,
        paths: list[str],
        current: Job,
        current_pin: PinSpec,
        version: int,
    ) -> Job:
        req = request.job
        pin = cv.pin_to_proto(current_pin, with_media=True)
        for p in paths:
            if p == "pin":
                pin.CopyFrom(req.pin)
            elif p.startswith("pin."):
                name = p.split(".", 1)[1]
                if name == "media_source":
                    pin.media_source.CopyFrom(req.pin.media_source)
                else:
                    setattr(pin, name, getattr(req.pin, name))
        _keep_current_image(pin, current_pin)
        timing_spec = None
        if {"scheduled_at", "local_time", "delivery_window"} & set(paths):
            merged = scheduler_pb2.SchedulePinRequest(
                account_id=current.account_id,
                pin=pin,
                nonexistent_time_policy=request.nonexistent_time_policy,
                ambiguous_time_policy=request.ambiguous_time_policy,
            )
            if "local_time" in paths:
                merged.local_time.CopyFrom(req.local_time)
            elif "scheduled_at" in paths:
                merged.scheduled_at.CopyFrom(req.scheduled_at)
            elif current.local_time is not None:
                merged.local_time.CopyFrom(cv.local_time_to_proto(current.local_time))
            else:
                merged.scheduled_at.CopyFrom(cv.timestamp_to_proto(current.scheduled_at))
            merged.delivery_window.CopyFrom(
                req.delivery_window
                if "delivery_window" in paths
                else cv.duration_to_proto(current.window)
            )
            timing_spec = self._spec(merged, prefix="job")
            pin_spec = timing_spec.pin
        else:
            pin_spec = va.validate_pin(pin, path="job.pin")
            video_validation.check_asset(pin_spec, "job.pin", self.asset_exists)
        retry_for = current.retry_for
        if "retry_for" in paths:  # unset in the job: back to the default budget
            out = va.Violations()
            retry_for = va.retry_for_from_proto(out, "job.retry_for", req)
            out.raise_if_any()
        svc = self.dry if request.validate_only else self.service
        update = Update(paths=paths, pin=pin_spec, timing=timing_spec, retry_for=retry_for)
        return await svc.update(req.id, update, expected_version=version)

    @unary
    async def CancelJob(self, request: scheduler_pb2.CancelJobRequest, context: Ctx) -> job_pb2.Job:
        if not request.job_id:
            raise errors.InvalidArgument.one("job_id", "required")
        if request.expected_version < 0:
            raise errors.InvalidArgument.one("expected_version", "must not be negative")
        job = await self.service.cancel(request.job_id, request.expected_version)
        return cv.job_to_proto(job, with_history=True)

    @unary
    async def RetryJob(self, request: scheduler_pb2.RetryJobRequest, context: Ctx) -> job_pb2.Job:
        if not request.job_id:
            raise errors.InvalidArgument.one("job_id", "required")
        return cv.job_to_proto(await self.service.retry(request.job_id), with_history=True)

    @unary
    async def PreviewSchedule(
        self, request: scheduler_pb2.PreviewScheduleRequest, context: Ctx
    ) -> scheduler_pb2.PreviewScheduleResponse:
        spec = self._spec(request)
        await self.service.account(spec.account_id)  # AccountNotFound
        out = scheduler_pb2.PreviewScheduleResponse()
        if spec.next_free_slot is not None:
            place = await self.service.preview_slot(spec)
            out.slot.CopyFrom(
                cv.slot_to_proto(place.slot.local, place.slot.time_zone, place.slot.at)
            )
            out.planned_at.FromDatetime(place.planned_at)
            out.scheduled_at.FromDatetime(place.slot.at)
            out.window_end.FromDatetime(place.slot.at)
            return out
        out.planned_at.FromDatetime(await self.service.preview(spec))
        out.scheduled_at.FromDatetime(spec.scheduled_at)
        out.window_end.FromDatetime(spec.window_end)
        return out

    @unary
    async def ExplainJob(
        self, request: scheduler_pb2.ExplainJobRequest, context: Ctx
    ) -> scheduler_pb2.JobExplanation:
        if not request.job_id:
            raise errors.InvalidArgument.one("job_id", "required")
        return await api_explain.explain_job(self.service, request.job_id)

    @unary
    async def ListFreeSlots(
        self, request: scheduler_pb2.ListFreeSlotsRequest, context: Ctx
    ) -> scheduler_pb2.ListFreeSlotsResponse:
        account_id, not_before, count = api_slots.free_slots_request(
            request, now=self.clock.now(), skew=self.skew, horizon=self.horizon
        )
        await self.service.account(account_id)  # AccountNotFound
        places = await self.service.free_slots(account_id, not_before, count)
        return scheduler_pb2.ListFreeSlotsResponse(
            slots=[
                scheduler_pb2.FreeSlot(
                    slot=cv.slot_to_proto(p.slot.local, p.slot.time_zone, p.slot.at),
                    planned_at=cv.timestamp_to_proto(p.planned_at),
                    taken=p.taken,
                )
                for p in places
            ]
        )
