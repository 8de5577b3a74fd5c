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

from pinsched.api.guard import method_labels

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

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        service, method = method_labels(details.method or "")
        requests, duration = self._m.rpc_requests, self._m.rpc_duration

        def unary(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started, failed = time.perf_counter(), None
                try:
                    return await fn(request, context)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    duration.labels(service, method).observe(time.perf_counter() - started)
                    requests.labels(service, method, _code_name(context, failed)).inc()

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
                    requests.labels(service, method, _code_name(context, failed)).inc()

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
