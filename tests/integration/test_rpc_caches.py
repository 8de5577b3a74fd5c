"""What the per-method caches of the gRPC door must not change: every call is still timed and
counted under its own status code, a malformed request is still refused, and the cheaper
request hash is byte for byte the one stored by earlier versions (idempotency across upgrades)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import grpc
import pytest

from pinsched.api import validation as va
from pinsched.app import Daemon
from pinsched.v1 import scheduler_pb2
from tests.conftest import Api, soon

SCHEDULE = ("pinsched.v1.PinScheduler", "SchedulePin")


def rpc_count(daemon: Daemon, code: str) -> float:
    value = daemon.metrics.registry.get_sample_value(
        "pinsched_rpc_requests_total",
        {"service": SCHEDULE[0], "method": SCHEDULE[1], "code": code},
    )
    return value or 0.0


def timed_calls(daemon: Daemon) -> float:
    value = daemon.metrics.registry.get_sample_value(
        "pinsched_rpc_duration_seconds_count", {"service": SCHEDULE[0], "method": SCHEDULE[1]}
    )
    return value or 0.0


async def test_cached_wrappers_count_every_call_by_code(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Repeated SchedulePin calls through the cached interceptor wrappers are each timed and
    counted, OK and INVALID_ARGUMENT in their own series, and bad bytes are still refused."""
    api = await Api.open(make_daemon())
    try:
        await api.create_account()
        for i in range(3):
            await api.jobs.SchedulePin(api.pin_request(at=soon(3600), title=f"pin {i}"))
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await api.jobs.SchedulePin(api.pin_request(at=soon(3600), board_id="x"))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        raw = api.channel.unary_unary(
            "/pinsched.v1.PinScheduler/SchedulePin",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await raw(b"\xff\xff\xff")
        assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid protobuf" in (garbage.value.details() or "")
        assert rpc_count(api.daemon, "OK") == 3
        # The guard refuses unparseable bytes before the metrics interceptor, as before.
        assert rpc_count(api.daemon, "INVALID_ARGUMENT") == 2
        assert timed_calls(api.daemon) == 5
    finally:
        await api.close()


def _old_request_hash(req: scheduler_pb2.SchedulePinRequest) -> str:
    """The request hash as earlier versions computed it (serialize, parse, clear, serialize)."""
    canonical = scheduler_pb2.SchedulePinRequest()
    canonical.ParseFromString(req.SerializeToString(deterministic=True))
    canonical.ClearField("request_id")
    canonical.ClearField("validate_only")
    return hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()


@pytest.mark.parametrize(
    ("request_id", "validate_only"), [("", False), ("r-1", False), ("", True), ("r-2", True)]
)
def test_request_hash_matches_earlier_versions(request_id: str, validate_only: bool) -> None:
    """The request hash without the serialize/parse round trip equals the stored one of earlier
    versions, with and without request_id and validate_only, unknown fields included."""
    api = Api.__new__(Api)
    req = api.pin_request(at=soon(3600), request_id="x", description="d", link="https://e.x/")
    req.request_id = request_id
    req.validate_only = validate_only
    req.MergeFromString(b"\xa0\x1f\x01")  # an unknown field (number 500, varint 1)
    assert va.request_hash(req) == _old_request_hash(req)
    assert req.request_id == request_id  # the request itself is left alone
    assert req.validate_only == validate_only
