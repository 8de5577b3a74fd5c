"""The one source of time: the `Clock` protocol and `SystemClock`, the real one.

Tests and the bench drive a `pinsched.testing.FakeClock` instead.

Pure modules never read a clock: they take `now`. Only the async shell (scheduler, dispatcher,
api) holds a `Clock`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait *seconds* of this clock's time."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class Activity:
    """Counts the shell's tasks that are working — not parked waiting for work or sleeping on
    the clock. `idle` is set when none is: with a `FakeClock`, a test advances time, then waits
    for `idle` to know the daemon has done everything that time made due."""

    def __init__(self) -> None:
        self.busy = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.busy += 1
        self.idle.clear()

    def leave(self) -> None:
        self.busy -= 1
        if self.busy <= 0:
            self.busy = 0
            self.idle.set()
