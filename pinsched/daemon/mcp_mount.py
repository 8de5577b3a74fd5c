"""The MCP streamable HTTP transport at `/mcp` on the daemon's HTTP door, when the MCP SDK is
installed (`pinsched[mcp]`). Its tools call the daemon like `pinsched mcp` does, through the
typed client, over a unix socket in a private (0700) directory: whatever TLS the API port uses,
and behind the same API token as every other call."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Callable

import grpc
import structlog
from aiohttp import web

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
    from pinsched.mcp.http import McpHttp
    from pinsched.mcp.server import build_server
    from pinsched_client import AsyncClient

    private_dir = tempfile.mkdtemp(prefix="pinsched-")
    target = f"unix:{private_dir}/grpc.sock"
    if server.add_insecure_port(target) == 0:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise OSError(f"cannot listen on {target} (the MCP transport's own channel)")
    mcp = McpHttp(
        build_server(lambda: AsyncClient(target, api_token=api_token)), api_token=api_token
    )

    def mount(app: web.Application) -> None:
        app.cleanup_ctx.append(mcp.cleanup_ctx)
        app.router.add_route("*", "/mcp", mcp.handle)

    return private_dir, mount
