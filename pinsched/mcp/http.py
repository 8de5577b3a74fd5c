"""The MCP streamable HTTP transport as an aiohttp handler, to mount at `/mcp` on the HTTP door.

The SDK serves streamable HTTP through ASGI; the daemon's HTTP door is aiohttp. `McpHttp` runs
the SDK's `StreamableHTTPSessionManager` (stateless, JSON responses: every POST is answered in
full, no session to keep) and bridges each aiohttp request to it. Wiring, in the door's setup:

    mcp = McpHttp(build_server(lambda: AsyncClient(grpc_target, api_token=token)),
                  api_token=token)
    app.cleanup_ctx.append(mcp.cleanup_ctx)           # starts and stops the manager
    app.router.add_route("*", "/mcp", mcp.handle)

With `api_token`, a request without `Authorization: Bearer <token>` is answered 401 before the
transport sees it (the door may check the same token first; checking twice is harmless). The
manager runs in a task of its own, so its task group is entered and left by the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from aiohttp import web
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from pinsched import security
from pinsched_client import AsyncClient

__all__ = ["McpHttp"]

Message = MutableMapping[str, Any]


class McpHttp:
    """The streamable HTTP transport of one MCP server, for an aiohttp application."""

    def __init__(self, server: Server[AsyncClient], *, api_token: str | None = None) -> None:
        self.manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
        self._token = api_token
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self, ready: asyncio.Event) -> None:
        async with self.manager.run():
            ready.set()
            await self._stop.wait()

    async def cleanup_ctx(self, _app: web.Application) -> AsyncIterator[None]:
        """aiohttp `cleanup_ctx`: the manager runs while the application does."""
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(ready), name="mcp-http")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # raise why it could not start
        try:
            yield
        finally:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one HTTP request of the MCP transport (POST, GET or DELETE on `/mcp`)."""
        if self._token and not security.bearer_matches(
            request.headers.get("Authorization", ""), self._token
        ):
            raise web.HTTPUnauthorized(
                text="missing or wrong API token", headers={"WWW-Authenticate": "Bearer"}
            )
        body = await request.read()
        sent_body = False
        response: web.StreamResponse | None = None
        disconnected = asyncio.Event()

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                response = web.StreamResponse(status=message["status"])
                for key, value in message.get("headers", []):
                    response.headers.add(key.decode("latin-1"), value.decode("latin-1"))
                await response.prepare(request)
            elif message["type"] == "http.response.body" and response is not None:
                await response.write(message.get("body", b""))
                if not message.get("more_body", False):
                    await response.write_eof()

        host, port = (
            (request.transport.get_extra_info("peername") or ("", 0))[:2]
            if request.transport
            else ("", 0)
        )
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.scheme,
            "path": request.path,
            "raw_path": request.raw_path.encode(),
            "root_path": "",
            "query_string": request.query_string.encode(),
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in request.headers.items()
            ],
            "client": (host, port),
            "server": (request.host, None),
        }
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            disconnected.set()
        if response is None:
            raise web.HTTPInternalServerError(text="the MCP transport sent no response")
        return response
