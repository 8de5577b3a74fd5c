"""Nothing a caller can exhaust: the token check runs first (no metric series, no body read for a
refused call), requests are bounded in size, and calls and streams are capped per connection and
overall. Real daemon, real gRPC channels on 127.0.0.1."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from pinsched.app import Daemon
from pinsched.ops import limits
from pinsched.ops.limits import ServerLimits
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api

TOKEN = "api-token-0123456789abcdef"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture
async def secured(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Api]:
    api = await Api.open(
        make_daemon(api_token=TOKEN, limits=ServerLimits(max_receive_bytes=1024 * 1024))
    )
    try:
        yield api
    finally:
        await api.close()


def rpc_series(daemon: Daemon) -> set[tuple[str, str]]:
    """(service, method) label pairs of every RPC metric series the daemon holds."""
    out = set()
    for family in daemon.metrics.registry.collect():
        for sample in family.samples:
            if "method" in sample.labels:
                out.add((sample.labels["service"], sample.labels["method"]))
    return out


def raw_call(channel: grpc.aio.Channel, path: str) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
    """A unary call of *path* sending and receiving raw bytes."""
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def test_unknown_methods_never_create_metric_series(secured: Api) -> None:
    """Calls to made-up method names, with or without the token, add no metric series: labels
    come from the methods the daemon serves; refused calls only move an unlabelled counter."""
    paths = [f"/pinsched.v1.PinScheduler/Nope{i}" for i in range(20)]
    paths += [f"/made.up.Service{i}/X" for i in range(20)]
    for path in paths:
        assert await code_of(raw_call(secured.channel, path)(b"", timeout=5)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert await code_of(raw_call(secured.channel, path)(b"", metadata=AUTH, timeout=5)) == (
            grpc.StatusCode.UNIMPLEMENTED
        )
    assert (
        await code_of(secured.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id="x"), metadata=AUTH))
        == grpc.StatusCode.NOT_FOUND
    )
    assert ("pinsched.v1.PinScheduler", "GetJob") in rpc_series(secured.daemon)
    series = rpc_series(secured.daemon)
    assert not {m for _, m in series if m.startswith("Nope")}
    assert not {s for s, _ in series if s.startswith("made.up")}
    assert secured.daemon.metrics.unauthenticated._value.get() == 40


async def test_refused_call_is_answered_without_receiving_its_body(secured: Api) -> None:
    """An unauthenticated request far over the receive limit is refused UNAUTHENTICATED (its
    body is never read), while the same request with the token hits the size limit."""
    big = scheduler_pb2.SchedulePinRequest(
        account_id="acme", pin=job_pb2.Pin(description="x" * (4 * 1024 * 1024))
    )
    call = secured.jobs.SchedulePin
    assert await code_of(call(big, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
    assert await code_of(call(big, metadata=AUTH, timeout=10)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


@pytest.mark.parametrize(
    "header", [f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer  {TOKEN}", f"bEaReR {TOKEN} "]
)
async def test_bearer_scheme_is_case_insensitive(secured: Api, header: str) -> None:
    """RFC 6750 / RFC 9110: the auth scheme is case-insensitive, so `bearer` works as well."""
    call = secured.jobs.GetJob(
        scheduler_pb2.GetJobRequest(job_id="x"), metadata=(("authorization", header),), timeout=5
    )
    assert await code_of(call) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "header",
    [TOKEN, f"Basic {TOKEN}", f"Bearer{TOKEN}", "Bearer ", f"Bearer {TOKEN}x", f"Token {TOKEN}"],
)
async def test_other_authorization_forms_are_refused(secured: Api, header: str) -> None:
    """A header that is not `Bearer <the token>` is UNAUTHENTICATED."""
    call = secured.jobs.GetJob(
        scheduler_pb2.GetJobRequest(job_id="x"), metadata=(("authorization", header),), timeout=5
    )
    assert await code_of(call) == grpc.StatusCode.UNAUTHENTICATED


def maximal_batch() -> scheduler_pb2.BatchSchedulePinsRequest:
    """The largest legitimate BatchSchedulePins: 1,000 carousel pins, every field at its limit."""
    url = "https://example.com/" + "a" * 2028
    items = [
        job_pb2.CarouselItem(url=url, title="t" * 100, description="d" * 800, link=url)
        for _ in range(5)
    ]
    pin = job_pb2.Pin(
        board_id="9" * 19,
        board_section_id="9" * 19,
        title="t" * 100,
        description="d" * 800,
        link=url,
        alt_text="a" * 500,
        dominant_color="#aabbcc",
        media_source=job_pb2.MediaSource(
            multiple_image_urls=job_pb2.MultipleImageUrls(items=items, index=4)
        ),
    )
    req = scheduler_pb2.SchedulePinRequest(request_id="r" * 128, account_id="a" * 63, pin=pin)
    req.scheduled_at.seconds = 2**40
    return scheduler_pb2.BatchSchedulePinsRequest(requests=[req] * limits.MAX_BATCH)


def test_receive_limit_holds_the_largest_legitimate_requests() -> None:
    """A maximal 1,000-item batch and a base64 image at Pinterest's limit both fit under the
    receive limit, with at least 10 % headroom; the HTTP body limit holds their JSON too."""
    batch = maximal_batch().ByteSize()
    image = scheduler_pb2.SchedulePinRequest(
        pin=job_pb2.Pin(
            media_source=job_pb2.MediaSource(
                image_base64=job_pb2.ImageBase64(
                    content_type="image/png", data=b"\0" * limits.IMAGE_MAX_BYTES
                )
            )
        )
    ).ByteSize()
    assert max(batch, image) * 1.1 < limits.MAX_RECEIVE_BYTES
    assert image * 4 / 3 * 1.1 < limits.HTTP_MAX_BODY_BYTES
    assert batch * 1.5 < limits.HTTP_MAX_BODY_BYTES  # JSON repeats every field name


async def test_oversized_request_is_resource_exhausted(make_daemon: Callable[..., Daemon]) -> None:
    """A request over the default receive limit (32 MiB) is refused before it is parsed."""
    api = await Api.open(make_daemon())
    try:
        big = scheduler_pb2.SchedulePinRequest(
            pin=job_pb2.Pin(
                media_source=job_pb2.MediaSource(
                    image_base64=job_pb2.ImageBase64(
                        content_type="image/png", data=b"\0" * (limits.MAX_RECEIVE_BYTES + 1)
                    )
                )
            )
        )
        assert await code_of(api.jobs.SchedulePin(big, timeout=30)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )
    finally:
        await api.close()


async def open_watch(api: Api) -> grpc.aio.UnaryStreamCall[Any, Any]:
    """A WatchJobs stream that the server has accepted (its initial metadata arrived)."""
    call = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest())
    await call.initial_metadata()
    return call


async def test_watch_streams_are_capped_overall(make_daemon: Callable[..., Daemon]) -> None:
    """Past the cap on open WatchJobs streams a new one is RESOURCE_EXHAUSTED naming the cause,
    and unary calls keep working meanwhile."""
    api = await Api.open(make_daemon(limits=ServerLimits(max_watch_streams=2)))
    try:
        first, second = await open_watch(api), await open_watch(api)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest()):
                pass
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "WatchJobs streams are open" in (err.value.details() or "")
        assert await code_of(api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id="x"))) == (
            grpc.StatusCode.NOT_FOUND
        )
        for call in (first, second):
            call.cancel()
    finally:
        await api.close()


async def test_concurrent_calls_are_capped_overall(make_daemon: Callable[..., Daemon]) -> None:
    """With every call slot held by open streams, another call from a new connection is refused
    RESOURCE_EXHAUSTED instead of queuing without bound."""
    api = await Api.open(make_daemon(limits=ServerLimits(max_concurrent_rpcs=2)))
    other = grpc.aio.insecure_channel(f"127.0.0.1:{api.daemon.port}")
    try:
        held = [await open_watch(api), await open_watch(api)]
        code = await code_of(
            Api(other, api.daemon).jobs.GetJob(scheduler_pb2.GetJobRequest(job_id="x"), timeout=5)
        )
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        for call in held:
            call.cancel()
    finally:
        await other.close(None)
        await api.close()


async def test_streams_per_connection_are_capped(make_daemon: Callable[..., Daemon]) -> None:
    """One connection carries at most `max_streams_per_connection` calls at once: a further
    call on it waits for a free stream, while another connection is served at once."""
    api = await Api.open(make_daemon(limits=ServerLimits(max_streams_per_connection=1)))
    other = grpc.aio.insecure_channel(
        f"127.0.0.1:{api.daemon.port}", options=[("grpc.use_local_subchannel_pool", 1)]
    )
    try:
        held = await open_watch(api)
        queued = api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id="x"), timeout=0.5)
        assert await code_of(queued) == grpc.StatusCode.DEADLINE_EXCEEDED
        code = await code_of(
            Api(other, api.daemon).jobs.GetJob(scheduler_pb2.GetJobRequest(job_id="x"), timeout=5)
        )
        assert code == grpc.StatusCode.NOT_FOUND
        held.cancel()
    finally:
        await other.close(None)
        await api.close()


async def test_calls_past_the_stream_limit_wait_and_are_never_refused(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A client with more calls in flight than one connection carries keeps them queued on its
    side and every one is served: none is refused (UNAVAILABLE, "Stream removed") because the
    server still counted streams it had answered but not yet freed."""
    api = await Api.open(make_daemon(limits=ServerLimits(max_streams_per_connection=8)))
    try:
        codes = await asyncio.gather(
            *(
                code_of(api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=f"j{i}"), timeout=30))
                for i in range(600)
            )
        )
        assert collections.Counter(codes) == {grpc.StatusCode.NOT_FOUND: 600}
    finally:
        await api.close()
