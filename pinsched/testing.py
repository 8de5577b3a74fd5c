"""What tests and the bench (and any tool that must drive time) share: `FakeClock`, a
`pinsched.clock.Clock` whose time moves only when told to, and `MidRandom`, a random source
whose draws are known in advance.

Production code never imports this module.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any


class FakeClock:
    """Time that moves only when a test calls `advance` (or `set`).

    Sleepers are woken in deadline order; `advance` yields to the loop after each wake-up so the
    woken tasks run before time moves on, which lets a test drive days of schedule in milliseconds.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._offset = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """Sleep *seconds* counted from this call, not from when the returned coroutine first
        runs. A caller that hands `sleep(delay)` to a new task (`asyncio.ensure_future`) computed
        *delay* from `now()`; the task may start only after `advance` moved time on (it does not
        wait for a task that is waiting on real I/O, a database query), and the delay would be
        counted from there: a 5-minute sleep asked at 09:40 would end at 10:05, not 09:45."""
        return self._sleep_until(self._offset + seconds)

    async def _sleep_until(self, deadline: float) -> None:
        if deadline <= self._offset:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._ids), fut))
        await fut

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        """Seconds from now until the earliest pending sleep ends."""
        live = [d for d, _, f in self._sleepers if not f.done()]
        return min(live) - self._offset if live else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by *seconds*, waking every sleeper whose deadline passes."""
        if seconds < 0:
            raise ValueError("a FakeClock never goes back")
        # Let tasks made runnable just before this call register their sleeps first.
        await _settle()
        target = self._offset + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self._offset = max(self._offset, deadline)
            fut.set_result(None)
            await _settle()
        self._offset = target
        await _settle()

    async def set(self, when: datetime) -> None:
        """Advance to *when* (never backwards)."""
        await self.advance(max(0.0, (when - self.now()).total_seconds()))


async def _settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


class MidRandom(random.Random):
    """A random source whose `uniform` draws the middle of every range: a backoff known in
    advance, for tests that must know when a retry is due."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2
