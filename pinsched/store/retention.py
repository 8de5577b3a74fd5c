"""Retention in the store: pruning settled jobs, their events and finished webhook deliveries,
in small batches, on the writer's group-commit path.

A job is pruned once it has been DELIVERED, PERMANENTLY_FAILED or CANCELLED for longer than the
retention (by `updated_at`) and has no remote update pending; its events go in the same
transaction. A webhook delivery is pruned once it has been DELIVERED or DEAD for that long.
Each call deletes at most `limit` jobs (fewer when their inline images add up to more than
`MEDIA_BYTES`) and `limit` deliveries, so it is one small operation among the writes of its
batch and never holds the writer for long; `Pruned.more` says whether another call has work.
FAILED jobs wait for the user and are kept. Deciding *when* to prune is
`pinsched.retention`'s business.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pinsched.store import codec
from pinsched.store.driver import Tx
from pinsched.store.rows import Event

T = TypeVar("T")

# Written exactly as the partial indexes `jobs_settled` and `webhook_done` say, so SQLite uses them.
_SETTLED_SQL = "state IN ('CANCELLED', 'DELIVERED', 'PERMANENTLY_FAILED')"
_DONE_SQL = "state IN ('DEAD', 'DELIVERED')"
MEDIA_BYTES = 2 * 1024 * 1024  # inline image bytes one call may free (the images go with jobs)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one pruning batch deleted."""

    jobs: int = 0
    events: int = 0
    deliveries: int = 0
    more: bool = False  # the batch was full: call again

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.jobs + other.jobs,
            self.events + other.events,
            self.deliveries + other.deliveries,
            other.more,
        )


class RetentionMixin:
    """Pruning queries; mixed into `Store`."""

    #: The longest one pruning operation ran in the writer thread, in ms (benchmarks read it).
    prune_ms_max: float = 0.0

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def prune(self, before: datetime, *, limit: int = 200) -> Pruned:
        """Delete up to *limit* settled jobs (with their events) and up to *limit* finished
        webhook deliveries last changed before *before*."""
        cutoff = codec.to_us(before)

        async def op(db: Tx, _: list[Event]) -> Pruned:
            started = time.perf_counter()
            size_sql = db.dialect.json_int("pin", "media", "image_base64", "size")
            found = await db.fetchall(
                f"SELECT id, coalesce({size_sql}, 0) "
                f"FROM jobs WHERE {_SETTLED_SQL} AND updated_at < ? AND remote_pending = 0 "
                "ORDER BY updated_at LIMIT ?",
                (cutoff, limit),
            )
            ids: list[str] = []
            freed = 0
            for job_id, size in found:
                if ids and freed + size > MEDIA_BYTES:
                    break
                ids.append(job_id)
                freed += size
            events = 0
            if ids:
                marks = ",".join("?" * len(ids))
                events = await db.execute(f"DELETE FROM events WHERE job_id IN ({marks})", ids)
                await db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
            deliveries = await db.execute(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries "
                f"WHERE {_DONE_SQL} AND updated_at < ? ORDER BY updated_at LIMIT ?)",
                (cutoff, limit),
            )
            more = len(found) == limit or len(ids) < len(found) or deliveries == limit
            self.prune_ms_max = max(self.prune_ms_max, (time.perf_counter() - started) * 1000)
            return Pruned(len(ids), int(events), int(deliveries), more)

        return await self._write(op)
