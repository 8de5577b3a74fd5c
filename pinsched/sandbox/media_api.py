"""The sandbox's media routes: `POST /v5/media`, `GET /v5/media`, `GET /v5/media/{media_id}`
(bearer-authenticated like every `/v5` route) and the upload target `POST /_upload/media` (a
multipart form, no bearer, loopback only like the admin API). The rules are in media.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from aiohttp import BodyPartReader, web

from pinsched.sandbox import errors, validation
from pinsched.sandbox.api import USERNAME
from pinsched.sandbox.media import UPLOAD_PATH, MediaBook, media_json, upload_json


class MediaApi:
    """Handlers over a `MediaBook`."""

    def __init__(self, book: MediaBook, now: Callable[[], datetime]) -> None:
        self._book = book
        self._now = now

    def routes(self) -> list[web.RouteDef]:
        """Return the route table."""
        return [
            web.post("/v5/media", self.register),
            web.get("/v5/media", self.list_media),
            web.get("/v5/media/{media_id}", self.get_media),
            web.post(UPLOAD_PATH, self.upload),
        ]

    async def register(self, request: web.Request) -> web.Response:
        """POST /v5/media: 201 `MediaUpload`."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise errors.invalid("request body is not valid JSON") from None
        item = self._book.register(request[USERNAME], body, self._now())
        base = f"{request.url.scheme}://{request.url.raw_host}:{request.url.port}"
        return web.json_response(upload_json(item, base), status=201)

    async def get_media(self, request: web.Request) -> web.Response:
        """GET /v5/media/{media_id}: `Media` with its status."""
        media_id = validation.check_id(request.match_info["media_id"], "media_id")
        item = self._book.get(request[USERNAME], media_id)
        return web.json_response(media_json(item, self._now()))

    async def list_media(self, request: web.Request) -> web.Response:
        """GET /v5/media: the caller's media, oldest first, on one page."""
        now = self._now()
        items = [
            media_json(i, now) for i in self._book.items.values() if i.owner == request[USERNAME]
        ]
        return web.json_response({"items": items, "bookmark": None})

    async def upload(self, request: web.Request) -> web.Response:
        """POST /_upload/media: the S3-style form upload; 204 when accepted."""
        if not request.content_type.startswith("multipart/"):
            raise ValueError("the upload must be a multipart/form-data POST")
        fields: dict[str, str] = {}
        file: bytes | None = None
        content_type = ""
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "file":
                file = bytes(await part.read())
                content_type = part.headers.get("Content-Type", "")
            else:
                fields[part.name] = await part.text()
        try:
            self._book.upload(
                fields, file, content_type or fields.get("Content-Type", ""), self._now()
            )
        except LookupError as exc:
            raise web.HTTPConflict(reason=str(exc)) from None
        return web.Response(status=204)
