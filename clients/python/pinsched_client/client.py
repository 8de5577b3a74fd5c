"""`AsyncClient`: the typed asyncio client of the pinsched gRPC API (`pinsched.v1`).

Owns the RPC methods, their retry rules and watch resumption; the channel, the bearer-token
metadata, per-call deadlines and the retry loop are `pinsched_client.channel`'s. Returns the proto
messages unchanged and raises `grpc.aio.AioRpcError` unchanged (see
`pinsched_client.errors.error_details`).

Retries, with exponential backoff and jitter, on UNAVAILABLE and DEADLINE_EXCEEDED only where a
repeat cannot do harm: reads, `PreviewSchedule`, and `SchedulePin` / `BatchSchedulePins`, which
carry a `request_id` (filled with a uuid4 when empty) that the daemon is idempotent on.
`watch()` reconnects on UNAVAILABLE from the last sequence it yielded: no gap, no duplicate.

Like the `pinsched` command line, the target and the API token default to `PINSCHED_TARGET` and
`PINSCHED_API_TOKEN`; a token that cannot be sent as an HTTP/2 header value (a non-ASCII
placeholder such as `"…"`, a line break) is refused at construction with a `ValueError` naming it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import TypeAlias

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from pinsched.v1 import (
    account_pb2,
    job_pb2,
    media_pb2,
    media_pb2_grpc,
    scheduler_pb2,
)

from .builders import at
from .channel import DEFAULT_TARGET, Channel, backoff_s, check_api_token

__all__ = ["DEFAULT_TARGET", "AsyncClient", "check_api_token"]

State: TypeAlias = job_pb2.Job.State.ValueType


class AsyncClient(Channel):
    """Async client of `PinScheduler` and `AccountService`; use `async with` or call `close()`.

    The channel is created on first use, inside the running event loop.
    """

    # -- MediaService --------------------------------------------------------------------------

    async def upload_media(
        self,
        video: bytes | str | os.PathLike[str],
        content_type: str,
        *,
        chunk_bytes: int = 1 << 20,
        timeout_s: float | None = None,
    ) -> media_pb2.UploadMediaResponse:
        """Upload a video (its bytes, or a file path, streamed in chunks) for a `video_asset`
        pin; returns its `asset_id` (the sha256 of the bytes). Not retried: send it again."""
        self._connect()
        assert self._channel is not None
        stub = media_pb2_grpc.MediaServiceStub(self._channel)

        async def requests() -> AsyncIterator[media_pb2.UploadMediaRequest]:
            first = True
            if isinstance(video, bytes):
                parts: Iterable[bytes] = (
                    video[i : i + chunk_bytes] for i in range(0, max(len(video), 1), chunk_bytes)
                )
                for part in parts:
                    yield media_pb2.UploadMediaRequest(
                        content_type=content_type if first else "", data=part
                    )
                    first = False
                return
            with open(video, "rb") as f:  # noqa: ASYNC230 - local file, read chunk by chunk
                while True:
                    part = f.read(chunk_bytes)
                    if not part and not first:
                        return
                    yield media_pb2.UploadMediaRequest(
                        content_type=content_type if first else "", data=part
                    )
                    first = False
                    if not part:
                        return

        return await stub.UploadMedia(
            requests(), metadata=self._metadata, timeout=timeout_s or max(self.timeout_s, 600.0)
        )

    # -- PinScheduler --------------------------------------------------------------------------

    async def schedule_pin(self, request: scheduler_pb2.SchedulePinRequest) -> job_pb2.Job:
        """Schedule one pin; retried safely with the same `request_id` (a uuid4 when empty)."""
        sent = scheduler_pb2.SchedulePinRequest()
        sent.CopyFrom(request)
        sent.request_id = sent.request_id or str(uuid.uuid4())
        return await self._call(self._jobs.SchedulePin, sent, retry=True)

    async def batch_schedule_pins(
        self,
        requests: Iterable[scheduler_pb2.SchedulePinRequest],
        *,
        validate_only: bool = False,
    ) -> scheduler_pb2.BatchSchedulePinsResponse:
        """Schedule up to 1,000 pins atomically; each empty `request_id` gets a uuid4 first.
        With *validate_only*, check them all (with Pinterest too) and schedule nothing."""
        batch = scheduler_pb2.BatchSchedulePinsRequest(
            requests=requests, validate_only=validate_only
        )
        for item in batch.requests:
            item.request_id = item.request_id or str(uuid.uuid4())
        return await self._call(self._jobs.BatchSchedulePins, batch, retry=True)

    async def get_job(self, job_id: str, *, full: bool = False) -> job_pb2.Job:
        """Return one job with its full history; an inline image's bytes only when *full*
        (otherwise it is named by `sha256` and `size_bytes`)."""
        request = scheduler_pb2.GetJobRequest(
            job_id=job_id,
            view=scheduler_pb2.JOB_VIEW_FULL if full else scheduler_pb2.JOB_VIEW_BASIC,
        )
        return await self._call(self._jobs.GetJob, request, retry=True)

    async def explain_job(self, job_id: str) -> scheduler_pb2.JobExplanation:
        """Why the job is where it is and what happens next (one sentence in `summary`)."""
        request = scheduler_pb2.ExplainJobRequest(job_id=job_id)
        return await self._call(self._jobs.ExplainJob, request, retry=True)

    async def list_jobs(
        self,
        *,
        account_id: str = "",
        states: Iterable[State] = (),
        board_id: str = "",
        planned_after: datetime | None = None,
        planned_before: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> scheduler_pb2.ListJobsResponse:
        """Return one page of jobs, newest first; empty filters match everything."""
        request = scheduler_pb2.ListJobsRequest(
            account_id=account_id,
            states=states,
            board_id=board_id,
            page_size=page_size,
            page_token=page_token,
        )
        if planned_after is not None:
            request.planned_after.CopyFrom(at(planned_after))
        if planned_before is not None:
            request.planned_before.CopyFrom(at(planned_before))
        return await self._call(self._jobs.ListJobs, request, retry=True)

    async def iter_jobs(
        self,
        *,
        account_id: str = "",
        states: Iterable[State] = (),
        board_id: str = "",
        planned_after: datetime | None = None,
        planned_before: datetime | None = None,
        page_size: int = 0,
    ) -> AsyncIterator[job_pb2.Job]:
        """Yield every matching job, fetching the pages one after another."""
        wanted = list(states)
        token = ""
        while True:
            page = await self.list_jobs(
                account_id=account_id,
                states=wanted,
                board_id=board_id,
                planned_after=planned_after,
                planned_before=planned_before,
                page_size=page_size,
                page_token=token,
            )
            for job in page.jobs:
                yield job
            token = page.next_page_token
            if not token:
                return

    async def update_job(
        self,
        job: job_pb2.Job,
        paths: Sequence[str],
        *,
        expected_version: int = 0,
        nonexistent: scheduler_pb2.NonexistentTimePolicy.ValueType = (
            scheduler_pb2.NONEXISTENT_TIME_POLICY_UNSPECIFIED
        ),
        ambiguous: scheduler_pb2.AmbiguousTimePolicy.ValueType = (
            scheduler_pb2.AMBIGUOUS_TIME_POLICY_UNSPECIFIED
        ),
        next_free_slot: scheduler_pb2.NextFreeSlot | None = None,
        validate_only: bool = False,
    ) -> job_pb2.Job:
        """Change the fields of *job* named by *paths* (`pin.title`, `scheduled_at`, ...); the
        path `next_free_slot` (alone) moves it into the next free posting slot. With
        *validate_only*, check everything (with Pinterest too) and change nothing."""
        request = scheduler_pb2.UpdateJobRequest(
            job=job,
            update_mask=field_mask_pb2.FieldMask(paths=paths),
            expected_version=expected_version,
            nonexistent_time_policy=nonexistent,
            ambiguous_time_policy=ambiguous,
            next_free_slot=next_free_slot,
            validate_only=validate_only,
        )
        return await self._call(self._jobs.UpdateJob, request, retry=validate_only)

    async def list_free_slots(
        self,
        account_id: str,
        *,
        not_before: timestamp_pb2.Timestamp | None = None,
        count: int = 0,
    ) -> scheduler_pb2.ListFreeSlotsResponse:
        """The account's next free posting slots (at or after *not_before*, default now)."""
        request = scheduler_pb2.ListFreeSlotsRequest(
            account_id=account_id, not_before=not_before, count=count
        )
        return await self._call(self._jobs.ListFreeSlots, request, retry=True)

    async def cancel_job(self, job_id: str, expected_version: int = 0) -> job_pb2.Job:
        """Cancel a job (deleting its pin if it was delivered); see the RPC's preconditions."""
        request = scheduler_pb2.CancelJobRequest(job_id=job_id, expected_version=expected_version)
        return await self._call(self._jobs.CancelJob, request, retry=False)

    async def retry_job(self, job_id: str) -> job_pb2.Job:
        """Send a FAILED or PERMANENTLY_FAILED job round again."""
        request = scheduler_pb2.RetryJobRequest(job_id=job_id)
        return await self._call(self._jobs.RetryJob, request, retry=False)

    async def preview_schedule(
        self,
        request: scheduler_pb2.PreviewScheduleRequest | scheduler_pb2.SchedulePinRequest,
    ) -> scheduler_pb2.PreviewScheduleResponse:
        """Return the delivery time the daemon would assign now; persists nothing."""
        if isinstance(request, scheduler_pb2.SchedulePinRequest):
            # The two messages share their field numbers and types: the bytes are the same.
            request = scheduler_pb2.PreviewScheduleRequest.FromString(request.SerializeToString())
        return await self._call(self._jobs.PreviewSchedule, request, retry=True)

    async def watch(
        self,
        account_id: str | None = None,
        job_ids: Iterable[str] = (),
        states: Iterable[State] = (),
        since_sequence: int | None = None,
        *,
        resume: bool = True,
    ) -> AsyncIterator[job_pb2.JobEvent]:
        """Yield job events one by one (the stream's messages carry batches of them); with
        *resume*, reconnect on UNAVAILABLE after the last one seen.

        `since_sequence=None` means live events only; 0 replays the whole log first. A stream
        that drops before its first event, started live, resumes live (no sequence is known yet).
        """
        job_ids, states = list(job_ids), list(states)
        last = since_sequence
        failures = 0
        while True:
            request = scheduler_pb2.WatchJobsRequest(
                account_id=account_id or "", job_ids=job_ids, states=states
            )
            if last is not None:
                request.since_sequence = last
            call = self._jobs.WatchJobs(request, metadata=self._metadata)
            try:
                async for message in call:  # a batch: everything pending when it was sent
                    for event in message.events:
                        if last is not None and event.sequence <= last:
                            continue
                        last, failures = event.sequence, 0
                        yield event
                return
            except grpc.aio.AioRpcError as err:
                if not resume or err.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                failures += 1
            finally:
                call.cancel()
            await asyncio.sleep(backoff_s(failures))

    # -- AccountService ------------------------------------------------------------------------

    async def create_account(
        self, account_id: str, account: account_pb2.Account
    ) -> account_pb2.Account:
        """Create an account; `account.access_token` is required."""
        request = account_pb2.CreateAccountRequest(account_id=account_id, account=account)
        return await self._call(self._accounts.CreateAccount, request, retry=False)

    async def get_account(self, account_id: str) -> account_pb2.Account:
        """Return one account (tokens are never returned)."""
        request = account_pb2.GetAccountRequest(account_id=account_id)
        return await self._call(self._accounts.GetAccount, request, retry=True)

    async def list_accounts(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> account_pb2.ListAccountsResponse:
        """Return one page of accounts, ordered by id."""
        request = account_pb2.ListAccountsRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._accounts.ListAccounts, request, retry=True)

    async def iter_accounts(self, *, page_size: int = 0) -> AsyncIterator[account_pb2.Account]:
        """Yield every account, fetching the pages one after another."""
        token = ""
        while True:
            page = await self.list_accounts(page_size=page_size, page_token=token)
            for account in page.accounts:
                yield account
            token = page.next_page_token
            if not token:
                return

    async def update_account(
        self, account: account_pb2.Account, paths: Sequence[str]
    ) -> account_pb2.Account:
        """Change the fields of *account* (with `id` set) named by *paths*."""
        request = account_pb2.UpdateAccountRequest(
            account=account, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        return await self._call(self._accounts.UpdateAccount, request, retry=False)

    async def delete_account(self, account_id: str, force: bool = False) -> None:
        """Delete an account; *force* cancels its active jobs first."""
        request = account_pb2.DeleteAccountRequest(account_id=account_id, force=force)
        await self._call(self._accounts.DeleteAccount, request, retry=False)
