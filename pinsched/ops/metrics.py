"""Prometheus metrics: what is counted, how it is collected, and the `/metrics` HTTP endpoint.

Counters come from the committed event stream (`Metrics.tap` sits between the store and the event
bus), so the publish path needs no instrumentation of its own and a metric never counts a change
that was not committed:

    SUBMITTED → DELIVERED                        pins delivered, by account
    SUBMITTED → RETRYING | FAILED | PERM_FAILED  failed attempts, by account and error category;
                                                 retries; 429s (category RATE_LIMITED)
    → FAILED | PERMANENTLY_FAILED                jobs that failed for good (or need the user)
    QUEUED → SUBMITTED, first attempt            dispatch lateness (sent - planned)
    every event                                  transitions by (from, to)

Gauges are read when Prometheus scrapes: job counts by state (`Store.count_by_state`, cached for
`refresh_interval_s`), webhook outbox depth (`Store.webhook_depth`), due-heap size, held jobs,
watchers, Pinterest requests in flight, token refreshes; with several daemons on one database
(`pinsched.cluster`), live members, leases held, takeovers and leases lost. RPC latency and
status codes come from a grpc.aio server interceptor (`Metrics.interceptor`), labelled from the
set of methods the daemon serves (anything else is `unknown`); it runs after the token check,
which only counts refusals (`denied`). Webhook senders report each attempt with
`Metrics.webhook_attempt(endpoint, ok)`.

Each `Metrics` has its own `CollectorRegistry` (several daemons can live in one test process).
Served in-process by aiohttp on `Config.metrics_listen` (`GET /metrics`). Nothing here changes a
job or blocks the event loop; labels never carry a token (webhook URLs lose userinfo and query).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import grpc
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from pinsched.core.jobs import JobState
from pinsched.ops.rpc_metrics import RpcMetrics
from pinsched.store import Event, Store

if TYPE_CHECKING:
    from pinsched.accounts.registry import AccountRegistry
    from pinsched.cluster.member import Member
    from pinsched.dispatch.dispatcher import Dispatchers
    from pinsched.events import EventBus
    from pinsched.scheduler import Scheduler

__all__ = ["LATENESS_BUCKETS", "Metrics"]

log = structlog.get_logger("pinsched.metrics")
S = JobState

LATENESS_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
RPC_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_ATTEMPT_FAILED: Final = frozenset({S.RETRYING, S.FAILED, S.PERMANENTLY_FAILED})


def endpoint_label(url: str) -> str:
    """A webhook URL without userinfo, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?", 1)[0]


class Metrics:
    """The daemon's metrics: counters fed by events and hooks, gauges read at scrape time."""

    def __init__(self, *, refresh_interval_s: float = 1.0) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.delivered = Counter(
            "pinsched_pins_delivered", "Pins published on Pinterest.", ["account"], registry=r
        )
        self.attempt_failures = Counter(
            "pinsched_attempt_failures",
            "Publish attempts that failed, by error category.",
            ["account", "category"],
            registry=r,
        )
        self.retries = Counter(
            "pinsched_retries",
            "Jobs sent back to RETRYING after an attempt.",
            ["account", "category"],
            registry=r,
        )
        self.rate_limited = Counter(
            "pinsched_rate_limited", "Attempts answered 429 by Pinterest.", ["account"], registry=r
        )
        self.job_failures = Counter(
            "pinsched_job_failures",
            "Jobs that reached FAILED (needs the user) or PERMANENTLY_FAILED.",
            ["account", "category", "state"],
            registry=r,
        )
        self.transitions = Counter(
            "pinsched_job_transitions",
            "Job state changes committed.",
            ["from_state", "to_state"],
            registry=r,
        )
        self.lateness = Histogram(
            "pinsched_dispatch_lateness_seconds",
            "First attempt sent time minus planned time.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.rpc_duration = Histogram(
            "pinsched_rpc_duration_seconds",
            "gRPC unary call latency (server side).",
            ["service", "method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.rpc_requests = Counter(
            "pinsched_rpc_requests",
            "gRPC calls by final status code.",
            ["service", "method", "code"],
            registry=r,
        )
        self.unauthenticated = Counter(
            "pinsched_rpc_unauthenticated",
            "gRPC calls refused for a missing or wrong API token.",
            registry=r,
        )
        self.webhook_attempts = Counter(
            "pinsched_webhook_attempts",
            "Webhook POSTs, by endpoint and outcome.",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.refresh_interval_s = refresh_interval_s
        self.port: int | None = None
        self._store: Store | None = None
        self._scheduler: Scheduler | None = None
        self._bus: EventBus | None = None
        self._accounts: AccountRegistry | None = None
        self._dispatchers: Dispatchers | None = None
        self._member: Member | None = None
        self._states: dict[JobState, int] = {}
        self._webhooks: dict[tuple[str, str], int] = {}
        self._refreshed_at = float("-inf")
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        #: Label children of the per-event counters, looked up once (series are never removed):
        #: (from, to) → transitions' `inc`, account → delivered's `inc`.
        self._transition_inc: dict[tuple[JobState | None, JobState], Callable[[], None]] = {}
        self._delivered_inc: dict[str, Callable[[], None]] = {}
        r.register(_Live(self))

    # -- inputs ------------------------------------------------------------------------------

    def bind(
        self,
        *,
        store: Store,
        scheduler: Scheduler | None = None,
        bus: EventBus | None = None,
        accounts: AccountRegistry | None = None,
        dispatchers: Dispatchers | None = None,
        member: Member | None = None,
    ) -> None:
        """Give the scrape-time gauges their sources."""
        self._store, self._scheduler, self._bus = store, scheduler, bus
        self._accounts, self._dispatchers = accounts, dispatchers
        self._member = member

    def tap(self, sink: Callable[[Sequence[Event]], None]) -> Callable[[Sequence[Event]], None]:
        """An event sink that counts committed events, then hands them to *sink*."""

        def observe_then(events: Sequence[Event]) -> None:
            try:
                self.observe(events)
            except Exception:  # a metric must never stop events from reaching watchers
                log.exception("metrics_observe_failed")
            sink(events)

        return observe_then

    def observe(self, events: Iterable[Event]) -> None:
        """Count committed events (see the module docstring for what each one feeds)."""
        for event in events:
            t = event.transition
            account = event.account_id
            src = t.from_state
            inc = self._transition_inc.get((src, t.to_state))
            if inc is None:
                inc = self.transitions.labels(src.value if src else "", t.to_state.value).inc
                self._transition_inc[(src, t.to_state)] = inc
            inc()
            if src is S.SUBMITTED and t.to_state is S.DELIVERED:
                inc = self._delivered_inc.get(account)
                if inc is None:
                    inc = self._delivered_inc[account] = self.delivered.labels(account).inc
                inc()
            elif src is S.SUBMITTED and t.to_state in _ATTEMPT_FAILED and t.error is not None:
                category = t.error.category.value
                self.attempt_failures.labels(account, category).inc()
                if t.to_state is S.RETRYING:
                    self.retries.labels(account, category).inc()
                if t.error.http_status == 429 or category == "RATE_LIMITED":
                    self.rate_limited.labels(account).inc()
            if t.to_state in (S.FAILED, S.PERMANENTLY_FAILED) and src is not t.to_state:
                category = t.error.category.value if t.error else ""
                self.job_failures.labels(account, category, t.to_state.value).inc()
            job = event.job
            if (
                src is S.QUEUED
                and t.to_state is S.SUBMITTED
                and job is not None
                and job.attempts == 1
                and job.next_attempt_at is None
                and job.late_by is not None
            ):
                self.lateness.observe(max(0.0, job.late_by.total_seconds()))

    def denied(self) -> None:
        """Count one call refused by the token check (no labels: callers cannot mint series)."""
        self.unauthenticated.inc()

    def webhook_attempt(self, endpoint: str, ok: bool) -> None:
        """Record one webhook POST to *endpoint* (a URL; credentials are stripped)."""
        self.webhook_attempts.labels(endpoint_label(endpoint), "ok" if ok else "failed").inc()

    # -- scrape ------------------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read the store-backed gauges, at most once per `refresh_interval_s`."""
        store = self._store
        if store is None:
            return
        async with self._lock:
            now = time.monotonic()
            if not force and now - self._refreshed_at < self.refresh_interval_s:
                return
            try:
                self._states = await store.count_by_state()
                self._webhooks = await store.webhook_depth()
            except Exception as exc:  # closing, busy: serve the last values
                log.warning("metrics_refresh_failed", error=str(exc))
                return
            self._refreshed_at = now

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (body, content type) for an `Accept` header."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def _collect_live(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "pinsched_jobs", "Jobs by state (the queue depth).", labels=["state"]
        )
        for state in JobState:
            jobs.add_metric([state.value], self._states.get(state, 0))
        yield jobs
        outbox = GaugeMetricFamily(
            "pinsched_webhook_outbox",
            "Webhook deliveries by endpoint and state.",
            labels=["endpoint", "state"],
        )
        for (endpoint, delivery_state), count in sorted(self._webhooks.items()):
            outbox.add_metric([endpoint_label(endpoint), delivery_state], count)
        yield outbox
        sched = self._scheduler
        if sched is not None:
            yield GaugeMetricFamily(
                "pinsched_due_heap_size",
                "Jobs in the due-heap's window (due within minutes).",
                value=len(sched.heap),
            )
            yield GaugeMetricFamily(
                "pinsched_held_jobs",
                "Jobs held because their account cannot publish.",
                value=sum(len(ids) for ids in sched.held.values()),
            )
        if self._bus is not None:
            yield GaugeMetricFamily(
                "pinsched_watchers", "Open WatchJobs streams.", value=self._bus.watchers
            )
        if self._dispatchers is not None:
            yield GaugeMetricFamily(
                "pinsched_pinterest_in_flight",
                "Publish requests to Pinterest in flight.",
                value=self._dispatchers.in_flight,
            )
        if self._accounts is not None:
            yield CounterMetricFamily(
                "pinsched_token_refreshes",
                "OAuth refresh-token grants requested from Pinterest.",
                value=self._accounts.refreshes,
            )
        if (member := self._member) is not None:
            yield from _cluster_metrics(member)

    # -- HTTP ----------------------------------------------------------------------------------

    async def serve(self, listen: str) -> int:
        """Serve `GET /metrics` on *listen* (host:port, port 0 = any); returns the port."""
        host, _, port = listen.rpartition(":")
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host.strip("[]"), int(port))
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("metrics_ready", listen=listen, port=self.port)
        return self.port

    async def _handle(self, request: web.Request) -> web.Response:
        await self.refresh()
        body, content_type = self.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def close(self) -> None:
        """Stop the HTTP endpoint (if serving)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- gRPC ----------------------------------------------------------------------------------

    def interceptor(self) -> grpc.aio.ServerInterceptor[Any, Any]:
        """A server interceptor timing every RPC and counting its status code."""
        return RpcMetrics(self)


def _cluster_metrics(member: Member) -> Iterator[Metric]:
    """This daemon's part of the cluster (`pinsched.cluster.member.Member`)."""
    yield GaugeMetricFamily(
        "pinsched_cluster_members",
        "Live daemons on this database, as this one saw at its last tick.",
        value=len(member.members),
    )
    yield GaugeMetricFamily(
        "pinsched_cluster_leases_held",
        "Account leases this daemon holds (the accounts it publishes).",
        value=len(member.owned()),
    )
    yield CounterMetricFamily(
        "pinsched_cluster_takeovers",
        "Account leases this daemon took that another daemon (or an earlier run) held before.",
        value=member.counts.takeovers,
    )
    yield CounterMetricFamily(
        "pinsched_cluster_leases_lost",
        "Account leases found taken by another daemon at renewal (this one was too late).",
        value=member.counts.lost,
    )


class _Live:
    """Collector of the scrape-time gauges."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._collect_live()

    def describe(self) -> list[Metric]:
        return []
