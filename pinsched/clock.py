"""The one source of time: the `Clock` protocol and `SystemClock`, the real one.

Tests and the bench drive a `pinsched.testing.FakeClock` instead.

Pure modules never read a clock: they take `now`. Only the async shell (scheduler, dispatcher,
api) holds a `Clock`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

log = structlog.get_logger("pinsched.clock")


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


async def sleep_or_wake(clock: Clock, seconds: float | None, *events: asyncio.Event) -> None:
    """Sleep *seconds* of *clock* (None: no time limit), or less: until one of *events* is
    set (a stop, a wake-up). Returns at once when one already is."""
    if seconds is None and not events:
        raise ValueError("sleep_or_wake needs a time or an event to end on")
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(e.wait()) for e in events]
    if seconds is not None:
        waits.append(asyncio.ensure_future(clock.sleep(seconds)))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()


async def periodic(
    clock: Clock,
    activity: Activity,
    interval_s: float,
    stop: asyncio.Event,
    work: Callable[[], Awaitable[Any]],
    *,
    name: str,
) -> None:
    """Run *work* at once and then every *interval_s* of *clock*, until *stop* is set.

    A failing pass is logged (`{name}_failed`) and tried again at the next tick: storage
    trouble never ends the loop. Between passes the task is parked (not counted in *activity*),
    so a test on a `FakeClock` sees the daemon idle until time makes the next pass due."""
    activity.enter()
    try:
        while not stop.is_set():
            try:
                await work()
            except Exception:
                log.exception(f"{name}_failed")
            activity.leave()
            try:
                await sleep_or_wake(clock, interval_s, stop)
            finally:
                activity.enter()
    finally:
        activity.leave()
