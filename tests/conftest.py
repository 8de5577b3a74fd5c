"""Shared fixtures: a sandbox on loopback, a daemon in-process on a real SQLite file and a real
gRPC channel, and a typed client talking to it."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from pinsched import urlprobe
from pinsched.app import Daemon
from pinsched.clock import Clock
from pinsched.config import Config
from pinsched.sandbox import Sandbox
from pinsched.v1 import (
    account_pb2,
    account_pb2_grpc,
    job_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

#: The database backends (SQLite, PostgreSQL) and the `db_url` fixture: tests/backends.py.
pytest_plugins = ("tests.backends",)

ACCESS = "pina_test_access_0001"
REFRESH = "pinr_test_refresh_0001"
BOARD = "1001"


async def start_sandbox(clock: Clock | None = None) -> Sandbox:
    """A sandbox on loopback with user `acme` owning boards 1001 and 1002."""
    sb = Sandbox(now=clock.now if clock else None)
    await sb.start()
    sb.add_user("acme", access_token=ACCESS, refresh_token=REFRESH, board_ids=[BOARD, "1002"])
    sb.set_client("client-1", "client-secret-1")
    return sb


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Media URLs are probed on loopback only: the suite never reaches another host."""
    monkeypatch.setattr(urlprobe, "ALLOWED_HOSTS", frozenset({"127.0.0.1", "localhost"}))


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sb = await start_sandbox()
    try:
        yield sb
    finally:
        await sb.stop()


class Events:
    """A WatchJobs call read event by event: `read()` and `async for` unpack the batches its
    messages carry; everything else is the call's own."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.pending: deque[job_pb2.JobEvent] = deque()
        self.messages = 0

    async def read(self) -> Any:
        while not self.pending:
            message = await self.call.read()
            if message is grpc.aio.EOF:
                return message
            self.messages += 1
            self.pending.extend(message.events)
        return self.pending.popleft()

    def __aiter__(self) -> AsyncIterator[job_pb2.JobEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[job_pb2.JobEvent]:
        while True:
            event = await self.read()
            if event is grpc.aio.EOF:
                return
            yield event

    def __getattr__(self, name: str) -> Any:
        return getattr(self.call, name)


def jobs_stub(channel: grpc.aio.Channel) -> Any:
    """A PinScheduler stub whose WatchJobs calls are read event by event (`Events`)."""
    stub = scheduler_pb2_grpc.PinSchedulerStub(channel)
    raw = stub.WatchJobs
    stub.WatchJobs = lambda *args, **kwargs: Events(raw(*args, **kwargs))  # type: ignore[method-assign]
    return stub


class Api:
    """Stubs on one real channel, plus helpers tests share."""

    def __init__(self, channel: grpc.aio.Channel, daemon: Daemon) -> None:
        self.channel = channel
        self.daemon = daemon
        self.jobs = jobs_stub(channel)
        self.accounts = account_pb2_grpc.AccountServiceStub(channel)

    async def create_account(self, account_id: str = "acme", **pacing: Any) -> account_pb2.Account:
        acct = account_pb2.Account(
            display_name=account_id, access_token=ACCESS, refresh_token=REFRESH
        )
        if pacing:
            acct.pacing.CopyFrom(account_pb2.Pacing(**pacing))
        return await self.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(account_id=account_id, account=acct)
        )

    def pin_request(
        self,
        *,
        at: datetime,
        title: str = "Hello",
        account_id: str = "acme",
        board_id: str = BOARD,
        request_id: str = "",
        **pin: Any,
    ) -> scheduler_pb2.SchedulePinRequest:
        req = scheduler_pb2.SchedulePinRequest(
            request_id=request_id or str(uuid.uuid4()),
            account_id=account_id,
            pin=job_pb2.Pin(
                board_id=board_id,
                title=title,
                media_source=job_pb2.MediaSource(
                    image_url=job_pb2.ImageUrl(url="https://example.com/a.jpg")
                ),
                **pin,
            ),
        )
        req.scheduled_at.FromDatetime(at)
        return req

    async def update_account(
        self, account: account_pb2.Account, *paths: str
    ) -> account_pb2.Account:
        return await self.accounts.UpdateAccount(
            account_pb2.UpdateAccountRequest(
                account=account, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
            )
        )


@pytest.fixture
def make_daemon(db_url: str, sandbox: Sandbox) -> Callable[..., Daemon]:
    def make(
        clock: Clock | None = None, *, base_url: str | None = None, **overrides: Any
    ) -> Daemon:
        settings: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "http_listen": "127.0.0.1:0",
            "db_path": db_url,
            "pinterest_api_base": base_url or sandbox.base_url,
            "pinterest_client_id": "client-1",
            "pinterest_client_secret": "client-secret-1",
            "log_level": "warning",
            "request_timeout_s": 2.0,
            "shutdown_grace_s": 2.0,
            "pinterest_read_lag_s": 0.0,  # the in-process sandbox's reads do not lag
        }
        extra = {"limits": overrides.pop("limits")} if "limits" in overrides else {}
        cfg = Config(**{**settings, **overrides})
        return Daemon(cfg, clock=clock, **extra)

    return make


@pytest.fixture
async def api(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Api]:
    daemon = make_daemon()
    await daemon.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}")
    try:
        yield Api(channel, daemon)
    finally:
        await channel.close(None)
        await daemon.stop(grace_s=1.0)


def soon(seconds: float = 0.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
