"""`POST /v1/media` on the HTTP door: the raw body is a video, `Content-Type` its type; the
answer is `UploadMediaResponse` as JSON. Hand-written, because the door's routes come from
`google.api.http` annotations and a client-streaming RPC has none: the body is streamed to the
same `MediaAssets` `UploadMedia` uses (not held in memory, not capped by the JSON body limit
but by Pinterest's video limit)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from pinsched.api.media_servicer import asset_to_proto
from pinsched.api.status import rich_status
from pinsched.core import errors
from pinsched.http import fastjson
from pinsched.http.errors import error_response
from pinsched.media.assets import MediaAssets

PATH = "/v1/media"
CHUNK = 1 << 20


def mount(app: web.Application, assets: MediaAssets) -> None:
    """Add `POST /v1/media` to the door's *app* (before its `/v1/{tail}` catch-all)."""

    async def upload(request: web.Request) -> web.StreamResponse:
        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in request.content.iter_chunked(CHUNK):
                yield chunk

        try:
            asset = await assets.receive(request.content_type, chunks())
        except errors.PinschedError as exc:
            code, message, trailers = rich_status(exc)
            return error_response(code, message, trailers)
        return web.json_response(fastjson.to_json(asset_to_proto(asset)), status=200)

    app.router.add_post(PATH, upload)
