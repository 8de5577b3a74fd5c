"""Error → gRPC status: one table, rich details (AIP-193).

`INVALID_ARGUMENT` carries a `google.rpc.BadRequest` naming the bad fields (the first
`MAX_REPORTED_VIOLATIONS`, then how many more: trailing metadata is small); every error carries a
`google.rpc.ErrorInfo` with its stable `reason`. Nothing a client sent ever becomes `UNKNOWN` or
`INTERNAL`: those mean a bug in pinsched, and are logged as such.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from pinsched.core import errors
from pinsched.ops.limits import MAX_REPORTED_VIOLATIONS

log = structlog.get_logger("pinsched.api")

CODES: Final[tuple[tuple[type[errors.PinschedError], grpc.StatusCode], ...]] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.VersionMismatch, grpc.StatusCode.ABORTED),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.ShuttingDown, grpc.StatusCode.UNAVAILABLE),
    (errors.StorageUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.RemoteUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def code_for(exc: errors.PinschedError) -> grpc.StatusCode:
    for cls, code in CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def rich_status(exc: errors.PinschedError) -> tuple[grpc.StatusCode, str, tuple[Any, ...]]:
    """The status code, message and trailing metadata (`grpc-status-details-bin`) for *exc*."""
    code = code_for(exc)
    message = str(exc)
    details = []
    if isinstance(exc, errors.InvalidArgument):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in exc.reported(MAX_REPORTED_VIOLATIONS)
            ]
        )
        details.append(bad)
    details.append(error_details_pb2.ErrorInfo(reason=exc.reason, domain="pinsched.dev"))
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)
    return code, message, (("grpc-status-details-bin", status.SerializeToString()),)


R = TypeVar("R")


def unary(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Wrap a unary handler: PinschedError → rich status; anything else → INTERNAL (logged)."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> R:
        try:
            return await fn(self, request, context)
        except errors.PinschedError as exc:
            code, message, trailers = rich_status(exc)
            await context.abort(code, message, trailing_metadata=trailers)
            raise  # unreachable: abort raises
        except Exception:
            log.exception("rpc_failed", method=fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error (logged)")
            raise

    return wrapper


def streaming(
    fn: Callable[..., AsyncIterator[R]],
) -> Callable[..., AsyncIterator[R]]:
    """Like `unary` for server-streaming handlers."""

    @functools.wraps(fn)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[R]:
        try:
            async for item in fn(self, request, context):
                yield item
        except errors.PinschedError as exc:
            code, message, trailers = rich_status(exc)
            await context.abort(code, message, trailing_metadata=trailers)
        except Exception:
            log.exception("rpc_failed", method=fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error (logged)")

    return wrapper
