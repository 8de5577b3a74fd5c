"""Due publishes before video staging: staging waits its turn while pins are being published.

Staging a video is work on the same event loop and the same store writer as publishing a pin
(a download, a registration, a multipart upload, status polls, a commit per step). Under a
stream of due pins that work lands between two publishes and makes them late. `PublishFirst`
is the turn staging takes before each step: while publishing is busy it waits, a short sleep on
the clock at a time, then goes.

*Busy* means a pin was queued or submitted within the last `quiet_s` (the store's committed
events, `observe`), or the scheduler's next due job is at most `ahead_s` away (`next_due_us`).
A paced account publishing now and then leaves quiet gaps, so only a steady stream of due pins
holds staging back.

Never starved: a step waits at most `max_wait_s`, and not at all once its job is *urgent* (the
caller's `urgent_at`, half the media lead time before the planned time), so a video is still
staged ahead of its pin however busy the daemon stays.

`take_write` is how a staging step takes its account's (and the app's) write token, as the
dispatcher's deletes do: the registration is a write like a pin's creation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Final

from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Clock
from pinsched.core.jobs import JobState
from pinsched.store import Event, codec

#: A pin queued or submitted this recently means publishing is under way.
QUIET_S: Final = 0.5
#: A pin due this soon is about to be published.
AHEAD_S: Final = 1.0
#: How long a waiting step sleeps before it looks again.
POLL_S: Final = 0.1
#: The longest a step waits for its turn.
MAX_WAIT_S: Final = 60.0
_PUBLISHING: Final = frozenset({JobState.QUEUED, JobState.SUBMITTED})


class PublishFirst:
    def __init__(
        self,
        clock: Clock,
        *,
        next_due_us: Callable[[], int | None] = lambda: None,
        quiet_s: float = QUIET_S,
        ahead_s: float = AHEAD_S,
        poll_s: float = POLL_S,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self.clock, self.next_due_us = clock, next_due_us
        self.quiet_s, self.ahead_s, self.poll_s, self.max_wait_s = (
            quiet_s,
            ahead_s,
            poll_s,
            max_wait_s,
        )
        self.last_publish: float | None = None  # clock.monotonic() of the last QUEUED/SUBMITTED
        self.waited_s = 0.0  # in all, for the metrics and the bench

    def observe(self, events: Sequence[Event]) -> None:
        """Committed events: note when a pin was last queued or submitted."""
        for event in events:
            if event.transition.to_state in _PUBLISHING:
                self.last_publish = self.clock.monotonic()
                return

    def busy(self) -> bool:
        """Whether pins are being published now or one is due within `ahead_s`."""
        if (
            self.last_publish is not None
            and self.clock.monotonic() - self.last_publish < self.quiet_s
        ):
            return True
        due = self.next_due_us()
        return due is not None and due - codec.to_us(self.clock.now()) <= self.ahead_s * 1e6

    async def turn(
        self, *, urgent_at: datetime, sleep: Callable[[float], Awaitable[None]]
    ) -> float:
        """Wait (with *sleep*) while publishing is busy, at most `max_wait_s` and not past
        *urgent_at*; the seconds waited."""
        waited = 0.0
        while waited < self.max_wait_s and self.clock.now() < urgent_at and self.busy():
            await sleep(self.poll_s)
            waited += self.poll_s
        self.waited_s += waited
        return waited


async def take_write(
    accounts: AccountRegistry,
    clock: Clock,
    account_id: str,
    stopping: asyncio.Event,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Wait for a write token of the account (and the app), like the dispatcher's deletes."""
    while not stopping.is_set():
        pacer = accounts.pacer(account_id)
        mono = clock.monotonic()
        wait = max(0.0, pacer.blocked_until - mono) or pacer.write_delay(mono)
        if not wait:
            wait = accounts.app_bucket.try_take(mono)
            if wait:
                pacer.bucket.tokens += 1.0
        if not wait:
            return
        await sleep(wait)
    raise asyncio.CancelledError
