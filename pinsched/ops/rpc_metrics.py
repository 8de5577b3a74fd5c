"""The gRPC side of the metrics: a server interceptor that times every RPC and counts its status
code, labelled from the methods the daemon serves (`api.guard.method_labels`; anything else is
`unknown`). The counters live on `ops.metrics.Metrics`, which hands this out as its
`interceptor()`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from pinsched.api.guard import INPUT_TYPES, method_labels

if TYPE_CHECKING:
    from pinsched.ops.metrics import Metrics


def _code_name(context: grpc.aio.ServicerContext[Any, Any], failed: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(failed, asyncio.CancelledError):
        return "CANCELLED"
    if failed is not None and not isinstance(failed, GeneratorExit):
        return "UNKNOWN"
    return "OK"


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class RpcMetrics(_Interceptor):
    """Times every RPC and counts its status code into *metrics* (`Metrics.interceptor`)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        #: method → (the handler below, its timed wrapper): the wrapper, its metric label
        #: children and its closures are built once per method, not per call.
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        path = details.method or ""
        cached = self._wrapped.get(path)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, *method_labels(path))
        if path in INPUT_TYPES:  # a bounded set: unknown paths are not remembered
            self._wrapped[path] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Any, service: str, method: str) -> Any:
        requests = self._m.rpc_requests
        observe = self._m.rpc_duration.labels(service, method).observe
        by_code: dict[str, Any] = {}  # status code name → its counter's `inc`

        def count(code: str) -> None:
            inc = by_code.get(code)
            if inc is None:
                inc = by_code[code] = requests.labels(service, method, code).inc
            inc()

        def unary(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started, failed = time.perf_counter(), None
                try:
                    return await fn(request, context)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    observe(time.perf_counter() - started)
                    count(_code_name(context, failed))

            return timed

        def streaming(fn: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
            async def counted(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                failed = None
                try:
                    result = fn(request, context)
                    if inspect.isasyncgen(result):
                        async for item in result:
                            yield item
                    else:  # a coroutine writing with context.write
                        await result
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    count(_code_name(context, failed))

            return counted

        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kw)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kw)
        return handler
