"""Composition root and lifecycle: builds the parts, starts them in order, stops them in reverse.

Start: webhook endpoints checked → store (token cipher, outbox renderers) → accounts → Pinterest
client → webhook sender (one worker per endpoint) → dispatchers → scheduler (heap rebuilt from the
store) → retention (prunes settled jobs in small batches on the clock) → gRPC server (guard: token
then parsing; API, health, reflection) → HTTP/JSON door → health-only port. Stop (SIGTERM/SIGINT
set an event, nothing else), one deadline for every step: health NOT_SERVING → gRPC server and
HTTP door stop accepting, in-flight RPCs get the grace period → watch streams end → scheduler and
retention stop → dispatchers let in-flight Pinterest requests finish within what is left of it
(anything unfinished stays SUBMITTED and is reconciled at the next start) → webhook POSTs in
flight get the rest (unsent deliveries stay in the outbox) → Pinterest client → store (queued
writes committed). SIGKILL loses nothing either: every change was committed before it was acted
on.

On PostgreSQL several daemons may share the database: each is a cluster member
(`pinsched.cluster`) that publishes only the accounts whose lease it holds; it takes its first
leases before it says it is ready, and lets them go at stop, after its dispatchers stopped.

The HTTP/JSON door (`pinsched.http`, `http_listen`) serves the same servicer objects as the gRPC
server; parts that serve HTTP too add their routes to it through `Daemon.http_extensions`.
Opening and closing those doors (`daemon.doors`), the gRPC server's assembly, the MCP mount and
the app-credentials notices are in `pinsched.daemon`.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog

from pinsched import security
from pinsched.accounts.admin import AccountAdmin
from pinsched.accounts.keeper import TokenKeeper
from pinsched.accounts.registry import AccountRegistry
from pinsched.api.account_servicer import AccountServicer
from pinsched.api.media_servicer import MediaServicer
from pinsched.api.proto_json import PROTO_JSON
from pinsched.api.servicers import PinSchedulerServicer
from pinsched.api.webhook_servicer import WebhookServicer
from pinsched.checks.at_risk import AtRiskWatch
from pinsched.checks.pins import Checker
from pinsched.clock import Activity, Clock, SystemClock
from pinsched.cluster.handover import Handover, join
from pinsched.cluster.member import Member
from pinsched.config import Config
from pinsched.core.accounts import Account
from pinsched.core.retry import RetryPolicy
from pinsched.daemon import grpc_server
from pinsched.daemon.credentials import app_credentials_changed
from pinsched.daemon.doors import Doors
from pinsched.dispatch.dispatcher import Dispatchers, DispatchSettings
from pinsched.dispatch.router import Router
from pinsched.events import EventBus
from pinsched.feed import ClusterFeed, cluster_feed
from pinsched.http.server import HttpDoor
from pinsched.media.assets import MediaAssets, media_dir
from pinsched.media.publish_first import PublishFirst
from pinsched.media.staging import Stager
from pinsched.media.urlprobe import UrlProbe
from pinsched.ops import crypto, logs
from pinsched.ops.limits import DEFAULT as DEFAULT_LIMITS
from pinsched.ops.limits import ServerLimits
from pinsched.ops.masking import url_secrets
from pinsched.ops.metrics import Metrics
from pinsched.pinterest.client import PinterestClient
from pinsched.preflight import preflight
from pinsched.retention import Retention
from pinsched.scheduler import Scheduler
from pinsched.service import PinService
from pinsched.store import Event, Outbox, Store
from pinsched.store.location import redact
from pinsched.webhooks.messages import OutboxRenderers
from pinsched.webhooks.sender import WebhookSender

log = structlog.get_logger("pinsched.app")


class Daemon:
    """The whole pinsched process, startable and stoppable in-process (tests, demo)."""

    def __init__(
        self, config: Config, *, clock: Clock | None = None, limits: ServerLimits = DEFAULT_LIMITS
    ) -> None:
        self.config = config
        self.limits = limits
        self.clock: Clock = clock or SystemClock()
        self.bus = EventBus()
        self.metrics = Metrics()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.doors = Doors(config, limits, self.metrics)
        #: Called with the HTTP door's aiohttp app before it starts: add routes or sub-apps.
        self.http_extensions = self.doors.http_extensions
        self.store: Store
        self.scheduler: Scheduler
        self.dispatchers: Dispatchers
        self.accounts: AccountRegistry
        self.service: PinService
        self.client: PinterestClient
        self.webhooks: WebhookSender | None = None
        self.retention: Retention
        self.keeper: TokenKeeper
        self._notes: set[asyncio.Task[None]] = set()
        self.stager: Stager | None = None
        self.router: Router | None = None
        self.feed: ClusterFeed | None = None  # PostgreSQL (`pinsched.feed`)
        self.assets: MediaAssets
        self.member: Member | None = None  # several daemons on one PostgreSQL database
        self.handover: Handover | None = None

    @property
    def port(self) -> int:
        """The gRPC port (once started)."""
        return self.doors.port

    @property
    def http_port(self) -> int:
        return self.doors.http_port

    @property
    def health_port(self) -> int:
        return self.doors.health_port

    @property
    def http(self) -> HttpDoor | None:
        return self.doors.http

    async def start(self) -> None:
        """Start every part; if any step fails, stop what was started and re-raise (a failed
        start never leaves threads or sockets behind)."""
        try:
            await self._start()
        except BaseException:
            await self.stop(grace_s=0.0)
            raise

    async def _start(self) -> None:
        cfg = self.config
        logs.register_secrets([cfg.api_token, cfg.pinterest_client_secret, cfg.secret_key])
        logs.register_secrets(s for w in cfg.webhooks for s in w.secrets)
        # URL credentials: long enough to be tokens (a query value like `1` is not one).
        logs.register_secrets(s for w in cfg.webhooks for s in url_secrets(w.url) if len(s) >= 8)
        endpoints = await preflight(cfg)  # what `config check` checks too (ConfigError)
        renderers = OutboxRenderers(endpoints, PROTO_JSON)  # the sender, made below, wakes
        self.store = await Store.open(
            cfg.db_path,
            on_events=self.metrics.tap(self._on_events),
            outbox=Outbox(
                renderers.render_event,
                renderers.render_account,
                on_written=lambda: self.webhooks.wake() if self.webhooks else None,
            ),
            cipher=crypto.cipher_of(cfg.secret_key),
            cluster=cfg.cluster,
        )
        if self.store.backend == "postgresql":  # every daemon's events, in order
            self.feed = await cluster_feed(self.store, self.bus, cfg.db_path, self)
        # After the store opened: a start refused at the database prints its one line only.
        for warning in security.warnings(cfg):
            log.warning("insecure_config", warning=warning)
        await crypto.install(self.store, now=self.clock.now)
        self.client = PinterestClient(
            cfg.pinterest_api_base, timeout_s=cfg.request_timeout_s, now=self.clock.now
        )
        self.probe = UrlProbe(timeout_s=cfg.verify_timeout_s)
        self.checker = Checker(self.client, self.probe, timeout_s=cfg.verify_timeout_s)
        self.accounts = AccountRegistry(
            self.store,
            self.clock,
            self.client,
            client_id=cfg.pinterest_client_id,
            client_secret=cfg.pinterest_client_secret,
            app_writes_per_minute=cfg.app_writes_per_minute,
            on_change=self._account_changed,
            on_app_refused=self._app_refused,
        )
        await self.accounts.load_all()
        settings = DispatchSettings(
            retry=RetryPolicy(
                max_attempts=cfg.max_attempts,
                base_delay_s=cfg.retry_base_delay_s,
                max_delay_s=cfg.retry_max_delay_s,
            ),
            read_lag_s=cfg.pinterest_read_lag_s,
        )
        self.activity = Activity()
        self.webhooks = WebhookSender(
            self.store,
            self.clock,
            endpoints,
            render=PROTO_JSON,
            activity=self.activity,
            on_attempt=self.metrics.webhook_attempt,
        )
        await self.webhooks.start()
        if cfg.cluster:  # else (alone; always on SQLite) every account is this daemon's
            self.member = join(
                self.store, self.clock, cfg.cluster_lease_s, self.activity, self._handover
            )
        owns = self.member.owns if self.member is not None else None
        self.assets = MediaAssets(media_dir(cfg.db_path), self.clock)
        self.assets.clean_partials()
        self.stager = Stager(
            self.store,
            self.clock,
            self.client,
            self.accounts,
            self.assets,
            lead_s=cfg.media_lead_time_s,
            activity=self.activity,
            first=PublishFirst(self.clock, next_due_us=lambda: self.scheduler.heap.peek_due()),
            owns=owns,
        )
        fence = self.member.fence if self.member is not None else None
        self.dispatchers = Dispatchers(
            self.store,
            self.clock,
            self.client,
            self.accounts,
            settings=settings,
            video_staging=True,
            activity=self.activity,
            ownership=self.member,
            fence=fence,
        )
        self.scheduler = Scheduler(
            self.store,
            self.clock,
            dispatch=self.dispatchers.submit,
            can_publish=self.accounts.can_publish,
            activity=self.activity,
            ownership=self.member,
            fence=fence,
        )
        # Every committed job goes where `core.route` says (fed by `_on_events`).
        self.router = Router(self.scheduler, self.dispatchers, self.clock, self.member)
        if self.member is not None:
            self.handover = Handover(
                self.store,
                self.clock,
                self.accounts,
                self.scheduler,
                self.dispatchers,
                stager=self.stager,
            )
        self.service = PinService(
            self.store,
            self.clock,
            self.dispatchers,
            self.accounts,
            horizon=timedelta(days=cfg.horizon_days),
        )
        self.metrics.bind(
            store=self.store,
            scheduler=self.scheduler,
            bus=self.bus,
            accounts=self.accounts,
            dispatchers=self.dispatchers,
            member=self.member,
        )
        self.keeper = TokenKeeper(
            self.accounts,
            self.clock,
            self.client,
            activity=self.activity,
            per_second=cfg.token_refreshes_per_second,
            retry_s=cfg.token_retry_s,
            verify_timeout_s=cfg.verify_timeout_s,
        )
        admin = AccountAdmin(
            self.store,
            self.clock,
            self.accounts,
            self.scheduler,
            self.service,
            client=self.client,
            verify_timeout_s=cfg.verify_timeout_s,
        )
        recovered = await self.scheduler.recover()
        self._tasks.append(asyncio.create_task(self.scheduler.run(self._stop), name="scheduler"))
        if self.feed is not None:
            self._tasks.append(asyncio.create_task(self.feed.run(self._stop), name="feed"))
        if self.member is not None:
            self.keeper.owns = self.member.owns
            await self.member.tick()  # the first leases, before this daemon says it is ready
            self._tasks.append(asyncio.create_task(self.member.run(self._stop), name="member"))
        await self.stager.start()
        self._tasks.append(
            asyncio.create_task(
                self.assets.run(self._stop, cfg.media_grace_s, self.store.asset_in_use),
                name="media-sweep",
            )
        )
        self.retention = Retention(
            self.store, self.clock, days=cfg.retention_days, activity=self.activity
        )
        self._tasks.append(asyncio.create_task(self.retention.run(self._stop), name="retention"))
        if cfg.token_keeper:
            self._tasks.append(asyncio.create_task(self.keeper.run(self._stop), name="keeper"))
        self.at_risk = AtRiskWatch(
            self.store,
            self.clock,
            self.accounts,
            self.checker,
            lead_s=cfg.preflight_lead_time_s,
            activity=self.activity,
            owns=owns,
        )
        self._tasks.append(asyncio.create_task(self.at_risk.run(self._stop), name="at_risk"))

        await self.doors.open(
            self._servicers(admin),
            ready=self._readiness,
            assets=self.assets,
            app_refused=bool(self.accounts.app_refused),
        )
        # Everything built so far (heap, caches, modules) lives as long as the process: keep it
        # out of the collector's generations, and collect young objects less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 50)
        log.info(
            "pinsched_ready",
            listen=cfg.listen,
            port=self.port,
            http_port=self.http_port,
            db=redact(cfg.db_path),
            recovered=recovered,
            member=self.member.id if self.member is not None else None,
            accounts_owned=len(self.member.held) if self.member is not None else None,
            pinterest_api_base=cfg.pinterest_api_base,
        )

    def _servicers(self, admin: AccountAdmin) -> dict[str, Any]:
        """The API's servicers by `grpc_server.SERVICES` name: the gRPC server and the HTTP/JSON
        door serve the same objects."""
        cfg = self.config
        assert self.webhooks is not None
        return dict(
            zip(
                grpc_server.SERVICES,
                (
                    PinSchedulerServicer(
                        self.service,
                        self.bus,
                        self.clock,
                        skew=timedelta(seconds=cfg.clock_skew_tolerance_s),
                        horizon=timedelta(days=cfg.horizon_days),
                        max_watchers=self.limits.max_watch_streams,
                        checker=self.checker,
                        asset_exists=lambda asset_id: self.assets.get(asset_id) is not None,
                    ),
                    AccountServicer(admin, self.clock),
                    WebhookServicer(self.webhooks),
                    MediaServicer(self.assets),
                ),
                strict=True,
            )
        )

    def _handover(self) -> Handover:
        assert self.handover is not None
        return self.handover

    def _account_changed(self, account: Account) -> None:
        """An account changed: the token keeper looks at its tokens again (once it runs); an
        account new to this cluster member is looked at now (its lease may be this daemon's)."""
        if (keeper := getattr(self, "keeper", None)) is not None:
            keeper.wake()
        if self.member is not None and account.id not in self.member.held:
            self.member.wake()

    def _app_refused(self, reason: str) -> None:
        """Pinterest refused (*reason*) or accepted again ("") the app's client credentials:
        health, an `app.credentials_refused` webhook, and the accounts' held jobs."""
        task = asyncio.create_task(self._on_app_refused(reason), name="app-credentials")
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _on_app_refused(self, reason: str) -> None:
        await app_credentials_changed(
            reason,
            health=None if self._stop.is_set() else self.doors.health,
            store=self.store,
            clock=self.clock,
            accounts=self.accounts,
            webhooks=self.webhooks,
            scheduler=getattr(self, "scheduler", None),
        )

    def _readiness(self) -> tuple[bool, str]:
        """(ready, why not): the store takes writes and the scheduler runs."""
        if self._stop.is_set():
            return False, "shutting down"
        if not self.store.is_open:
            return False, "the store is closed"
        if not any(t.get_name() == "scheduler" and not t.done() for t in self._tasks):
            return False, "the scheduler is not running"
        return True, ""

    def _on_events(self, events: Sequence[Event]) -> None:
        """Committed events: to the watchers, to video staging (jobs to stage), and to the
        router (where each changed job goes next); on PostgreSQL, the watchers through the
        cluster feed (in order with the other daemons' events)."""
        self.feed.poke() if self.feed is not None else self.bus.publish(events)
        if self.stager is not None:
            self.stager.observe(events)
            if self.stager.first is not None:
                self.stager.first.observe(events)
        if self.router is not None:
            self.router.observe(events)

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain and stop (reverse start-up order) within the grace period *in all*: every step
        gets what is left of one deadline, so SIGTERM → exit is bounded by the grace period plus
        closing the client and the store (docs/operations.md, "Shutdown")."""
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        # A start that failed before the store opened has nothing to drain: stay quiet, so the
        # caller's one-line error is all the operator sees.
        opened = getattr(self, "store", None) is not None
        started = time.monotonic()
        deadline = started + grace

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        if opened:
            log.info("pinsched_stopping", grace_s=grace)
        await self.doors.drain()
        self.bus.close()
        self._stop.set()
        await self.doors.close(left())
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=left())
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        for note in list(self._notes):  # app-credential notices still being written
            note.cancel()
        await asyncio.gather(*self._notes, return_exceptions=True)
        # Parts that a failed start never reached are absent: stop only what exists.
        if self.stager is not None:
            await self.stager.stop()
        if (dispatchers := getattr(self, "dispatchers", None)) is not None:
            await dispatchers.stop(left())
        if self.member is not None and opened:
            try:  # the other daemons take this one's accounts at once, not after the lease
                await asyncio.wait_for(self.member.leave(), timeout=max(left(), 1.0))
            except Exception as exc:
                log.warning("cluster_leave_failed", error=str(exc))
        if self.webhooks is not None:
            await self.webhooks.stop(left())
        if (client := getattr(self, "client", None)) is not None:
            await client.close()
        if (probe := getattr(self, "probe", None)) is not None:
            await probe.close()
        if (store := getattr(self, "store", None)) is not None:
            await store.close()
        if opened:
            log.info("pinsched_stopped", took_s=round(time.monotonic() - started, 3))
