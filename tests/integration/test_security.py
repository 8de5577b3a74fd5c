"""Access control: the bearer API token on every RPC but health and reflection, and the policy
that refuses an unauthenticated API on a non-loopback address."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pinsched import security
from pinsched.app import Daemon
from pinsched.config import Config, ConfigError, load_config
from pinsched.daemon import grpc_server
from pinsched.ops import listen as listen_policy
from pinsched.v1 import account_pb2, scheduler_pb2
from tests.conftest import Api, soon

TOKEN = "api-token-0123456789abcdef"
#: Every API service the daemon registers (the generated modules are imported by
#: `pinsched.daemon.grpc_server`).
ALL_METHODS = [
    m
    for name in grpc_server.SERVICES
    for m in descriptor_pool.Default().FindServiceByName(name).methods
]


@pytest.fixture
async def secured(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Api]:
    daemon = make_daemon(api_token=TOKEN)
    api = await Api.open(daemon)
    try:
        yield api
    finally:
        await api.close()


def bearer(token: str = TOKEN) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying *token*."""
    return (("authorization", f"Bearer {token}"),)


async def call_raw(
    channel: grpc.aio.Channel, desc: MethodDescriptor, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.StatusCode:
    """Call *desc* with an empty request; the status code it ends with."""
    full = f"/{desc.containing_service.full_name}/{desc.name}"
    request = message_factory.GetMessageClass(desc.input_type)()
    response_cls = message_factory.GetMessageClass(desc.output_type)
    try:
        if desc.server_streaming:
            stream = channel.unary_stream(
                full,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_cls.FromString,
            )
            call = stream(request, metadata=metadata, timeout=0.5)
            async for _ in call:
                break
            call.cancel()
            return grpc.StatusCode.OK
        unary = channel.unary_unary(
            full,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        await unary(request, metadata=metadata, timeout=5.0)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", ALL_METHODS, ids=[m.name for m in ALL_METHODS])
async def test_every_rpc_requires_the_token(secured: Api, method: MethodDescriptor) -> None:
    """Each PinScheduler and AccountService RPC, WatchJobs included, is UNAUTHENTICATED without
    the bearer token and with a wrong one."""
    assert await call_raw(secured.channel, method) == grpc.StatusCode.UNAUTHENTICATED
    wrong = bearer("api-token-0123456789abcdeX")
    assert await call_raw(secured.channel, method, wrong) == grpc.StatusCode.UNAUTHENTICATED
    assert await call_raw(secured.channel, method, (("authorization", TOKEN),)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


@pytest.mark.parametrize("method", ALL_METHODS, ids=[m.name for m in ALL_METHODS])
async def test_the_right_token_is_let_through(secured: Api, method: MethodDescriptor) -> None:
    """With the right token no RPC is refused as UNAUTHENTICATED (empty requests fail validation
    instead, or stream)."""
    assert await call_raw(secured.channel, method, bearer()) != grpc.StatusCode.UNAUTHENTICATED


async def test_token_flow_and_watch_stream(secured: Api) -> None:
    """An authenticated client creates an account, schedules a pin and watches it delivered."""
    md = bearer()
    await secured.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(
            account_id="acme",
            account=account_pb2.Account(
                access_token="pina_test_access_0001", refresh_token="pinr_test_refresh_0001"
            ),
        ),
        metadata=md,
    )
    job = await secured.jobs.SchedulePin(secured.pin_request(at=soon()), metadata=md)
    call = secured.jobs.WatchJobs(
        scheduler_pb2.WatchJobsRequest(job_ids=[job.id], since_sequence=0), metadata=md
    )
    states = []
    async for event in call:
        states.append(event.to_state)
        if event.to_state == job.STATE_DELIVERED:
            call.cancel()
            break
    assert states[-1] == job.STATE_DELIVERED


async def test_health_and_reflection_stay_open(secured: Api) -> None:
    """Health checks and server reflection answer without a token (probes, grpcurl, buf curl)."""
    reply = await health_pb2_grpc.HealthStub(secured.channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=5.0
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(secured.channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names: list[str] = []
    async for resp in stub.ServerReflectionInfo(ask(), timeout=5.0):
        names = [s.name for s in resp.list_services_response.service]
        break
    assert "pinsched.v1.PinScheduler" in names
    assert "pinsched.v1.AccountService" in names


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.9.10:1", True),
        ("localhost:50051", True),
        ("LOCALHOST:50051", True),
        ("[::1]:50051", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        ("192.168.1.20:50051", False),
        ("10.0.0.5:50051", False),
        ("pinsched.internal:50051", False),
    ],
)
def test_loopback_detection(listen: str, loopback: bool) -> None:
    """Only loopback addresses (and `localhost`) count as loopback; other host names do not."""
    assert listen_policy.is_loopback(listen) is loopback


@pytest.mark.parametrize(
    "listen",
    ["127.0.0.1:50051", "LOCALHOST:50051", "[::1]:1", "0.0.0.0:50051", "pinsched.internal:1"],
)
@pytest.mark.parametrize("http", [False, True])
def test_the_command_line_and_the_daemon_apply_one_listen_policy(listen: str, http: bool) -> None:
    """`load_config` (the command line) and `check_listen_policy` (the daemon) accept and refuse
    the same addresses, for the gRPC and the HTTP door (one rule: `ops.listen`)."""
    env = {"PINSCHED_HTTP_LISTEN" if http else "PINSCHED_LISTEN": listen}
    if listen_policy.is_loopback(listen):
        security.check_listen_policy(load_config(None, env, None))
        return
    with pytest.raises(ConfigError, match=re.escape(listen)):
        load_config(None, env, None)
    with pytest.raises(security.InsecureListen):
        security.check_listen_policy(Config(http_listen=listen) if http else Config(listen=listen))


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "192.168.1.20:50051", "[::]:50051"])
def test_policy_refuses_an_open_non_loopback_api(listen: str) -> None:
    """A non-loopback listen address without a token or mutual TLS is refused, naming the fixes."""
    with pytest.raises(security.InsecureListen) as info:
        security.check_listen_policy(Config(listen=listen))
    text = str(info.value)
    assert listen in text
    for name in (
        "PINSCHED_API_TOKEN",
        "PINSCHED_ALLOW_INSECURE_LISTEN",
        "--allow-insecure-listen",
        "PINSCHED_TLS_CLIENT_CA_FILE",
    ):
        assert name in text
    assert isinstance(info.value, ConfigError)  # the CLI prints it as a configuration error


def test_policy_accepts_a_token_mutual_tls_or_the_override(tmp_path: Path) -> None:
    """A token, a client CA (mutual TLS) or allow_insecure_listen each satisfy the policy."""
    security.check_listen_policy(Config(listen="0.0.0.0:1", api_token=TOKEN))
    security.check_listen_policy(
        Config(listen="0.0.0.0:1", tls_cert_file="c", tls_key_file="k", tls_client_ca_file="ca")
    )
    security.check_listen_policy(Config(listen="0.0.0.0:1", allow_insecure_listen=True))
    with pytest.raises(security.InsecureListen):  # server-only TLS does not authenticate callers
        security.check_listen_policy(
            Config(listen="0.0.0.0:1", tls_cert_file="c", tls_key_file="k")
        )


async def test_daemon_refuses_before_opening_anything(tmp_path: Path) -> None:
    """`Daemon.start` checks the policy first: no database is created, no port is bound."""
    db = tmp_path / "never.db"
    daemon = Daemon(Config(listen="0.0.0.0:0", db_path=str(db)))
    with pytest.raises(security.InsecureListen):
        await daemon.start()
    assert not db.exists()
