"""Webhook sending: the async shell that drains the durable outbox to the configured endpoints.

Owns `WebhookSender` (its endpoints come from `webhooks.endpoints.prepare_endpoints`, re-exported
here): one worker task per endpoint (`webhooks.worker.Worker`), so a dead endpoint never delays
another. A worker sends the
deliveries `Store.webhook_due` returns (the head of each job's queue, so a job's events go out one
at a time, in order), at most `concurrency` at once, each POST with the endpoint's timeout, no
redirects, and a resolver that refuses link-local / metadata addresses at connection time too (DNS
rebinding). It records each attempt (`webhook_record`) and sleeps on the injected `Clock` until a
wake-up (new rows: `wake`, which the store calls after a commit that enqueued deliveries; a
finished request; a redelivery), the next retry it knows of, or `POLL_S` (the outbox is the
truth; wake-ups are only hints, so rows left by a restart are picked up within a poll).

At-least-once: a delivery is marked only after the receiver answered, so a crash or a stop with
requests in flight sends them again after the restart, with the same `webhook-id`.
Several daemons on one PostgreSQL database: each scan claims what it sends (`claimant`, this
sender's own name; `pinsched.store.outbox_claims`), so a delivery is sent by one daemon at a
time, in order per job; a killed daemon's claims run out and another daemon sends them.
`410 Gone` disables the endpoint until the daemon restarts: its pending deliveries (and any new
ones) become DEAD, re-sendable with `redeliver` after the restart.

It does not render bodies, sign, or decide retry delays (`webhooks.messages`, `webhooks.policy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import aiohttp
import structlog

from pinsched.clock import Activity, Clock
from pinsched.core import errors
from pinsched.core.accounts import Account
from pinsched.ops.masking import mask_url
from pinsched.store import Delivery, Event, OutboxRow, Store
from pinsched.webhooks.endpoints import (
    BlockedAddress,
    GetAddrInfo,
    SafeResolver,
    prepare_endpoints,
)
from pinsched.webhooks.messages import Endpoint, JsonRenderer, OutboxRenderers
from pinsched.webhooks.worker import Worker

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
        #: Whose claims this sender's are (PostgreSQL): unique per process and start.
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._getaddrinfo = getaddrinfo
        self._workers = {e.name: Worker(self, e) for e in endpoints}
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
        with contextlib.suppress(Exception):  # otherwise they come back when they run out
            await self.store.webhook_release(self.claimant)
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

    async def deliveries(
        self, *, endpoint: str = "", state: str = "", after_id: int = 0, limit: int = 100
    ) -> list[Delivery]:
        """Outbox rows in id order after *after_id* (all endpoints and states when empty);
        *endpoint* may be given as its URL or its masked URL."""
        return await self.store.webhook_list(
            endpoint=self.endpoint_name(endpoint), state=state, after_id=after_id, limit=limit
        )

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
