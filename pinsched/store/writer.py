"""The store's single writer: group commit over a `driver.Backend`.

Every write queued while the previous transaction was being committed shares the next one
(one fsync on SQLite, one round of commits on PostgreSQL), each inside its own savepoint so one
failing write never undoes another (`Backend.run_batch`). After the commit the committed events
go to `on_events` in sequence order, and `on_outbox` is told when webhook rows were written. A
storage failure becomes `StorageUnavailable` for every write of the batch it hit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pinsched.core.errors import ShuttingDown, StorageUnavailable
from pinsched.store.driver import Backend, Tx
from pinsched.store.rows import Event

T = TypeVar("T")
BATCH_MAX = 4096


class GroupCommit:
    """The writer task and its queue."""

    def __init__(self, backend: Backend, on_events: Callable[[Sequence[Event]], None]) -> None:
        self._db = backend
        self.on_events = on_events
        self.on_outbox: Callable[[], None] = lambda: None
        self.outbox_written = False  # set by a write's operation, read after its batch commits
        self._queue: list[
            tuple[Callable[[Tx, list[Event]], Awaitable[Any]], asyncio.Future[Any]]
        ] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._loop(), name="store-writer")
        #: The highest committed event sequence, when the backend needs it kept here (PostgreSQL).
        self.last_sequence: int | None = None
        self.batches = 0  # transactions committed
        self.writes = 0  # writes committed

    @property
    def is_open(self) -> bool:
        return not self._closing and not self._task.done()

    async def submit(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        """Run *fn* in the next transaction; its value, or its exception."""
        if self._closing:
            raise ShuttingDown()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, fut))
        self._wake.set()
        try:
            return await fut
        except Exception as exc:
            problem = self._db.storage_problem(exc)
            if problem is None:
                raise
            raise StorageUnavailable(f"{problem}; nothing of this change was written") from exc

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        await self._task

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                if self._closing:
                    return
                continue
            batch, self._queue = self._queue[:BATCH_MAX], self._queue[BATCH_MAX:]
            if self._queue:
                self._wake.set()
            try:
                results = await self._db.run_batch([fn for fn, _ in batch])
            except Exception as exc:  # the transaction itself failed (disk full, I/O error)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.writes += len(batch)
            committed = [e for ok, _, events in results if ok for e in events]
            try:
                if committed:
                    if self.last_sequence is not None:
                        self.last_sequence = max(self.last_sequence, committed[-1].sequence)
                    # Before the writers' futures: the watchers woken here run before the
                    # writers' callers (who convert and answer), so events reach them sooner.
                    self.on_events(committed)
            finally:
                for (_, fut), (ok, value, _) in zip(batch, results, strict=True):
                    if not fut.done():
                        if ok:
                            fut.set_result(value)
                        else:
                            fut.set_exception(value)
            if self.outbox_written:
                self.outbox_written = False
                self.on_outbox()
