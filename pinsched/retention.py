"""Retention: how long settled jobs, their events and finished webhook deliveries are kept.

`Retention.run` wakes every `interval_s` of the injected clock and asks the store to prune what
settled more than `days` ago, one small batch at a time (`Store.prune`): each batch is a single
operation in the writer's group commit, and the next is queued only after the previous one
committed, so the scheduler's and the API's writes interleave with it and are never stalled
behind a large delete. `days == 0` keeps everything. The store decides what may go
(`pinsched.store.retention`); this module decides when.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Final

import structlog

from pinsched.clock import Activity, Clock, periodic
from pinsched.store import Pruned, Store

log = structlog.get_logger("pinsched.retention")

DEFAULT_DAYS: Final = 30
BATCH: Final = 200  # jobs (with their events) and deliveries per batch
INTERVAL_S: Final = 600.0


class Retention:
    """Prunes the store on a timer of the injected clock."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        days: int,
        batch: int = BATCH,
        interval_s: float = INTERVAL_S,
        activity: Activity | None = None,
    ) -> None:
        self.store, self.clock = store, clock
        self.days, self.batch, self.interval_s = days, batch, interval_s
        self.activity = activity or Activity()
        self.total = Pruned()
        self.batches = 0

    async def prune_once(self) -> Pruned:
        """Prune everything that is due now, batch after batch."""
        if self.days <= 0:
            return Pruned()
        cutoff = self.clock.now() - timedelta(days=self.days)
        done = Pruned()
        while True:
            got = await self.store.prune(cutoff, limit=self.batch)
            self.batches += 1
            done += got
            if not got.more:
                break
            await asyncio.sleep(0)  # let other tasks queue their writes before the next batch
        self.total += done
        if done.jobs or done.deliveries:
            log.info(
                "retention_pruned",
                jobs=done.jobs,
                events=done.events,
                deliveries=done.deliveries,
                retention_days=self.days,
            )
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Prune at start and then every `interval_s`, until *stop* is set."""
        if self.days <= 0:
            return
        await periodic(
            self.clock, self.activity, self.interval_s, stop, self.prune_once, name="retention"
        )
