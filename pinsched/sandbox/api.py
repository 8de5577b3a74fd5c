"""The Pinterest v5 routes of the sandbox: thin aiohttp handlers over `SandboxState`.

Owns: parsing path/query/body, calling the state, rendering JSON. Authentication, rate limiting,
fault injection, request ids and the request log happen around these handlers in server.py;
a handler finds the authenticated username in ``request[USERNAME]`` and raises `ApiError` for
any Pinterest error. ``POST /v5/oauth/token`` is the one route without bearer auth: it takes
``Authorization: Basic base64(client_id:client_secret)`` and a form body.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from pinsched.sandbox import errors, validation
from pinsched.sandbox.render import (
    Board,
    account_json,
    board_json,
    cover_key,
    pin_json,
    section_json,
)
from pinsched.sandbox.state import SandboxState

USERNAME = web.RequestKey("sandbox_username", str)
#: Set by the `late_create` fault: the pin created by this request lands this many seconds later.
LAND_AFTER_S = web.RequestKey("sandbox_land_after_s", float)
OAUTH_PATH = "/v5/oauth/token"


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise errors.invalid("request body is not valid JSON") from None


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


class PinterestApi:
    """Handlers for the emulated `/v5` endpoints."""

    def __init__(self, state: SandboxState, now: Callable[[], datetime]) -> None:
        self._state = state
        self._now = now

    def routes(self) -> list[web.RouteDef]:
        """Return the route table."""
        return [
            web.post(OAUTH_PATH, self.oauth_token),
            web.get("/v5/user_account", self.user_account),
            web.post("/v5/pins", self.create_pin),
            web.get("/v5/pins/{pin_id}", self.get_pin),
            web.patch("/v5/pins/{pin_id}", self.update_pin),
            web.delete("/v5/pins/{pin_id}", self.delete_pin),
            web.get("/v5/boards", self.list_boards),
            web.post("/v5/boards", self.create_board),
            web.get("/v5/boards/{board_id}", self.get_board),
            web.get("/v5/boards/{board_id}/pins", self.list_board_pins),
            web.get("/v5/boards/{board_id}/sections", self.list_sections),
        ]

    def _board(self, board: Board) -> dict[str, Any]:
        covers = [cover_key(p) for p in self._state.newest_pins(board.id, self._now())[:4]]
        return board_json(board, cover_keys=covers)

    # ------------------------------------------------------------------------------ oauth

    async def oauth_token(self, request: web.Request) -> web.Response:
        """POST /v5/oauth/token: refresh-token grant with rotation."""
        creds = _basic_credentials(request.headers.get("Authorization", ""))
        if creds is None or not self._state.check_client(*creds):
            raise errors.auth_failed()
        form = await request.post()
        grant_type = form.get("grant_type")
        if not isinstance(grant_type, str) or not grant_type:
            raise errors.invalid("'grant_type' is a required property")
        if grant_type != "refresh_token":
            raise errors.invalid(f"{grant_type!r} is not supported by this sandbox", "grant_type")
        refresh_token = form.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise errors.invalid("'refresh_token' is a required property")
        # continuous_refresh and scope are accepted and ignored: every token is continuous.
        return web.json_response(self._state.refresh(refresh_token, self._now()))

    # ------------------------------------------------------------------------------- user

    async def user_account(self, request: web.Request) -> web.Response:
        """GET /v5/user_account."""
        username = request[USERNAME]
        boards = sum(1 for b in self._state.boards.values() if b.owner == username)
        pins = self._state.user_pin_count(username)
        return web.json_response(account_json(username, board_count=boards, pin_count=pins))

    # ------------------------------------------------------------------------------- pins

    async def create_pin(self, request: web.Request) -> web.Response:
        """POST /v5/pins."""
        body = validation.parse_pin_create(await _json_body(request))
        land_after = request.get(LAND_AFTER_S, 0.0)
        pin = self._state.create_pin(request[USERNAME], body, self._now(), land_after)
        return web.json_response(pin_json(pin), status=201)

    async def get_pin(self, request: web.Request) -> web.Response:
        """GET /v5/pins/{pin_id}."""
        pin_id = validation.check_id(request.match_info["pin_id"], "pin_id")
        pin = self._state.get_pin(request[USERNAME], pin_id, now=self._now())
        return web.json_response(pin_json(pin))

    async def update_pin(self, request: web.Request) -> web.Response:
        """PATCH /v5/pins/{pin_id}."""
        pin_id = validation.check_id(request.match_info["pin_id"], "pin_id")
        body = validation.parse_pin_update(await _json_body(request))
        pin = self._state.update_pin(request[USERNAME], pin_id, body, self._now())
        return web.json_response(pin_json(pin))

    async def delete_pin(self, request: web.Request) -> web.Response:
        """DELETE /v5/pins/{pin_id}: 204 with no body."""
        pin_id = validation.check_id(request.match_info["pin_id"], "pin_id")
        self._state.delete_pin(request[USERNAME], pin_id, self._now())
        return web.Response(status=204)

    # ----------------------------------------------------------------------------- boards

    async def list_boards(self, request: web.Request) -> web.Response:
        """GET /v5/boards."""
        size = validation.parse_page_size(request.query.get("page_size"))
        boards, bookmark = self._state.boards_page(
            request[USERNAME], size, request.query.get("bookmark")
        )
        return web.json_response({"items": [self._board(b) for b in boards], "bookmark": bookmark})

    async def create_board(self, request: web.Request) -> web.Response:
        """POST /v5/boards."""
        body = validation.parse_board_create(await _json_body(request))
        board = self._state.create_board(request[USERNAME], body, self._now())
        return web.json_response(self._board(board), status=201)

    async def get_board(self, request: web.Request) -> web.Response:
        """GET /v5/boards/{board_id}."""
        board_id = validation.check_id(request.match_info["board_id"], "board_id")
        return web.json_response(self._board(self._state.owned_board(request[USERNAME], board_id)))

    async def list_board_pins(self, request: web.Request) -> web.Response:
        """GET /v5/boards/{board_id}/pins: newest first, sections included."""
        board_id = validation.check_id(request.match_info["board_id"], "board_id")
        size = validation.parse_page_size(request.query.get("page_size"))
        pins, bookmark = self._state.board_pins_page(
            request[USERNAME], board_id, size, request.query.get("bookmark"), self._now()
        )
        return web.json_response({"items": [pin_json(p) for p in pins], "bookmark": bookmark})

    async def list_sections(self, request: web.Request) -> web.Response:
        """GET /v5/boards/{board_id}/sections."""
        board_id = validation.check_id(request.match_info["board_id"], "board_id")
        size = validation.parse_page_size(request.query.get("page_size"))
        sections, bookmark = self._state.sections_page(
            request[USERNAME], board_id, size, request.query.get("bookmark")
        )
        items = [section_json(s) for s in sections]
        return web.json_response({"items": items, "bookmark": bookmark})
