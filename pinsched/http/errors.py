"""gRPC status → HTTP answer: the standard code mapping and Google's JSON error body.

Every error the door sends, whether a servicer aborted (its status and `grpc-status-details-bin`
details are carried over as they are) or the door itself refused the request (malformed JSON,
wrong content type, body too large, unknown route, wrong method), has the shape
`{"error": {"code": <http>, "status": "<gRPC code name>", "message": "…", "details": […]}}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import grpc
from aiohttp import web
from google.protobuf import any_pb2
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2, status_pb2

from pinsched.api.status import rich_status
from pinsched.core import errors

__all__ = [
    "HTTP_STATUS",
    "Aborted",
    "Refused",
    "ServicerContext",
    "error_body",
    "error_response",
    "from_pinsched_error",
]

HTTP_STATUS: Final[Mapping[grpc.StatusCode, int]] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

_ = error_details_pb2  # registers BadRequest and ErrorInfo, so details render as JSON


class Aborted(Exception):
    """A servicer called `context.abort`: the status it would have sent over gRPC."""

    def __init__(
        self, code: grpc.StatusCode, message: str, trailers: Iterable[tuple[str, Any]] = ()
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.trailers = code, message, tuple(trailers)


class Refused(Exception):
    """The door refuses a request before any RPC: *response* is the JSON answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.reason)
        self.response = response


class ServicerContext:
    """The part of `grpc.aio.ServicerContext` the servicers use: `abort` raises `Aborted`."""

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Iterable[tuple[str, Any]] = (),
    ) -> None:
        raise Aborted(code, details, trailing_metadata)

    async def send_initial_metadata(self, metadata: Iterable[tuple[str, Any]]) -> None:
        """Nothing to send: the event stream's headers went out when it was prepared."""


def error_body(
    code: grpc.StatusCode,
    message: str,
    trailers: Iterable[tuple[str, Any]] = (),
    *,
    http_status: int | None = None,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a gRPC status with its rich details."""
    details: list[Any] = []
    for key, value in trailers:
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            details = MessageToDict(status, preserving_proto_field_name=True).get("details", [])
    http = http_status or HTTP_STATUS.get(code, 500)
    return http, {
        "error": {"code": http, "status": code.name, "message": message, "details": details}
    }


def error_response(
    code: grpc.StatusCode,
    message: str,
    trailers: Iterable[tuple[str, Any]] = (),
    *,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
    reason: str = "",
) -> web.Response:
    """A JSON error answer; *reason* (the door's own refusals) becomes a google.rpc.ErrorInfo."""
    if reason:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="pinsched.dev"))
        status = status_pb2.Status(code=code.value[0], message=message, details=[info])
        trailers = (("grpc-status-details-bin", status.SerializeToString()),)
    http, body = error_body(code, message, trailers, http_status=http_status)
    return web.Response(
        status=http, text=json.dumps(body), content_type="application/json", headers=headers
    )


def from_pinsched_error(
    exc: errors.PinschedError,
    *,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The answer to *exc*, with exactly the details the gRPC door would send."""
    code, message, trailers = rich_status(exc)
    return error_response(code, message, trailers, http_status=http_status, headers=headers)
