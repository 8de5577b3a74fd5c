"""The gRPC door's first interceptor: authenticate, then make sure a request can be parsed.

`Guard` runs before anything else (metrics, parsing, handlers), so that a caller without the API
token costs the daemon nothing that depends on its request:

* the `authorization` header is checked first (`Bearer <token>`, scheme case-insensitive,
  constant-time compare); a refused call is answered UNAUTHENTICATED by a request-streaming
  handler that never reads the request, so its body is not received nor parsed, and it creates
  no metric series (only the label-free `pinsched_rpc_unauthenticated` counter moves);
* health checks and server reflection stay open (probes, grpcurl);
* a request that is not a valid protobuf of the method's input type is INVALID_ARGUMENT naming
  the type, never UNKNOWN with a Python class name.

`KNOWN_METHODS` is the closed set of method paths the daemon serves; metric labels come from it
(anything else is `unknown`). Owns no state but the expected token.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import grpc
from google.protobuf import message as pb_message
from grpc_health.v1 import health_pb2

from pinsched.api.status import rich_status
from pinsched.core import errors
from pinsched.security import bearer_token as bearer_token
from pinsched.v1 import account_pb2, scheduler_pb2, webhook_pb2

SERVICE_DESCRIPTORS: Final = (
    scheduler_pb2.DESCRIPTOR.services_by_name["PinScheduler"],
    account_pb2.DESCRIPTOR.services_by_name["AccountService"],
    webhook_pb2.DESCRIPTOR.services_by_name["WebhookService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
)
#: `/package.Service/Method` → the full name of its request message.
INPUT_TYPES: Final[dict[str, str]] = {
    f"/{s.full_name}/{m.name}": m.input_type.full_name
    for s in SERVICE_DESCRIPTORS
    for m in s.methods
}
REFLECTION_PREFIX: Final = "/grpc.reflection."
OPEN: Final = ("/grpc.health.v1.Health/", REFLECTION_PREFIX)
DENIED: Final = "missing or wrong API token: send 'authorization: Bearer <token>'"


def method_labels(path: str) -> tuple[str, str]:
    """(service, method) metric labels for *path*; ("unknown", "unknown") for a path the daemon
    does not serve, so that callers cannot mint label values."""
    if path in INPUT_TYPES or path.startswith(REFLECTION_PREFIX):
        _, service, method = [*path.split("/"), "", ""][:3]
        if path.startswith(REFLECTION_PREFIX):
            return service, "ServerReflectionInfo"
        return service, method
    return "unknown", "unknown"


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    __slots__ = ()


_MALFORMED: Final = _Malformed()

if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class Guard(_Interceptor):
    """Token check (when *token* is set) and request parsing, ahead of every other interceptor."""

    def __init__(self, token: str | None, *, on_denied: Callable[[], None] | None = None) -> None:
        self._expected = token.encode() if token else None
        self._on_denied = on_denied
        #: method → (the handler below, its parse-checked wrapper): built once per method, not
        #: per call (the servicers' handlers are fixed for the server's life).
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        method = details.method or ""
        if self._expected is not None and not method.startswith(OPEN):
            got = None
            for key, value in details.invocation_metadata or ():
                if key == "authorization":
                    got = bearer_token(value)
                    break
            if got is None or not hmac.compare_digest(got, self._expected):
                if self._on_denied is not None:
                    self._on_denied()
                return _deny(streaming=method in _STREAMING)
        handler = await continuation(details)
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        input_type = INPUT_TYPES.get(method)
        if handler is None or input_type is None or handler.request_streaming:
            return handler
        wrapped = _parse_checked(handler, input_type)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


_STREAMING: Final = frozenset(
    f"/{s.full_name}/{m.name}" for s in SERVICE_DESCRIPTORS for m in s.methods if m.server_streaming
)


def _deny(*, streaming: bool) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler that refuses the call without reading its request (no deserializer either)."""
    if streaming:

        async def deny_stream(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)
            yield  # pragma: no cover - abort raises; this makes it an async generator

        return grpc.stream_stream_rpc_method_handler(deny_stream)

    async def deny(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)

    return grpc.stream_unary_rpc_method_handler(deny)


def _parse_checked(
    handler: grpc.RpcMethodHandler[Any, Any], input_type: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """*handler* with a deserializer that never raises: bad bytes → INVALID_ARGUMENT."""
    parse: Any = handler.request_deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data) if parse is not None else data
        except (pb_message.DecodeError, ValueError, TypeError):
            return _MALFORMED

    def invalid() -> errors.InvalidArgument:
        return errors.InvalidArgument.one(
            "request", f"the request is not a valid protobuf {input_type} message"
        )

    kw = {"request_deserializer": deserialize, "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        inner: Any = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if request is _MALFORMED:
                code, message, trailers = rich_status(invalid())
                await context.abort(code, message, trailing_metadata=trailers)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, **kw)
    inner_stream: Any = handler.unary_stream

    async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if request is _MALFORMED:
            code, message, trailers = rich_status(invalid())
            await context.abort(code, message, trailing_metadata=trailers)
        result = inner_stream(request, context)
        if hasattr(result, "__aiter__"):
            async for item in result:
                yield item
        else:  # a coroutine writing with context.write
            await result

    return grpc.unary_stream_rpc_method_handler(stream, **kw)
