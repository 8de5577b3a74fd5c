"""The HTTP/JSON listener: an aiohttp app on the daemon's event loop beside the gRPC server.

Each `/v1/…` request is matched against the routes of the `google.api.http` annotations,
transcoded into the RPC's request message and handed to the same servicer method the gRPC server
calls, with a context whose `abort` raises instead of ending a call: the servicers (and the
service below them) hold every rule, this module only converts. Answers use the proto3 JSON
mapping with the proto field names, like the webhook bodies.

Also here: the bearer-token middleware (`security.bearer_matches`, the same check as the gRPC
interceptor; `/healthz`, `/readyz` and `/openapi.json` stay open), `GET /healthz` (alive),
`GET /readyz` (store open and scheduler running), `GET /openapi.json`, the TLS context (the
gRPC server's files), and a JSON answer for everything that goes wrong, never a 500 for what a
client sent nor an HTML page. Other parts may add routes or sub-apps to `HttpDoor.app` before
`start` (for example the MCP transport at `/mcp`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import grpc
import structlog
from aiohttp import web

from pinsched import security
from pinsched.config import Config, ConfigError
from pinsched.core import errors
from pinsched.http import fastjson, sse
from pinsched.http import media as http_media
from pinsched.http import routes as rt
from pinsched.http.errors import (
    Aborted,
    Refused,
    ServicerContext,
    error_response,
    from_pinsched_error,
)
from pinsched.media.assets import MediaAssets
from pinsched.ops import limits
from pinsched.v1 import scheduler_pb2

log = structlog.get_logger("pinsched.http")

#: Largest request body accepted (413 above it); the gRPC door's receive limit.
#: Seconds between two comment lines on an idle event stream.
HEARTBEAT_S: Final = 15.0
OPEN_PATHS: Final = frozenset({"/healthz", "/readyz", "/openapi.json"})
JSON_TYPES: Final = frozenset({"application/json"})

Readiness = Callable[[], tuple[bool, str]]


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """Server TLS from the gRPC server's files (mutual TLS when a client CA is set)."""
    if not (config.tls_cert_file and config.tls_key_file):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    if config.tls_client_ca_file:
        ctx.load_verify_locations(config.tls_client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def to_json(message: Any) -> dict[str, Any]:
    """The proto3 JSON of a response: proto field names, every field (like webhook bodies)."""
    return fastjson.to_json(message)


_DUMPS: Final = json.JSONEncoder(separators=(",", ":")).encode
_JSON_HEADERS: Final = {"Content-Type": "application/json; charset=utf-8"}


def _json(data: Any, status: int = 200) -> web.Response:
    """*data* as a JSON answer (bytes with the headers given at once: aiohttp's `text=` and
    `content_type=` each cost a header parse per call)."""
    return web.Response(status=status, body=_DUMPS(data).encode(), headers=_JSON_HEADERS)


async def _answer_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """*handler*'s answer, or the JSON error of what it raised (never a 500 for what a client
    sent, never an HTML page)."""
    try:
        response: web.StreamResponse = await handler(request)
    except Refused as exc:
        return exc.response
    except errors.PinschedError as exc:
        return from_pinsched_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except Exception:
        log.exception("http_request_failed", method=request.method, path=request.path)
        return error_response(
            grpc.StatusCode.INTERNAL, "internal error (logged)", reason="INTERNAL"
        )
    return response


def _http_error(exc: web.HTTPException) -> web.Response:
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    if exc.status == 404:
        return error_response(grpc.StatusCode.NOT_FOUND, "no such route", reason="NO_ROUTE")
    if exc.status == 405:
        return error_response(
            grpc.StatusCode.UNIMPLEMENTED,
            "method not allowed",
            http_status=405,
            headers=headers,
            reason="METHOD_NOT_ALLOWED",
        )
    if exc.status == 413:
        return error_response(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"request body too large ({exc.text})",
            http_status=413,
            reason="REQUEST_TOO_LARGE",
        )
    code = grpc.StatusCode.INTERNAL if exc.status >= 500 else grpc.StatusCode.INVALID_ARGUMENT
    return error_response(code, exc.reason, http_status=exc.status, reason="HTTP_ERROR")


class HttpDoor:
    """The HTTP/JSON API over *servicers* (service full name → the gRPC servicer object)."""

    def __init__(
        self,
        servicers: Mapping[str, Any],
        *,
        api_token: str | None,
        ready: Readiness,
        openapi: Callable[[], bytes],
        heartbeat_s: float | None = None,
        max_body_bytes: int = limits.HTTP_MAX_BODY_BYTES,
        assets: MediaAssets | None = None,
    ) -> None:
        self._servicers = dict(servicers)
        self._token = api_token
        self._ready = ready
        self._openapi = openapi
        self._heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self._routes = [r for r in rt.load_routes() if r.service in self._servicers]
        #: Routes whose template has no variable (`POST /v1/jobs`): found by one dict lookup.
        self._literal = {(r.verb, r.template): r for r in self._routes if not r.path_fields}
        self._format = sse.EventFormatter()
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: Add routes or sub-apps here before `start` (e.g. `app.add_subapp("/mcp", …)`).
        # One middleware (the token, then the errors of everything inside): each aiohttp
        # middleware layer costs every request a few µs.
        self.app = web.Application(middlewares=[self._guard], client_max_size=max_body_bytes)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/openapi.json", self._openapi_json)
        if assets is not None:  # a client-streaming RPC: no annotation, a route by hand
            http_media.mount(self.app, assets)
        self.app.router.add_route("*", "/v1/{tail:.*}", self._dispatch)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The bearer token (open paths excepted), then *handler* with its errors as JSON."""
        if self._token and request.path not in OPEN_PATHS:
            got = request.headers.get("Authorization", "")
            if not security.bearer_matches(got, self._token):
                return error_response(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "missing or wrong API token: send 'Authorization: Bearer <token>'",
                    headers={"WWW-Authenticate": "Bearer"},
                    reason="UNAUTHENTICATED",
                )
        return await _answer_errors(request, handler)

    async def start(self, listen: str, ssl_ctx: ssl.SSLContext | None) -> int:
        """Listen on *listen* (`host:port`, port 0 = any free one); return the bound port."""
        host, _, port = listen.rpartition(":")
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, host.strip("[]"), int(port), ssl_context=ssl_ctx, reuse_port=False
        )
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"http_listen: cannot listen on {listen}: {exc.strerror or exc}; choose another "
                "address with --http-listen / PINSCHED_HTTP_LISTEN, or turn it off with `off`"
            ) from None
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "SERVING"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ok, reason = self._ready()
        return _json(
            {"status": "READY" if ok else "NOT_READY", "reason": reason}, 200 if ok else 503
        )

    async def _openapi_json(self, request: web.Request) -> web.Response:
        return web.Response(body=self._openapi(), content_type="application/json")

    async def _body(self, request: web.Request) -> Any:
        if not request.body_exists:
            return None
        raw = await request.read()
        if not raw.strip():
            return None
        if request.content_type not in JSON_TYPES:
            raise Refused(
                error_response(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"expected Content-Type: application/json, got {request.content_type!r}",
                    http_status=415,
                    reason="UNSUPPORTED_MEDIA_TYPE",
                )
            )
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.InvalidArgument.one("body", f"malformed JSON: {exc}") from None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        route = self._literal.get((request.method, path))
        if route is not None:
            path_vars: dict[str, str] = {}
        else:
            route, path_vars, allowed = rt.match(self._routes, request.method, path)
        if route is None:
            if allowed:
                return error_response(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
                    http_status=405,
                    headers={"Allow": ", ".join(allowed)},
                    reason="METHOD_NOT_ALLOWED",
                )
            return error_response(
                grpc.StatusCode.NOT_FOUND,
                f"no route {request.method} {request.path}",
                reason="NO_ROUTE",
            )
        body = await self._body(request)
        query = {k: request.query.getall(k) for k in request.query} if request.query_string else {}
        message = rt.build_request(route, path_vars, query, body)
        servicer = self._servicers[route.service]
        if route.streaming:
            watch = cast(scheduler_pb2.WatchJobsRequest, message)
            return await sse.watch(
                request, servicer, watch, formatter=self._format, heartbeat_s=self._heartbeat_s
            )
        try:
            reply = await getattr(servicer, route.method.name)(message, ServicerContext())
        except Aborted as exc:
            return error_response(exc.code, exc.message, exc.trailers)
        return _json(to_json(reply))
