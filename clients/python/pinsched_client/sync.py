"""`Client`: a blocking facade over `AsyncClient` for scripts and notebooks.

Owns a private event loop on a daemon thread; every method submits the matching `AsyncClient`
coroutine to it and waits. Works from any thread, including one that runs its own event loop
(the call blocks that loop, as any blocking call would). Adds no behaviour of its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from pinsched.v1 import account_pb2, job_pb2, media_pb2, scheduler_pb2

from .client import AsyncClient, State

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """Blocking client with the same methods and arguments as `AsyncClient`."""

    def __init__(self, target: str | None = None, **options: Any) -> None:
        """Take the same arguments as `AsyncClient` and start the private loop."""
        self._aio = AsyncClient(target, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pinsched-client", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and stop the private loop. Safe to call twice."""
        if self._loop.is_closed():
            return
        self._run(self._aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        async def step() -> list[T]:  # [item], or [] at the end
            try:
                return [await anext(agen)]
            except StopAsyncIteration:
                return []

        async def stop() -> None:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

        try:
            while item := self._run(step()):
                yield item[0]
        finally:
            if not self._loop.is_closed():
                self._run(stop())

    def upload_media(
        self, video: bytes | str | os.PathLike[str], content_type: str, **options: Any
    ) -> media_pb2.UploadMediaResponse:
        """See `AsyncClient.upload_media`."""
        return self._run(self._aio.upload_media(video, content_type, **options))

    def schedule_pin(self, request: scheduler_pb2.SchedulePinRequest) -> job_pb2.Job:
        """See `AsyncClient.schedule_pin`."""
        return self._run(self._aio.schedule_pin(request))

    def batch_schedule_pins(
        self,
        requests: Iterable[scheduler_pb2.SchedulePinRequest],
        *,
        validate_only: bool = False,
    ) -> scheduler_pb2.BatchSchedulePinsResponse:
        """See `AsyncClient.batch_schedule_pins`."""
        return self._run(self._aio.batch_schedule_pins(list(requests), validate_only=validate_only))

    def get_job(self, job_id: str, *, full: bool = False) -> job_pb2.Job:
        """See `AsyncClient.get_job`."""
        return self._run(self._aio.get_job(job_id, full=full))

    def explain_job(self, job_id: str) -> scheduler_pb2.JobExplanation:
        """See `AsyncClient.explain_job`."""
        return self._run(self._aio.explain_job(job_id))

    def list_jobs(self, **filters: Any) -> scheduler_pb2.ListJobsResponse:
        """See `AsyncClient.list_jobs`."""
        return self._run(self._aio.list_jobs(**filters))

    def iter_jobs(self, **filters: Any) -> Iterator[job_pb2.Job]:
        """See `AsyncClient.iter_jobs`."""
        return self._iterate(self._aio.iter_jobs(**filters))

    def update_job(self, job: job_pb2.Job, paths: Sequence[str], **options: Any) -> job_pb2.Job:
        """See `AsyncClient.update_job`."""
        return self._run(self._aio.update_job(job, paths, **options))

    def cancel_job(self, job_id: str, expected_version: int = 0) -> job_pb2.Job:
        """See `AsyncClient.cancel_job`."""
        return self._run(self._aio.cancel_job(job_id, expected_version))

    def retry_job(self, job_id: str) -> job_pb2.Job:
        """See `AsyncClient.retry_job`."""
        return self._run(self._aio.retry_job(job_id))

    def preview_schedule(
        self, request: scheduler_pb2.PreviewScheduleRequest | scheduler_pb2.SchedulePinRequest
    ) -> scheduler_pb2.PreviewScheduleResponse:
        """See `AsyncClient.preview_schedule`."""
        return self._run(self._aio.preview_schedule(request))

    def watch(
        self,
        account_id: str | None = None,
        job_ids: Iterable[str] = (),
        states: Iterable[State] = (),
        since_sequence: int | None = None,
        *,
        resume: bool = True,
    ) -> Iterator[job_pb2.JobEvent]:
        """See `AsyncClient.watch`; close the iterator (or leave the loop) to end the stream."""
        return self._iterate(
            self._aio.watch(account_id, list(job_ids), list(states), since_sequence, resume=resume)
        )

    def create_account(self, account_id: str, account: account_pb2.Account) -> account_pb2.Account:
        """See `AsyncClient.create_account`."""
        return self._run(self._aio.create_account(account_id, account))

    def get_account(self, account_id: str) -> account_pb2.Account:
        """See `AsyncClient.get_account`."""
        return self._run(self._aio.get_account(account_id))

    def list_accounts(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> account_pb2.ListAccountsResponse:
        """See `AsyncClient.list_accounts`."""
        return self._run(self._aio.list_accounts(page_size=page_size, page_token=page_token))

    def update_account(
        self, account: account_pb2.Account, paths: Sequence[str]
    ) -> account_pb2.Account:
        """See `AsyncClient.update_account`."""
        return self._run(self._aio.update_account(account, paths))

    def delete_account(self, account_id: str, force: bool = False) -> None:
        """See `AsyncClient.delete_account`."""
        self._run(self._aio.delete_account(account_id, force))
