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

The HTTP/JSON door (`pinsched.http`, `http_listen`) serves the same servicer objects as the gRPC
server; parts that serve HTTP too add their routes to it through `Daemon.http_extensions`.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import grpc
import structlog
from aiohttp import web
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pinsched import security
from pinsched.account_admin import AccountAdmin
from pinsched.api import watch_wire
from pinsched.api.account_servicer import AccountServicer
from pinsched.api.guard import Guard
from pinsched.api.media_servicer import MediaServicer
from pinsched.api.proto_json import PROTO_JSON
from pinsched.api.servicers import PinSchedulerServicer
from pinsched.api.webhook_servicer import WebhookServicer
from pinsched.at_risk import AtRiskWatch
from pinsched.auth import AccountRegistry
from pinsched.clock import Activity, Clock, SystemClock
from pinsched.config import Config
from pinsched.core.accounts import Account
from pinsched.core.retry import RetryPolicy
from pinsched.dispatch.dispatcher import Dispatchers, DispatchSettings
from pinsched.dispatch.router import Router
from pinsched.events import EventBus
from pinsched.http.openapi import openapi_document
from pinsched.http.server import HttpDoor, ssl_context
from pinsched.keeper import TokenKeeper
from pinsched.media_assets import MediaAssets, media_dir
from pinsched.ops import crypto, logs
from pinsched.ops.limits import DEFAULT as DEFAULT_LIMITS
from pinsched.ops.limits import ServerLimits
from pinsched.ops.masking import url_secrets
from pinsched.ops.metrics import Metrics
from pinsched.pinchecks import Checker
from pinsched.pinterest.client import PinterestClient
from pinsched.preflight import ListenError, preflight
from pinsched.publish_first import PublishFirst
from pinsched.retention import Retention
from pinsched.scheduler import Scheduler
from pinsched.service import PinService
from pinsched.staging import Stager
from pinsched.store import Event, Outbox, Store
from pinsched.store.location import redact
from pinsched.urlprobe import UrlProbe
from pinsched.v1 import (
    account_pb2,
    account_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
    webhook_pb2,
    webhook_pb2_grpc,
)
from pinsched.webhooks.messages import APP_CREDENTIALS_REFUSED, OutboxRenderers
from pinsched.webhooks.sender import WebhookSender

log = structlog.get_logger("pinsched.app")

#: Health service that is NOT_SERVING while Pinterest refuses the app's client credentials.
PINTEREST_HEALTH = "pinsched.pinterest"
SERVICES = (
    scheduler_pb2.DESCRIPTOR.services_by_name["PinScheduler"].full_name,
    account_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name,
    webhook_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
    media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name,
)


class Daemon:
    """The whole pinsched process, startable and stoppable in-process (tests, demo)."""

    def __init__(
        self, config: Config, *, clock: Clock | None = None, limits: ServerLimits = DEFAULT_LIMITS
    ) -> None:
        self.config = config
        self.limits = limits
        self.clock: Clock = clock or SystemClock()
        self.port = 0
        self.bus = EventBus()
        self.metrics = Metrics()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._server: grpc.aio.Server | None = None
        self.http: HttpDoor | None = None
        self.http_port = 0
        #: Called with the HTTP door's aiohttp app before it starts: add routes or sub-apps.
        self.http_extensions: list[Callable[[web.Application], None]] = []
        self._private_dir: str | None = None  # the MCP transport's unix socket lives here
        self._health: health_aio.HealthServicer | None = None
        self._health_server: grpc.aio.Server | None = None
        self.health_port = 0
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
        self.assets: MediaAssets

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
        )
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
        )
        self.dispatchers = Dispatchers(
            self.store,
            self.clock,
            self.client,
            self.accounts,
            settings=settings,
            video_staging=True,
            activity=self.activity,
        )
        self.scheduler = Scheduler(
            self.store,
            self.clock,
            dispatch=self.dispatchers.submit,
            can_publish=self.accounts.can_publish,
            activity=self.activity,
        )
        # Every committed job goes where `core.route` says (fed by `_on_events`).
        self.router = Router(self.scheduler, self.dispatchers, self.clock)
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
        )
        self._tasks.append(asyncio.create_task(self.at_risk.run(self._stop), name="at_risk"))

        # The guard (token, then request parsing) runs before metrics and every handler.
        interceptors: list[Any] = [
            Guard(cfg.api_token, on_denied=self.metrics.denied),
            self.metrics.interceptor(),
        ]
        server = grpc.aio.server(
            interceptors=interceptors,
            maximum_concurrent_rpcs=self.limits.max_concurrent_rpcs,
            options=[("grpc.so_reuseport", 0), *self.limits.grpc_options()],
        )
        servicers: dict[str, Any] = dict(
            zip(
                SERVICES,
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
        scheduler_pb2_grpc.add_PinSchedulerServicer_to_server(servicers[SERVICES[0]], server)
        watch_wire.register(servicers[SERVICES[0]], server)  # WatchJobs: chunks encoded once
        account_pb2_grpc.add_AccountServiceServicer_to_server(servicers[SERVICES[1]], server)
        webhook_pb2_grpc.add_WebhookServiceServicer_to_server(servicers[SERVICES[2]], server)
        media_pb2_grpc.add_MediaServiceServicer_to_server(servicers[SERVICES[3]], server)
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                *SERVICES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        self.port = self._bind(server)
        if cfg.http_listen is not None:
            self._mount_mcp(server)
        await server.start()
        self._server = server
        if cfg.http_listen is not None:
            self.http = HttpDoor(
                servicers,
                api_token=cfg.api_token,
                ready=self._readiness,
                openapi=openapi_document,
                max_body_bytes=self.limits.http_max_body_bytes,
                assets=self.assets,
            )
            for extend in self.http_extensions:
                extend(self.http.app)
            self.http_port = await self.http.start(cfg.http_listen, ssl_context(cfg))
        for name in ("", *SERVICES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if cfg.health_listen:
            await self._serve_health(cfg.health_listen)
        await self._health.set(
            PINTEREST_HEALTH,
            health_pb2.HealthCheckResponse.NOT_SERVING
            if self.accounts.app_refused
            else health_pb2.HealthCheckResponse.SERVING,
        )
        if cfg.metrics_listen:
            try:
                await self.metrics.serve(cfg.metrics_listen)
            except OSError as exc:
                raise ListenError(
                    f"metrics_listen {cfg.metrics_listen}: cannot listen: {exc.strerror or exc}"
                ) from None
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
            pinterest_api_base=cfg.pinterest_api_base,
        )

    async def _serve_health(self, listen: str) -> None:
        """The health service alone, in plain text on *listen*: a probe (Docker HEALTHCHECK)
        needs neither the TLS certificates nor a client certificate of the API port."""
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        assert self._health is not None
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.health_port = server.add_insecure_port(listen)
        if self.health_port == 0:
            raise OSError(f"cannot listen on {listen} (health)")
        await server.start()
        self._health_server = server

    def _account_changed(self, account: Account) -> None:
        """An account changed: the token keeper looks at its tokens again (once it runs)."""
        if (keeper := getattr(self, "keeper", None)) is not None:
            keeper.wake()

    def _app_refused(self, reason: str) -> None:
        """Pinterest refused (*reason*) or accepted again ("") the app's client credentials:
        health, an `app.credentials_refused` webhook, and the accounts' held jobs."""
        task = asyncio.create_task(self._on_app_refused(reason), name="app-credentials")
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _on_app_refused(self, reason: str) -> None:
        if self._health is not None and not self._stop.is_set():
            await self._health.set(
                PINTEREST_HEALTH,
                health_pb2.HealthCheckResponse.NOT_SERVING
                if reason
                else health_pb2.HealthCheckResponse.SERVING,
            )
        if reason:
            if self.webhooks is not None:
                now = self.clock.now()
                await self.store.enqueue_notice(
                    self.webhooks.render_notice(
                        APP_CREDENTIALS_REFUSED,
                        now,
                        {"reason": reason, "held_accounts": len(self.accounts.accounts())},
                    ),
                    now,
                )
            return
        if (scheduler := getattr(self, "scheduler", None)) is None:
            return  # (told before the scheduler exists: nothing is held yet)
        for account in self.accounts.accounts():
            await scheduler.release(account.id)

    def _mount_mcp(self, server: grpc.aio.Server) -> None:
        """Serve the MCP streamable HTTP transport at `/mcp` on the HTTP door when the MCP SDK is
        installed (`pinsched[mcp]`). Its tools call this daemon like `pinsched mcp` does, through
        the typed client, over a unix socket in a private (0700) directory: whatever TLS the API
        port uses, and behind the same API token as every other call."""
        if importlib.util.find_spec("mcp") is None:
            log.info("mcp_not_served", reason="the MCP SDK is not installed (pinsched[mcp])")
            return
        from pinsched.mcp.http import McpHttp
        from pinsched.mcp.server import build_server
        from pinsched_client import AsyncClient

        self._private_dir = tempfile.mkdtemp(prefix="pinsched-")
        target = f"unix:{self._private_dir}/grpc.sock"
        if server.add_insecure_port(target) == 0:
            raise OSError(f"cannot listen on {target} (the MCP transport's own channel)")
        token = self.config.api_token
        mcp = McpHttp(build_server(lambda: AsyncClient(target, api_token=token)), api_token=token)

        def mount(app: web.Application) -> None:
            app.cleanup_ctx.append(mcp.cleanup_ctx)
            app.router.add_route("*", "/mcp", mcp.handle)

        self.http_extensions.append(mount)

    def _readiness(self) -> tuple[bool, str]:
        """(ready, why not): the store takes writes and the scheduler runs."""
        if self._stop.is_set():
            return False, "shutting down"
        if not self.store.is_open:
            return False, "the store is closed"
        if not any(t.get_name() == "scheduler" and not t.done() for t in self._tasks):
            return False, "the scheduler is not running"
        return True, ""

    def _bind(self, server: grpc.aio.Server) -> int:
        cfg = self.config
        creds = None
        if cfg.tls_cert_file and cfg.tls_key_file:
            with open(cfg.tls_key_file, "rb") as k, open(cfg.tls_cert_file, "rb") as c:
                pair = [(k.read(), c.read())]
            ca = None
            if cfg.tls_client_ca_file:
                with open(cfg.tls_client_ca_file, "rb") as f:
                    ca = f.read()
            creds = grpc.ssl_server_credentials(
                pair, root_certificates=ca, require_client_auth=ca is not None
            )
        try:
            if creds is not None:
                port = server.add_secure_port(cfg.listen, creds)
            else:
                port = server.add_insecure_port(cfg.listen)
        except RuntimeError:  # grpc: "Failed to bind to address ..."
            port = 0
        if port == 0:
            raise ListenError(
                f"listen {cfg.listen}: cannot listen: the address is in use or not "
                "an address of this host (--listen / PINSCHED_LISTEN)"
            )
        return port

    def _on_events(self, events: Sequence[Event]) -> None:
        """Committed events: to the watchers, to video staging (jobs to stage), and to the
        router (where each changed job goes next)."""
        self.bus.publish(events)
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
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        self.bus.close()
        self._stop.set()
        if self.http is not None:  # first: its /mcp tools call the gRPC server below
            await self.http.stop()
        if self._server is not None:
            await self._server.stop(left())
        if self._health_server is not None:
            await self._health_server.stop(0)
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
        await self.metrics.close()
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


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then drain."""
    logs.configure(config.log_level, config.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(config)
    await daemon.start()
    try:
        await stop.wait()
    finally:
        await daemon.stop()
