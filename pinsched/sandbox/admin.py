"""The sandbox's admin API under ``/_admin/``: not part of Pinterest, no auth, loopback only.

    POST   /_admin/users           {username, access_token, refresh_token?, boards?: [id...],
                                    access_expires_in_s?}                      -> 201 {username}
    POST   /_admin/boards          {username, board_id, name?, sections?: [id...]} -> 201 Board
    POST   /_admin/sections        {board_id, section_id, name?}                -> 201 section
    POST   /_admin/clients         {client_id, client_secret}                   -> 204
    POST   /_admin/tokens/expire   {access_token}                               -> 204 (404 unknown)
    POST   /_admin/tokens/revoke   {refresh_token}                              -> 204 (404 unknown)
    GET    /_admin/pins[?board_id=] -> 200 {items: [Pin + "owner"]} oldest first
    GET    /_admin/faults          -> 200 {items: [FaultRule + "remaining"]}
    POST   /_admin/faults          FaultRule as JSON (faults.py field names)    -> 201 rule
    DELETE /_admin/faults          -> 204
    GET    /_admin/requests        -> 200 {items: [RequestRecord]}
    GET    /_admin/settings        -> 200 {read_lag_s, access_token_ttl_s, refresh_token_ttl_s,
                                           trial_app}
    POST   /_admin/settings        {read_lag_s?: seconds >= 0, access_token_ttl_s?: seconds >= 1,
                                    refresh_token_ttl_s?: seconds >= 1, trial_app?: bool}
                                   -> 200 settings (all checked before any is applied)
    POST   /_admin/reset           -> 204 (everything forgotten)
    GET    /_admin/media           -> 200 {processing_s, fail, uploads: [media_id...],
                                           items: [Media + "owner"]}
    POST   /_admin/media           {processing_s?: seconds >= 0, fail?: bool,
                                    seed?: {username, media_id, status}}  -> 200 as GET
                                   (processing time and failing apply to uploads made after)

Bad input is a 400 ``{"error": ...}`` (raised here as ValueError and converted by server.py);
unknown tokens are 404. Does not own any state: it calls the `Sandbox` methods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pinsched.sandbox.faults import FaultRule
from pinsched.sandbox.media import media_json
from pinsched.sandbox.render import pin_json

if TYPE_CHECKING:
    from pinsched.sandbox.server import Sandbox


async def _body(request: web.Request) -> Mapping[str, Any]:
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError("body must be a JSON object")
    return data


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} must be a non-empty string")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key)


def _seconds(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key!r} must be a whole number of seconds, at least 1")
    return value


def _ids(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} must be a list of strings")
    return list(value)


def admin_routes(sandbox: Sandbox) -> list[web.RouteDef]:
    """Return the admin route table bound to *sandbox*."""

    async def add_user(request: web.Request) -> web.Response:
        data = await _body(request)
        username = _text(data, "username")
        access_token = _text(data, "access_token")
        expires = data.get("access_expires_in_s", 30 * 86400)
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise ValueError("'access_expires_in_s' must be an integer")
        sandbox.add_user(
            username,
            access_token=access_token,
            refresh_token=_optional_text(data, "refresh_token"),
            board_ids=_ids(data, "boards"),
            access_expires_in_s=expires,
        )
        return web.json_response({"username": username}, status=201)

    async def add_board(request: web.Request) -> web.Response:
        data = await _body(request)
        username, board_id = _text(data, "username"), _text(data, "board_id")
        sandbox.add_board(username, board_id, _optional_text(data, "name") or "")
        for section_id in _ids(data, "sections"):
            sandbox.add_section(board_id, section_id)
        board = sandbox.state.boards[board_id]
        return web.json_response(
            {
                "id": board.id,
                "name": board.name,
                "owner": board.owner,
                "sections": board.section_ids,
            },
            status=201,
        )

    async def add_section(request: web.Request) -> web.Response:
        data = await _body(request)
        board_id, section_id = _text(data, "board_id"), _text(data, "section_id")
        name = _optional_text(data, "name") or ""
        section = sandbox.state.add_section(board_id, section_id, name)
        return web.json_response(
            {"id": section.id, "board_id": section.board_id, "name": section.name}, status=201
        )

    async def add_client(request: web.Request) -> web.Response:
        data = await _body(request)
        client_id, secret = _text(data, "client_id"), _text(data, "client_secret")
        sandbox.set_client(client_id, secret)
        return web.Response(status=204)

    async def expire_token(request: web.Request) -> web.Response:
        token = _text(await _body(request), "access_token")
        sandbox.expire_access_token(token)
        return web.Response(status=204)

    async def revoke_token(request: web.Request) -> web.Response:
        token = _text(await _body(request), "refresh_token")
        sandbox.revoke_refresh_token(token)
        return web.Response(status=204)

    async def list_pins(request: web.Request) -> web.Response:
        board_id = request.query.get("board_id")
        items = [
            {**pin_json(p), "owner": p.owner} for p in sandbox.state.pins_of(board_id=board_id)
        ]
        return web.json_response({"items": items})

    async def list_faults(request: web.Request) -> web.Response:
        items = [{**rule.to_json(), "remaining": left} for rule, left in sandbox.faults()]
        return web.json_response({"items": items})

    async def add_fault(request: web.Request) -> web.Response:
        rule = FaultRule.from_json(await _body(request))
        sandbox.add_fault(rule)
        return web.json_response(rule.to_json(), status=201)

    async def clear_faults(request: web.Request) -> web.Response:
        sandbox.clear_faults()
        return web.Response(status=204)

    async def list_requests(request: web.Request) -> web.Response:
        return web.json_response({"items": [r.to_json() for r in sandbox.requests]})

    def current_settings() -> web.Response:
        return web.json_response(
            {
                "read_lag_s": sandbox.read_lag_s,
                "access_token_ttl_s": sandbox.state.access_ttl_s,
                "refresh_token_ttl_s": sandbox.state.refresh_ttl_s,
                "trial_app": sandbox.state.trial_app,
            }
        )

    async def get_settings(request: web.Request) -> web.Response:
        return current_settings()

    async def set_settings(request: web.Request) -> web.Response:
        data = await _body(request)
        unknown = set(data) - {
            "read_lag_s",
            "access_token_ttl_s",
            "refresh_token_ttl_s",
            "trial_app",
        }
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        lag = data.get("read_lag_s")
        if lag is not None and (
            isinstance(lag, bool) or not isinstance(lag, int | float) or lag < 0
        ):
            raise ValueError("'read_lag_s' must be a number of seconds, at least 0")
        trial = data.get("trial_app")
        if trial is not None and not isinstance(trial, bool):
            raise ValueError("'trial_app' must be true or false")
        access, refresh = (
            _seconds(data, "access_token_ttl_s"),
            _seconds(data, "refresh_token_ttl_s"),
        )
        if lag is not None:
            sandbox.set_read_lag(float(lag))
        sandbox.configure(access_ttl_s=access, refresh_ttl_s=refresh, trial_app=trial)
        return current_settings()

    def media_state() -> web.Response:
        book = sandbox.state.media
        now = sandbox.now()
        return web.json_response(
            {
                "processing_s": book.processing_s,
                "fail": book.fail,
                "uploads": book.uploads,
                "items": [{**media_json(i, now), "owner": i.owner} for i in book.items.values()],
            }
        )

    async def get_media(request: web.Request) -> web.Response:
        return media_state()

    async def set_media(request: web.Request) -> web.Response:
        data = await _body(request)
        unknown = set(data) - {"processing_s", "fail", "seed"}
        if unknown:
            raise ValueError(f"unknown media settings: {sorted(unknown)}")
        seconds = data.get("processing_s")
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float)
        ):
            raise ValueError("'processing_s' must be a number of seconds, at least 0")
        fail = data.get("fail")
        if fail is not None and not isinstance(fail, bool):
            raise ValueError("'fail' must be true or false")
        seed = data.get("seed")
        if seed is not None:
            if not isinstance(seed, Mapping):
                raise ValueError("'seed' must be an object {username, media_id, status}")
            username, media_id = _text(seed, "username"), _text(seed, "media_id")
            sandbox.state.media.add(
                username, media_id, sandbox.now(), status=str(seed.get("status", "succeeded"))
            )
        try:
            sandbox.state.media.configure(
                processing_s=None if seconds is None else float(seconds), fail=fail
            )
        except ValueError:
            raise ValueError("'processing_s' must be a number of seconds, at least 0") from None
        return media_state()

    async def reset(request: web.Request) -> web.Response:
        sandbox.reset()
        return web.Response(status=204)

    return [
        web.post("/_admin/users", add_user),
        web.post("/_admin/boards", add_board),
        web.post("/_admin/sections", add_section),
        web.post("/_admin/clients", add_client),
        web.post("/_admin/tokens/expire", expire_token),
        web.post("/_admin/tokens/revoke", revoke_token),
        web.get("/_admin/pins", list_pins),
        web.get("/_admin/faults", list_faults),
        web.post("/_admin/faults", add_fault),
        web.delete("/_admin/faults", clear_faults),
        web.get("/_admin/requests", list_requests),
        web.get("/_admin/settings", get_settings),
        web.post("/_admin/settings", set_settings),
        web.post("/_admin/reset", reset),
        web.get("/_admin/media", get_media),
        web.post("/_admin/media", set_media),
    ]
