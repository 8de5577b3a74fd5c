"""The one test harness: a sandbox on loopback, ONE daemon factory (`make_daemon`, in-process on a
real database and a real gRPC channel), ONE API client (`Api`, with the one watch helper
`Api.until`) and the fixtures built from them.

The database the daemon under test uses comes from one fixture, `db_url`: parametrise it to run
the daemon suites on another storage backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from hypothesis import settings

from pinsched.app import Daemon
from pinsched.clock import Clock
from pinsched.config import Config
from pinsched.media import urlprobe
from pinsched.sandbox import Sandbox
from pinsched.v1 import (
    account_pb2,
    account_pb2_grpc,
    job_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

J = job_pb2.Job
#: The end of a stream, as `read()` answers it (grpc-stubs do not declare it).
EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]
#: The database backends (SQLite, PostgreSQL) and the `db_url` fixture: tests/backends.py.
pytest_plugins = ("tests.backends",)

# Property tests assert behaviour, never speed: no per-example deadline, which a loaded CI
# machine (or coverage tracing) would turn into flaky failures. Set before the test modules
# build their own `settings(...)`, which inherit it.
settings.register_profile("pinsched", deadline=None)
settings.load_profile("pinsched")

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
            if message is EOF:
                return message
            self.messages += 1
            self.pending.extend(message.events)
        return self.pending.popleft()

    def __aiter__(self) -> AsyncIterator[job_pb2.JobEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[job_pb2.JobEvent]:
        while True:
            event = await self.read()
            if event is EOF:
                return
            yield event

    def __getattr__(self, name: str) -> Any:
        return getattr(self.call, name)


def jobs_stub(channel: grpc.aio.Channel) -> Any:
    """A PinScheduler stub whose WatchJobs calls are read event by event (`Events`)."""
    stub = scheduler_pb2_grpc.PinSchedulerStub(channel)
    raw = stub.WatchJobs
    stub.WatchJobs = lambda *args, **kwargs: Events(raw(*args, **kwargs))  # type: ignore[assignment]
    return stub


class Api:
    """Stubs on one real channel, plus helpers tests share."""

    def __init__(self, channel: grpc.aio.Channel, daemon: Daemon) -> None:
        self.channel = channel
        self.daemon = daemon
        self.jobs = jobs_stub(channel)
        self.accounts = account_pb2_grpc.AccountServiceStub(channel)

    @classmethod
    async def open(cls, daemon: Daemon) -> Api:
        """Start *daemon* and return a client on a real channel to it (`close` undoes both)."""
        await daemon.start()
        return cls(grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}"), daemon)

    async def close(self, grace_s: float = 1.0) -> None:
        """Close the channel and stop the daemon."""
        await self.channel.close(None)
        await self.daemon.stop(grace_s=grace_s)

    async def get(self, job_id: str) -> job_pb2.Job:
        return await self.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))

    async def until(
        self,
        job_id: str,
        done: Callable[[job_pb2.JobEvent], bool],
        timeout_s: float = 10.0,
        *,
        after: int = 0,
    ) -> list[job_pb2.JobEvent]:
        """The one watch helper: follow the job's events after sequence *after* (from the start
        of the log by default) until *done* accepts one; return them all. Fails naming the
        job's state and the reasons seen if that takes *timeout_s* or the stream ends."""
        seen: list[job_pb2.JobEvent] = []
        call = self.jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(job_ids=[job_id], since_sequence=after)
        )
        try:
            async with asyncio.timeout(timeout_s):
                async for event in call:
                    seen.append(event)
                    if done(event):
                        return seen
        except TimeoutError:
            got = await self.get(job_id)
            raise AssertionError(
                f"job {job_id} stuck in {J.State.Name(got.state)} (v{got.version}); "
                f"events: {[e.reason for e in seen]}"
            ) from None
        finally:
            call.cancel()
        raise AssertionError(f"the watch stream of job {job_id} ended")

    async def reach(
        self, job_id: str, *states: int, timeout_s: float = 10.0, after: int = 0
    ) -> job_pb2.Job:
        """Wait for the job's first move into one of *states* (after sequence *after*); return
        the job with its history."""
        await self.until(job_id, lambda e: e.to_state in states, timeout_s, after=after)
        return await self.get(job_id)

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
    """The one daemon factory: `make(clock, base_url=..., **settings)` builds a daemon on
    `db_url`, listening on loopback, talking to *base_url* (the `sandbox` fixture's unless
    given); any setting (and `limits`) can be overridden."""

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
    client = await Api.open(make_daemon())
    try:
        yield client
    finally:
        await client.close()


def soon(seconds: float = 0.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
