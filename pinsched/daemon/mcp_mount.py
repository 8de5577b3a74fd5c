"""The MCP streamable HTTP transport at `/mcp` on the daemon's HTTP door, when the MCP SDK is
installed (`pinsched[mcp]`). Its tools call the daemon like `pinsched mcp` does, through the
typed client, over a unix socket in a private (0700) directory: whatever TLS the API port uses,
and behind the same API token as every other call.

The SDK (and everything it imports: about as long as the rest of the daemon's start-up) is
loaded by the first authorised request to `/mcp`, in a worker thread, not at start-up: a
daemon that nobody asks over MCP never pays for it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc
import structlog
from aiohttp import web

from pinsched import security

if TYPE_CHECKING:
    from pinsched.mcp.http import McpHttp

log = structlog.get_logger("pinsched.app")


def mount_mcp(
    server: grpc.aio.Server, api_token: str | None
) -> tuple[str, Callable[[web.Application], None]] | None:
    """Add the private unix socket to *server* (before it starts); the private directory (to
    remove at stop) and the extension that mounts `/mcp` on the HTTP door's app. None when the
    MCP SDK is not installed."""
    if importlib.util.find_spec("mcp") is None:
        log.info("mcp_not_served", reason="the MCP SDK is not installed (pinsched[mcp])")
        return None
    private_dir = tempfile.mkdtemp(prefix="pinsched-")
    target = f"unix:{private_dir}/grpc.sock"
    if server.add_insecure_port(target) == 0:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise OSError(f"cannot listen on {target} (the MCP transport's own channel)")
    mcp = LazyMcp(target, api_token)

    def mount(app: web.Application) -> None:
        app.cleanup_ctx.append(mcp.cleanup_ctx)
        app.router.add_route("*", "/mcp", mcp.handle)

    return private_dir, mount


def _build(target: str, api_token: str | None) -> McpHttp:
    """Import the SDK and build the transport (in a worker thread: imports hold no loop)."""
    from pinsched.mcp.http import McpHttp
    from pinsched.mcp.server import build_server
    from pinsched_client import AsyncClient

    return McpHttp(
        build_server(lambda: AsyncClient(target, api_token=api_token)), api_token=api_token
    )


class LazyMcp:
    """`/mcp`, with the transport built and started by the first authorised request and
    stopped with the HTTP door's application."""

    def __init__(self, target: str, api_token: str | None) -> None:
        self._target, self._token = target, api_token
        self._lock = asyncio.Lock()
        self._mcp: McpHttp | None = None
        self._running: AsyncIterator[None] | None = None
        self._closed = False
        self._app: web.Application | None = None

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp `cleanup_ctx`: stops the transport, if a request started it."""
        self._app = app
        try:
            yield
        finally:
            async with self._lock:
                self._closed = True
                running, self._running = self._running, None
                if running is not None:
                    with contextlib.suppress(StopAsyncIteration):
                        await running.__anext__()

    async def _started(self) -> McpHttp:
        async with self._lock:
            if self._closed:
                raise web.HTTPServiceUnavailable(text="the daemon is stopping")
            if self._mcp is None:
                if self._app is None:
                    raise web.HTTPServiceUnavailable(text="the HTTP door is not started")
                mcp = await asyncio.to_thread(_build, self._target, self._token)
                running = mcp.cleanup_ctx(self._app)
                await running.__anext__()  # the session manager runs from now on
                self._mcp, self._running = mcp, running
            return self._mcp

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one request of the MCP transport; a request without the API token is refused
        before anything is loaded."""
        if self._token and not security.bearer_matches(
            request.headers.get("Authorization", ""), self._token
        ):
            raise web.HTTPUnauthorized(
                text="missing or wrong API token", headers={"WWW-Authenticate": "Bearer"}
            )
        return await (await self._started()).handle(request)
