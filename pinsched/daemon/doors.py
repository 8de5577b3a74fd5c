"""The daemon's doors, opened last and closed first: the gRPC server (guard, then metrics, then
the four API services; health and reflection), the MCP transport mounted on the HTTP/JSON door,
the door itself, the health-only port and the metrics port.

Open: build and bind the gRPC server → MCP's private socket (with the HTTP door only) → start →
HTTP door (with every extension's routes) → every service SERVING → health port → Pinterest's
health → metrics port. Close: health NOT_SERVING (`drain`) → HTTP door (its `/mcp` tools call
the gRPC server) → gRPC server, in-flight RPCs getting what is left of the grace period →
health port → the MCP directory → metrics port.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2

from pinsched.api.guard import Guard
from pinsched.config import Config
from pinsched.daemon import grpc_server
from pinsched.daemon.mcp_mount import mount_mcp
from pinsched.http.openapi import openapi_document
from pinsched.http.server import HttpDoor, ssl_context
from pinsched.media.assets import MediaAssets
from pinsched.ops.limits import ServerLimits
from pinsched.ops.metrics import Metrics
from pinsched.preflight import ListenError


class Doors:
    """Every listening socket of the daemon; the ports they got once `open` returned."""

    def __init__(self, config: Config, limits: ServerLimits, metrics: Metrics) -> None:
        self.config, self.limits, self.metrics = config, limits, metrics
        self.port = 0
        self.http_port = 0
        self.health_port = 0
        self.http: HttpDoor | None = None
        #: Called with the HTTP door's aiohttp app before it starts: add routes or sub-apps.
        self.http_extensions: list[Callable[[web.Application], None]] = []
        self.health: health_aio.HealthServicer | None = None
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self._private_dir: str | None = None  # the MCP transport's unix socket lives here

    async def open(
        self,
        servicers: Mapping[str, Any],
        *,
        ready: Callable[[], tuple[bool, str]],
        assets: MediaAssets,
        app_refused: bool,
    ) -> None:
        """Serve *servicers* (by `grpc_server.SERVICES` name) on every configured door; a door
        that cannot listen raises ListenError naming its setting."""
        cfg = self.config
        interceptors: list[Any] = [
            Guard(cfg.api_token, on_denied=self.metrics.denied),
            self.metrics.interceptor(),
        ]
        server, self.health = grpc_server.build(servicers, interceptors, self.limits)
        self.port = grpc_server.bind(server, cfg)
        if cfg.http_listen is not None and (mounted := mount_mcp(server, cfg.api_token)):
            self._private_dir, mount = mounted
            self.http_extensions.append(mount)
        await server.start()
        self._server = server
        if cfg.http_listen is not None:
            self.http = HttpDoor(
                servicers,
                api_token=cfg.api_token,
                ready=ready,
                openapi=openapi_document,
                max_body_bytes=self.limits.http_max_body_bytes,
                assets=assets,
            )
            for extend in self.http_extensions:
                extend(self.http.app)
            self.http_port = await self.http.start(cfg.http_listen, ssl_context(cfg))
        for name in ("", *grpc_server.SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if cfg.health_listen:
            self._health_server, self.health_port = await grpc_server.serve_health(
                cfg.health_listen, self.health
            )
        await grpc_server.set_pinterest_health(self.health, refused=app_refused)
        if cfg.metrics_listen:
            try:
                await self.metrics.serve(cfg.metrics_listen)
            except OSError as exc:
                raise ListenError(
                    f"metrics_listen {cfg.metrics_listen}: cannot listen: {exc.strerror or exc}"
                ) from None

    async def drain(self) -> None:
        """Health says NOT_SERVING: load balancers stop sending new work."""
        if self.health is not None:
            await self.health.enter_graceful_shutdown()

    async def close(self, grace_s: float) -> None:
        """Stop accepting; RPCs in flight get *grace_s* to finish."""
        if self.http is not None:  # first: its /mcp tools call the gRPC server below
            await self.http.stop()
        if self._server is not None:
            await self._server.stop(grace_s)
        if self._health_server is not None:
            await self._health_server.stop(0)
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
        await self.metrics.close()
