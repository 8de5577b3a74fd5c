"""Composition root and lifecycle: builds the parts, starts them in order, stops them in reverse.

Start: webhook endpoints checked → store → accounts → Pinterest client → webhook sender (outbox
renderers installed, one worker per endpoint) → dispatchers → scheduler (heap rebuilt from the
store) → gRPC server (API, health, reflection). Stop (SIGTERM/SIGINT set an event, nothing else):
health NOT_SERVING → gRPC server stops accepting, in-flight RPCs get the grace period → watch
streams end → scheduler stops → dispatchers let in-flight Pinterest requests finish within the
grace period (anything unfinished stays SUBMITTED and is reconciled at the next start) → webhook
POSTs in flight get the grace period (unsent deliveries stay in the outbox) → Pinterest client →
store (queued writes committed). SIGKILL loses nothing either: every change was
committed before it was acted on.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
import structlog
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pinsched import logs, secrets, security
from pinsched.api.servicers import AccountServicer, PinSchedulerServicer
from pinsched.api.webhook_servicer import WebhookServicer
from pinsched.auth import AccountRegistry
from pinsched.clock import Activity, Clock, SystemClock
from pinsched.config import Config
from pinsched.dispatcher import Dispatchers, DispatchSettings
from pinsched.events import EventBus
from pinsched.metrics import Metrics
from pinsched.pinterest import PinterestClient
from pinsched.retry import RetryPolicy
from pinsched.scheduler import Scheduler
from pinsched.service import AccountAdmin, PinService
from pinsched.store import Store
from pinsched.v1 import (
    account_pb2,
    account_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
    webhook_pb2,
    webhook_pb2_grpc,
)
from pinsched.webhooks import WebhookSender, prepare_endpoints

log = structlog.get_logger("pinsched.app")

SERVICES = (
    scheduler_pb2.DESCRIPTOR.services_by_name["PinScheduler"].full_name,
    account_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name,
    webhook_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
)


class _TokenAuth(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Requires `authorization: Bearer <token>` on every RPC but health and reflection."""

    OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        method = details.method or ""
        if method.startswith(self.OPEN):
            return await continuation(details)
        got = dict(details.invocation_metadata or ()).get("authorization", "")
        got_b = got.encode() if isinstance(got, str) else bytes(got)
        if hmac.compare_digest(got_b, self._expected):
            return await continuation(details)

        async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or wrong API token: send 'authorization: Bearer <token>'")

        handler = await continuation(details)
        if handler is not None and handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


class Daemon:
    """The whole pinsched process, startable and stoppable in-process (tests, demo)."""

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.port = 0
        self.bus = EventBus()
        self.metrics = Metrics()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._server: grpc.aio.Server | None = None
        self._health: health_aio.HealthServicer | None = None
        self.store: Store
        self.scheduler: Scheduler
        self.dispatchers: Dispatchers
        self.accounts: AccountRegistry
        self.service: PinService
        self.client: PinterestClient
        self.webhooks: WebhookSender | None = None

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
        security.check_listen_policy(cfg)
        logs.register_secrets([cfg.api_token, cfg.pinterest_client_secret, cfg.secret_key])
        logs.register_secrets(s for w in cfg.webhooks for s in w.secrets)
        endpoints = await prepare_endpoints(cfg.webhooks)  # refuses blocked URLs (ConfigError)
        self.store = await Store.open(cfg.db_path, on_events=self.metrics.tap(self.bus.publish))
        await secrets.install(self.store, cfg.secret_key, now=self.clock.now)
        self.client = PinterestClient(cfg.pinterest_api_base, timeout_s=cfg.request_timeout_s,
                                      now=self.clock.now)
        self.accounts = AccountRegistry(
            self.store, self.clock, self.client, client_id=cfg.pinterest_client_id,
            client_secret=cfg.pinterest_client_secret,
            app_writes_per_minute=cfg.app_writes_per_minute)
        await self.accounts.load_all()
        settings = DispatchSettings(retry=RetryPolicy(
            max_attempts=cfg.max_attempts, base_delay_s=cfg.retry_base_delay_s,
            max_delay_s=cfg.retry_max_delay_s))
        holder: dict[str, Scheduler] = {}
        self.activity = Activity()
        self.webhooks = WebhookSender(self.store, self.clock, endpoints, activity=self.activity,
                                      on_attempt=self.metrics.webhook_attempt)
        self.store.set_outbox(self.webhooks.render_event, self.webhooks.render_account,
                              on_written=self.webhooks.wake)
        await self.webhooks.start()
        self.dispatchers = Dispatchers(
            self.store, self.clock, self.client, self.accounts, settings=settings,
            activity=self.activity,
            on_retry=lambda job: holder["s"].track(job),
            on_hold=lambda job: holder["s"].hold(job))
        self.scheduler = holder["s"] = Scheduler(
            self.store, self.clock, dispatch=self.dispatchers.submit,
            can_publish=self.accounts.can_publish, activity=self.activity)
        self.service = PinService(self.store, self.clock, self.scheduler, self.dispatchers,
                                  self.accounts, horizon=timedelta(days=cfg.horizon_days))
        self.metrics.bind(store=self.store, scheduler=self.scheduler, bus=self.bus,
                          accounts=self.accounts, dispatchers=self.dispatchers)
        admin = AccountAdmin(self.store, self.clock, self.accounts, self.scheduler, self.service)
        recovered = await self.scheduler.recover()
        self._tasks.append(asyncio.create_task(self.scheduler.run(self._stop), name="scheduler"))

        interceptors: list[Any] = [self.metrics.interceptor()]
        interceptors += [_TokenAuth(cfg.api_token)] if cfg.api_token else []
        server = grpc.aio.server(interceptors=interceptors, options=[
            ("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 64 * 1024 * 1024)])
        scheduler_pb2_grpc.add_PinSchedulerServicer_to_server(PinSchedulerServicer(
            self.service, self.store, self.bus, self.clock,
            skew=timedelta(seconds=cfg.clock_skew_tolerance_s),
            horizon=timedelta(days=cfg.horizon_days)), server)
        account_pb2_grpc.add_AccountServiceServicer_to_server(
            AccountServicer(admin, self.store, self.clock), server)
        webhook_pb2_grpc.add_WebhookServiceServicer_to_server(
            WebhookServicer(self.webhooks, self.store), server)
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        self.port = self._bind(server)
        await server.start()
        self._server = server
        for name in ("", *SERVICES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if cfg.metrics_listen:
            await self.metrics.serve(cfg.metrics_listen)
        # Everything built so far (heap, caches, modules) lives as long as the process: keep it
        # out of the collector's generations, and collect young objects less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 50)
        log.info("pinsched_ready", listen=cfg.listen, port=self.port, db=cfg.db_path,
                 recovered=recovered, pinterest_api_base=cfg.pinterest_api_base)

    def _bind(self, server: grpc.aio.Server) -> int:
        cfg = self.config
        if cfg.tls_cert_file and cfg.tls_key_file:
            with open(cfg.tls_key_file, "rb") as k, open(cfg.tls_cert_file, "rb") as c:
                pair = [(k.read(), c.read())]
            ca = None
            if cfg.tls_client_ca_file:
                with open(cfg.tls_client_ca_file, "rb") as f:
                    ca = f.read()
            creds = grpc.ssl_server_credentials(pair, root_certificates=ca,
                                                require_client_auth=ca is not None)
            port = server.add_secure_port(cfg.listen, creds)
        else:
            port = server.add_insecure_port(cfg.listen)
        if port == 0:
            raise OSError(f"cannot listen on {cfg.listen}")
        return port

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain and stop (reverse start-up order), each step bounded by the grace period."""
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        log.info("pinsched_stopping", grace_s=grace)
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        self.bus.close()
        self._stop.set()
        if self._server is not None:
            await self._server.stop(grace)
        await self.metrics.close()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=grace)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        # Parts that a failed start never reached are absent: stop only what exists.
        if (dispatchers := getattr(self, "dispatchers", None)) is not None:
            await dispatchers.stop(grace)
        if self.webhooks is not None:
            await self.webhooks.stop(grace)
        if (client := getattr(self, "client", None)) is not None:
            await client.close()
        if (store := getattr(self, "store", None)) is not None:
            await store.close()
        log.info("pinsched_stopped")


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
