"""The send loop of one webhook endpoint (`Worker`), run by `webhooks.sender.WebhookSender`: it
scans the endpoint's due deliveries, sends at most `concurrency` at once, records each attempt
and sleeps on the injected clock until a wake-up, the next retry it knows of, or the poll
interval. See `webhooks.sender` for the delivery guarantees.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import aiohttp
import structlog

from pinsched.clock import sleep_or_wake
from pinsched.core import errors
from pinsched.ops.masking import scrub
from pinsched.store import Delivery
from pinsched.webhooks.endpoints import BlockedAddress
from pinsched.webhooks.messages import Endpoint, signed_headers
from pinsched.webhooks.policy import Verdict, judge

if TYPE_CHECKING:
    from pinsched.webhooks.sender import WebhookSender

log = structlog.get_logger("pinsched.webhooks")

GONE_REASON: Final = "410 Gone: endpoint disabled until the daemon restarts"


def claim_s(endpoint: Endpoint) -> float:
    """How long a claimed delivery stays this daemon's (PostgreSQL): past any answer to its
    request, so another daemon only takes over a delivery whose sender is gone."""
    return 2 * endpoint.timeout_s + 30.0


class Worker:
    """The send loop of one endpoint. Counted busy in `sender.activity` from a wake-up until it
    parks again; each request in flight is counted busy too."""

    def __init__(self, sender: WebhookSender, endpoint: Endpoint) -> None:
        self.sender, self.endpoint = sender, endpoint
        self.wake = asyncio.Event()
        self.inflight: dict[int, asyncio.Task[None]] = {}
        self.finished: set[int] = set()  # attempts recorded since the current scan began
        self.timers: list[datetime] = []  # known retry times (a min-heap)
        self.disabled = False
        self.parked = False  # waiting, counted idle

    def poke(self) -> None:
        """Scan the outbox now (busy from this moment: no idle gap before the loop runs)."""
        if self.parked and not self.sender.stopping:
            self.parked = False
            self.sender.activity.enter()
        self.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self.wake.clear()
                try:
                    delay = await self._scan()
                except errors.ShuttingDown:
                    return
                except Exception:
                    log.exception("webhook_worker_error", endpoint=self.endpoint.label)
                    delay = self.sender.poll_s
                await self._wait(delay, stop)
        finally:
            if not self.parked:
                self.parked = True
                self.sender.activity.leave()

    async def _scan(self) -> float:
        s, name = self.sender, self.endpoint.name
        now = s.clock.now()
        if self.disabled:
            killed = await s.store.webhook_kill_endpoint(name, GONE_REASON, now)
            if killed:
                s.dead += killed
                log.warning(
                    "webhook_dead", endpoint=self.endpoint.label, count=killed, reason=GONE_REASON
                )
            return s.poll_s
        while self.timers and self.timers[0] <= now:
            heapq.heappop(self.timers)
        free = s.concurrency - len(self.inflight)
        if free > 0:
            # A row read before an attempt's result was committed looks due again: skip it.
            self.finished.clear()
            due = await s.store.webhook_due(
                name,
                now,
                limit=len(self.inflight) + free,
                claimant=s.claimant,
                claim_until=now + timedelta(seconds=claim_s(self.endpoint)),
            )
            for d in due:
                if d.id in self.inflight or d.id in self.finished or free == 0 or self.disabled:
                    continue
                s.activity.enter()
                self.inflight[d.id] = asyncio.create_task(self._attempt(d))
                free -= 1
        delay = s.poll_s
        if self.timers:
            delay = min(delay, (self.timers[0] - now).total_seconds())
        return delay

    async def _wait(self, delay_s: float, stop: asyncio.Event) -> None:
        if not self.wake.is_set():
            self.parked = True
            self.sender.activity.leave()
        try:
            await sleep_or_wake(self.sender.clock, delay_s, self.wake, stop)
        finally:
            if self.parked:
                self.parked = False
                self.sender.activity.enter()

    async def _attempt(self, d: Delivery) -> None:
        try:
            await self._send(d)
        except Exception:  # a bug or a store failure: log it, try again after a poll
            log.exception(
                "webhook_attempt_error", endpoint=self.endpoint.label, message_id=d.message_id
            )
            heapq.heappush(
                self.timers, self.sender.clock.now() + timedelta(seconds=self.sender.poll_s)
            )
        finally:
            self.inflight.pop(d.id, None)
            self.finished.add(d.id)
            self.poke()
            self.sender.activity.leave()

    async def _send(self, d: Delivery) -> None:
        s, ep = self.sender, self.endpoint
        assert s.session is not None
        attempt = d.attempts + 1
        headers = signed_headers(ep.keys, d.message_id, int(s.clock.now().timestamp()), d.payload)
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        s.attempts += 1
        try:
            async with s.session.post(
                ep.url,
                data=d.payload.encode(),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=ep.timeout_s),
            ) as resp:
                status = resp.status
                if not 200 <= status < 300:
                    snippet = (await resp.content.read(200)).decode("utf-8", "replace").strip()
                    error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        except TimeoutError:
            error = f"no response within {ep.timeout_s:g}s"
        except aiohttp.ClientConnectorDNSError as exc:
            error = (
                f"refused: {exc.os_error}"
                if isinstance(exc.os_error, BlockedAddress)
                else f"cannot resolve {urlsplit(ep.url).hostname}: {exc.os_error}"
            )
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        error = scrub(error, ep.url) if error else error
        await self._record(d, attempt, status, error, latency_ms)

    async def _record(
        self, d: Delivery, attempt: int, status: int | None, error: str | None, latency_ms: float
    ) -> None:
        s, name = self.sender, self.endpoint.name
        outcome = judge(status, key=f"{name}\n{d.message_id}", attempts=attempt)
        now = s.clock.now()
        s.on_attempt(self.endpoint.url, outcome.verdict is Verdict.DELIVERED)
        fields = {
            "endpoint": self.endpoint.label,
            "message_id": d.message_id,
            "event_type": d.event_type,
            "attempt": attempt,
            "status": status,
            "latency_ms": latency_ms,
        }
        if outcome.verdict is Verdict.DELIVERED:
            await s.store.webhook_record(
                d.id,
                state="DELIVERED",
                attempts=attempt,
                next_attempt_at=now,
                status=status,
                error=None,
                now=now,
                claimant=s.claimant,
            )
            s.delivered += 1
            log.info("webhook_delivered", **fields)
            return
        s.failures += 1
        if outcome.verdict is Verdict.RETRY:
            retry_at = now + timedelta(seconds=outcome.retry_in_s)
            await s.store.webhook_record(
                d.id,
                state="PENDING",
                attempts=attempt,
                next_attempt_at=retry_at,
                status=status,
                error=error,
                now=now,
                claimant=s.claimant,
            )
            heapq.heappush(self.timers, retry_at)
            log.warning(
                "webhook_failed", **fields, error=error, retry_in_s=round(outcome.retry_in_s, 1)
            )
            return
        gone = outcome.verdict is Verdict.GONE
        first_gone = gone and not self.disabled
        self.disabled = self.disabled or gone  # before any await: no scan starts another send
        await s.store.webhook_record(
            d.id,
            state="DEAD",
            attempts=attempt,
            next_attempt_at=now,
            status=status,
            error=GONE_REASON if gone else error,
            now=now,
            claimant=s.claimant,
        )
        s.dead += 1
        log.warning("webhook_dead", **fields, error=GONE_REASON if gone else error)
        if first_gone:
            killed = await s.store.webhook_kill_endpoint(name, GONE_REASON, now)
            s.dead += killed
            log.warning(
                "webhook_endpoint_disabled",
                endpoint=self.endpoint.label,
                dead=killed + 1,
                reason=GONE_REASON,
            )
