"""An image server on 127.0.0.1 for the media checks: /a.jpg (a small JPEG), /big.jpg (refuses
HEAD; a range GET says it is over Pinterest's 20 MB), /page.html (HTML), /hop (redirects to the
cloud metadata address); anything else 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

LIMIT = 20 * 1000 * 1000


async def _image(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"\xff\xd8" + b"x" * 98, content_type="image/jpeg")


async def _big(request: web.Request) -> web.StreamResponse:
    if request.method == "HEAD":
        return web.Response(status=405)  # a server that refuses HEAD: asked with a range GET
    return web.Response(
        status=206,
        body=b"x",
        content_type="image/jpeg",
        headers={"Content-Range": f"bytes 0-0/{LIMIT + 1}"},
    )


async def _html(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html></html>", content_type="text/html")


async def _to_metadata(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")


@asynccontextmanager
async def serve_images() -> AsyncIterator[str]:
    """The server's base URL while it runs."""
    app = web.Application()
    for path, handler in (
        ("/a.jpg", _image),
        ("/big.jpg", _big),
        ("/page.html", _html),
        ("/hop", _to_metadata),
    ):
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
