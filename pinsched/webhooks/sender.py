"""Webhook sending: the async shell that drains the durable outbox to the configured endpoints.

Owns `WebhookSender` (its endpoints come from `webhooks.endpoints.prepare_endpoints`, re-exported
here): one worker task per endpoint, so a dead endpoint never delays another. A worker sends the
deliveries `Store.webhook_due` returns (the head of each job's queue, so a job's events go out one
at a time, in order), at most `concurrency` at once, each POST with the endpoint's timeout, no
redirects, and a resolver that refuses link-local / metadata addresses at connection time too (DNS
rebinding). It records each attempt (`webhook_record`) and sleeps on the injected `Clock` until a
wake-up (new rows: `wake`, which the store calls after a commit that enqueued deliveries; a
finished request; a redelivery), the next retry it knows of, or `POLL_S` (the outbox is the
truth; wake-ups are only hints, so rows left by a restart are picked up within a poll).

At-least-once: a delivery is marked only after the receiver answered, so a crash or a stop with
requests in flight sends them again after the restart, with the same `webhook-id`.
`410 Gone` disables the endpoint until the daemon restarts: its pending deliveries (and any new
ones) become DEAD, re-sendable with `redeliver` after the restart.

It does not render bodies, sign, or decide retry delays (`webhooks.messages`, `webhooks.policy`).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import structlog

from pinsched import errors
from pinsched.accounts import Account
from pinsched.clock import Activity, Clock
from pinsched.ops.masking import mask_url, scrub
from pinsched.store import Delivery, Event, OutboxRow, Store
from pinsched.webhooks.endpoints import (
    BlockedAddress,
    GetAddrInfo,
    SafeResolver,
    prepare_endpoints,
)
from pinsched.webhooks.messages import Endpoint, JsonRenderer, OutboxRenderers, signed_headers
from pinsched.webhooks.policy import Verdict, judge

__all__ = [
    "POLL_S",
    "BlockedAddress",
    "GetAddrInfo",
    "SafeResolver",
    "WebhookSender",
    "prepare_endpoints",
]

log = structlog.get_logger("pinsched.webhooks")

DEFAULT_CONCURRENCY: Final = 4  # requests in flight per endpoint
POLL_S: Final = 5.0  # longest sleep of an idle worker
MAX_REDELIVER_IDS: Final = 1000
GONE_REASON: Final = "410 Gone: endpoint disabled until the daemon restarts"


class WebhookSender:
    """Sends the outbox of every endpoint. Counters (`attempts`, `delivered`, `failures`,
    `dead`) and `depth()` are for metrics."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        endpoints: Sequence[Endpoint],
        *,
        render: JsonRenderer,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll_s: float = POLL_S,
        getaddrinfo: GetAddrInfo | None = None,
        on_attempt: Callable[[str, bool], None] | None = None,
        activity: Activity | None = None,
    ) -> None:
        self.store, self.clock = store, clock
        self.activity = activity or Activity()
        self.on_attempt = on_attempt or (lambda endpoint, ok: None)
        self.renderers = OutboxRenderers(endpoints, render)
        self.concurrency, self.poll_s = concurrency, poll_s
        self.attempts = self.delivered = self.failures = self.dead = 0
        self._getaddrinfo = getaddrinfo
        self._workers = {e.name: _Worker(self, e) for e in endpoints}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.session: aiohttp.ClientSession | None = None

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self.renderers.endpoints

    @property
    def disabled(self) -> frozenset[str]:
        """Endpoints disabled by a `410 Gone` (until restart)."""
        return frozenset(name for name, w in self._workers.items() if w.disabled)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def in_flight(self) -> int:
        return sum(len(w.inflight) for w in self._workers.values())

    async def depth(self) -> dict[tuple[str, str], int]:
        """Deliveries by (endpoint, state)."""
        return await self.store.webhook_depth()

    # -- outbox hooks (the renderers run in the store's writer thread) --------------------------

    def render_event(self, event: Event) -> list[OutboxRow]:
        return self.renderers.render_event(event)

    def render_account(self, old: Account, new: Account) -> list[OutboxRow]:
        return self.renderers.render_account(old, new)

    def render_notice(self, kind: str, at: datetime, data: Mapping[str, Any]) -> list[OutboxRow]:
        return self.renderers.render_notice(kind, at, data)

    def wake(self) -> None:
        """New deliveries were committed (the store calls this after such a commit)."""
        self._wake_all()

    def _wake_all(self) -> None:
        for worker in self._workers.values():
            worker.poke()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=SafeResolver(self._getaddrinfo))
        self.session = aiohttp.ClientSession(connector=connector)
        for worker in self._workers.values():
            self.activity.enter()
            self._tasks.append(
                asyncio.create_task(worker.run(self._stop), name=f"webhook:{worker.endpoint.label}")
            )
        if self._workers:
            log.info("webhook_sender_started", endpoints=[e.label for e in self.endpoints])

    async def stop(self, grace_s: float) -> None:
        """Stop scanning; let requests in flight finish within *grace_s* (the others stay
        PENDING and are sent again after the restart); close the HTTP session."""
        self._stop.set()
        self._wake_all()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        inflight = [t for w in self._workers.values() for t in w.inflight.values()]
        if inflight:
            _, late = await asyncio.wait(inflight, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.session is not None:
            await self.session.close()

    # -- operations -----------------------------------------------------------------------------

    async def redeliver(self, *, delivery_ids: Sequence[int] = (), endpoint: str = "") -> int:
        """Make DEAD deliveries PENDING again: the given ids, or all of *endpoint*. Raises
        InvalidArgument, NotFound, FailedPrecondition (see `RedeliverWebhooks`)."""
        if bool(delivery_ids) == bool(endpoint):
            raise errors.InvalidArgument.one(
                "delivery_ids", "give delivery_ids or endpoint (not both)"
            )
        if len(delivery_ids) > MAX_REDELIVER_IDS:
            raise errors.InvalidArgument.one(
                "delivery_ids", f"at most {MAX_REDELIVER_IDS} ids, got {len(delivery_ids)}"
            )
        endpoint = self.endpoint_name(endpoint)
        if endpoint:
            self._usable(endpoint, field="endpoint")
            count = await self.store.webhook_redeliver(now=self.clock.now(), endpoint=endpoint)
            touched = {endpoint}
        else:
            touched = set()
            for i, delivery_id in enumerate(delivery_ids):
                d = await self._get(delivery_id, field=f"delivery_ids[{i}]")
                if d.state != "DEAD":
                    raise errors.FailedPrecondition(
                        f"webhook delivery {d.id} is {d.state}; only DEAD deliveries are re-sent"
                    )
                self._usable(d.endpoint, field=None)
                touched.add(d.endpoint)
            count = await self.store.webhook_redeliver(
                now=self.clock.now(), delivery_ids=list(delivery_ids)
            )
        for name in touched:
            self._workers[name].poke()
        log.info(
            "webhook_redelivered",
            count=count,
            endpoints=sorted(self._workers[n].endpoint.label for n in touched),
        )
        return count

    def endpoint_name(self, given: str) -> str:
        """The outbox name of the endpoint *given* as its URL or as its masked URL (the form
        ListWebhookDeliveries shows); *given* itself when no endpoint matches."""
        for name in self._workers:
            if given == mask_url(name):
                return name
        return given

    def _usable(self, name: str, *, field: str | None) -> None:
        worker = self._workers.get(name)
        if worker is None:
            message = f"{mask_url(name)!r} is not a configured webhook endpoint"
            if field is not None:
                known = ", ".join(sorted(mask_url(n) for n in self._workers)) or "none"
                raise errors.InvalidArgument.one(field, f"{message} (configured: {known})")
            raise errors.FailedPrecondition(message + " (any more); its deliveries cannot be sent")
        if worker.disabled:
            raise errors.FailedPrecondition(
                f"webhook endpoint {mask_url(name)} answered 410 Gone and is disabled until the "
                "daemon restarts; fix the receiver, restart, then redeliver"
            )

    async def _get(self, delivery_id: int, *, field: str) -> Delivery:
        if delivery_id <= 0:
            raise errors.InvalidArgument.one(field, f"not a delivery id: {delivery_id}")
        rows = await self.store.webhook_list(after_id=delivery_id - 1, limit=1)
        if not rows or rows[0].id != delivery_id:
            raise errors.NotFound(f"webhook delivery {delivery_id} does not exist")
        return rows[0]


class _Worker:
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
            due = await s.store.webhook_due(name, now, limit=len(self.inflight) + free)
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
        waits = [
            asyncio.ensure_future(self.sender.clock.sleep(delay_s)),
            asyncio.ensure_future(self.wake.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        if not self.wake.is_set():
            self.parked = True
            self.sender.activity.leave()
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self.parked:
                self.parked = False
                self.sender.activity.enter()
            for w in waits:
                w.cancel()

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
