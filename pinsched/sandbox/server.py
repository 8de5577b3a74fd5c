"""`Sandbox`: the local Pinterest-v5-compatible HTTP server (aiohttp) and its Python handle.

Owns the server lifecycle and everything that wraps the v5 handlers (api.py), in this order
for each ``/v5`` request: request id, bearer auth lookup, fault decision (faults.py), injected
latency, an answering fault or the 401, the ``org_write`` rate limit (POST/PATCH/DELETE under
``/v5/pins``, POST ``/v5/media``), the handler, an after-handler fault, the request log. The
admin API (admin.py) and the media upload target (media_api.py) are mounted under
``/_admin/`` and ``/_upload/``, for loopback callers only. The state itself lives in state.py.

A `late_create` fault runs the handler with the pin landing later (``LAND_AFTER_S``) and then
answers its 5xx; `read_lag_s` makes reads lag writes (state.py).

Every response carries ``x-pinterest-rid``. When ``write_limit_per_minute > 0``, pin writes also
carry ``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset``; a denied one is
a 429 code 8 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from pinsched.sandbox import errors
from pinsched.sandbox.admin import admin_routes
from pinsched.sandbox.api import LAND_AFTER_S, OAUTH_PATH, USERNAME, PinterestApi
from pinsched.sandbox.errors import ApiError
from pinsched.sandbox.faults import FaultBook, FaultRule
from pinsched.sandbox.media_api import MediaApi
from pinsched.sandbox.ratelimit import RateDecision, SlidingWindow
from pinsched.sandbox.render import pin_json
from pinsched.sandbox.state import ACCESS_TOKEN_TTL_S, REFRESH_TOKEN_TTL_S, SandboxState

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One API request as the sandbox saw it; status 0 means no response was sent."""

    method: str
    path: str
    username: str | None
    status: int
    time: datetime  # arrival, from the sandbox clock
    request_id: str
    fault: str | None = None
    query: str = ""  # the raw query string (e.g. ad_account_id=…)

    def to_json(self) -> dict[str, Any]:
        """Return the record as the admin API shows it."""
        return {
            "method": self.method,
            "path": self.path,
            "username": self.username,
            "status": self.status,
            "time": self.time.isoformat(),
            "request_id": self.request_id,
            "fault": self.fault,
            "query": self.query,
        }


def _error_response(err: ApiError) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers=err.headers)


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _real_now() -> datetime:
    return datetime.now(UTC)


class Sandbox:
    """An in-memory Pinterest API v5 on loopback, with fault injection and an admin API."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime] | None = None,
        write_limit_per_minute: int = 0,
        seed: int = 0,
        read_lag_s: float = 0.0,
        access_ttl_s: int = ACCESS_TOKEN_TTL_S,
        refresh_ttl_s: int = REFRESH_TOKEN_TTL_S,
        trial_app: bool = False,
    ) -> None:
        if read_lag_s < 0:
            raise ValueError("read_lag_s must be >= 0")
        self._now = now or _real_now
        self.state = SandboxState(seed=seed + 1, read_lag_s=read_lag_s)
        self.configure(access_ttl_s=access_ttl_s, refresh_ttl_s=refresh_ttl_s, trial_app=trial_app)
        self.requests: list[RequestRecord] = []
        self.base_url = ""
        self._faults = FaultBook(seed)
        self._limiter = SlidingWindow(write_limit_per_minute) if write_limit_per_minute else None
        self._rid_rng = random.Random(seed + 2)
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # -------------------------------------------------------------------------- lifecycle

    def make_app(self) -> web.Application:
        """Build the aiohttp application (routes + middleware)."""
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(PinterestApi(self.state, self._now).routes())
        app.add_routes(MediaApi(self.state.media, self._now).routes())
        app.add_routes(admin_routes(self))
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on *host*:*port* (0 = any free port); return the base URL ending in /v5."""
        if self._runner is not None:
            raise RuntimeError("sandbox already started")
        self._closing.clear()
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        self.base_url = f"http://{shown}:{bound_port}/v5"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening; held (hanging) requests are released and aborted. Idempotent."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------------ seeding

    def configure(
        self,
        *,
        access_ttl_s: int | None = None,
        refresh_ttl_s: int | None = None,
        trial_app: bool | None = None,
    ) -> None:
        """Change the token lifetimes (for tokens issued from now on) or the app's access tier
        (`trial_app`: pin writes answer 403 code 29, as Pinterest's production does for a Trial
        app)."""
        for name, value in (("access_ttl_s", access_ttl_s), ("refresh_ttl_s", refresh_ttl_s)):
            if value is not None:
                if value < 1:
                    raise ValueError(f"{name} must be at least 1 second, got {value}")
                setattr(self.state, name, int(value))
        if trial_app is not None:
            self.state.trial_app = trial_app

    def add_user(
        self,
        username: str,
        *,
        access_token: str,
        refresh_token: str | None = None,
        board_ids: Sequence[str] = (),
        access_expires_in_s: int | None = None,
    ) -> None:
        """Add a user with a bearer token, an optional refresh token and some boards."""
        now = self._now()
        self.state.add_user(
            username,
            access_token=access_token,
            refresh_token=refresh_token,
            now=now,
            access_expires_in_s=access_expires_in_s,
        )
        for board_id in board_ids:
            self.state.add_board(username, board_id, "", now=now)

    def add_board(self, username: str, board_id: str, name: str = "") -> None:
        """Add a board owned by an existing user."""
        self.state.add_board(username, board_id, name, now=self._now())

    def remove_board(self, board_id: str) -> None:
        """Delete a board, as its owner would on Pinterest (`add_board` brings one back)."""
        self.state.boards.pop(board_id, None)

    def add_section(self, board_id: str, section_id: str) -> None:
        """Add a section to an existing board."""
        self.state.add_section(board_id, section_id)

    def set_client(self, client_id: str, client_secret: str) -> None:
        """Register OAuth app credentials accepted by /oauth/token."""
        self.state.set_client(client_id, client_secret)

    def expire_access_token(self, token: str) -> None:
        """Make a bearer token expired from now on (KeyError if unknown)."""
        self.state.expire_access_token(token, self._now())

    def revoke_refresh_token(self, token: str) -> None:
        """Make a refresh token unusable (KeyError if unknown)."""
        self.state.revoke_refresh_token(token)

    @property
    def read_lag_s(self) -> float:
        """How long after a pin lands reads see it."""
        return self.state.read_lag_s

    def set_read_lag(self, seconds: float) -> None:
        """Make reads lag writes by *seconds* from now on (ValueError if negative)."""
        if seconds < 0:
            raise ValueError("read_lag_s must be >= 0")
        self.state.read_lag_s = seconds

    def add_fault(self, rule: FaultRule) -> None:
        """Activate a fault rule (see faults.py)."""
        self._faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._faults.clear()

    def faults(self) -> list[tuple[FaultRule, int | None]]:
        """Return the active fault rules with their remaining firings (None = unlimited)."""
        return self._faults.rules()

    def reset(self) -> None:
        """Forget all users, clients, boards, pins, faults, rate-limit history and the log."""
        self.state.reset()
        self._faults.reset()
        if self._limiter is not None:
            self._limiter.clear()
        self.requests.clear()

    # -------------------------------------------------------------------------- reading

    def pins(self, *, board_id: str | None = None) -> list[dict[str, Any]]:
        """Return the pins (optionally of one board) as the API renders them, oldest first."""
        return [pin_json(p) for p in self.state.pins_of(board_id=board_id)]

    async def wait_for_pins(self, count: int, *, timeout_s: float = 10.0) -> None:
        """Wait until at least *count* pins exist (deleted ones do not count).

        Woken by every non-GET request, so no polling; raises TimeoutError after *timeout_s*.
        """
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.state.pins) >= count)

    async def notify_changed(self) -> None:
        """Wake `wait_for_pins` waiters so they re-check the state."""
        async with self._changed:
            self._changed.notify_all()

    def now(self) -> datetime:
        """Return the sandbox clock's current time."""
        return self._now()

    # ------------------------------------------------------------------------ middleware

    async def _pause(self, seconds: float) -> None:
        """Wait *seconds*, or less if the sandbox is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = f"{self._rid_rng.getrandbits(63):019d}"
        if request.path != "/v5" and not request.path.startswith("/v5/"):
            response = await self._admin(request, handler)
            response.headers["x-pinterest-rid"] = rid
            return response
        arrived = self._now()
        username = self.state.authenticate(_bearer(request), arrived)
        decision = self._faults.decide(request.method, request.path, username)
        if decision.latency_ms:
            await self._pause(decision.latency_ms / 1000)
        before = decision.before_handler
        if before is not None:
            response = _error_response(before.error())
        else:
            if decision.land_after_s:
                request[LAND_AFTER_S] = decision.land_after_s
            response = await self._dispatch(request, handler, username, arrived)
        after = decision.after_handler
        fault = decision.rule.kind if decision.rule is not None else None
        if after is not None and after.kind == "lost_response":
            self._log(request, username, 0, arrived, rid, fault)
            await self.notify_changed()
            if after.mode == "hang":
                await self._pause(after.hold_s)
            if request.transport is not None:
                request.transport.abort()
            return response  # the connection is gone: nothing reaches the client
        if after is not None:
            response = _error_response(after.error())
        response.headers["x-pinterest-rid"] = rid
        self._log(request, username, response.status, arrived, rid, fault)
        if request.method != "GET":
            await self.notify_changed()
        return response

    async def _dispatch(
        self, request: web.Request, handler: Handler, username: str | None, arrived: datetime
    ) -> web.StreamResponse:
        if username is not None:
            request[USERNAME] = username
        elif request.path != OAUTH_PATH:
            return _error_response(errors.auth_failed())
        is_pin_write = request.method in ("POST", "PATCH", "DELETE") and (
            request.path.startswith("/v5/pins")
        )
        if is_pin_write and self.state.trial_app:
            return _error_response(errors.trial_app())
        limit: RateDecision | None = None
        if (
            self._limiter is not None
            and username is not None
            and request.method in ("POST", "PATCH", "DELETE")
            and (request.path.startswith("/v5/pins") or request.path == "/v5/media")
        ):
            limit = self._limiter.take(username, arrived.timestamp())
            if not limit.allowed:
                return _error_response(errors.rate_limited(limit.headers()))
        try:
            response = await handler(request)
        except ApiError as err:
            response = _error_response(err)
        except web.HTTPException as exc:
            response = _error_response(ApiError(exc.status, exc.status, f"{exc.reason}."))
        except Exception:
            log.exception("sandbox handler failed: %s %s", request.method, request.path)
            response = _error_response(errors.for_status(500))
        if limit is not None:
            response.headers.update(limit.headers())
        return response

    async def _admin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _is_loopback(request.remote):
            return web.json_response({"error": "admin API is loopback-only"}, status=403)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except KeyError as exc:
            return web.json_response({"error": f"not found: {exc.args[0]}"}, status=404)
        if request.method != "GET":
            await self.notify_changed()
        return response

    def _log(
        self,
        request: web.Request,
        username: str | None,
        status: int,
        arrived: datetime,
        rid: str,
        fault: str | None,
    ) -> None:
        self.requests.append(
            RequestRecord(
                method=request.method,
                path=request.path,
                username=username,
                status=status,
                time=arrived,
                request_id=rid,
                fault=fault,
                query=request.query_string,
            )
        )


__all__ = ["RequestRecord", "Sandbox"]
