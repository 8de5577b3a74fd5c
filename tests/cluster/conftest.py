"""The harness of the cluster tests: several daemons on ONE PostgreSQL database.

`pg_url` is a fresh database of the session's throwaway PostgreSQL cluster (`tests.backends`);
the tests here are PostgreSQL's alone, so they are skipped when `PINSCHED_TEST_BACKENDS` leaves
PostgreSQL out (or it is not installed). `Nodes` runs in-process daemons on that database, each
on its OWN `FakeClock` (all starting at the same instant): advancing every clock together is
normal time; leaving one behind is that daemon paused (its timers do not fire, its monotonic
clock stands still), which is how a SIGSTOP looks from inside.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from pinsched.app import Daemon
from pinsched.config import Config
from pinsched.sandbox import Sandbox
from pinsched.testing import FakeClock
from tests.backends import Cluster, chosen
from tests.conftest import Api, start_sandbox

LEASE_S = 10.0


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any) -> Iterator[str]:
    """A fresh PostgreSQL database (skipped when the run leaves PostgreSQL out)."""
    if "postgresql" not in chosen():
        pytest.skip("several daemons share a PostgreSQL database: not among the backends run")
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    monkeypatch.chdir(tmp_path)  # the daemons' media directory
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


class Nodes:
    """Daemons on one database, each on its own fake clock, and a sandbox on the first clock."""

    def __init__(
        self, url: str, sandbox: Sandbox, clocks: list[FakeClock], world: FakeClock
    ) -> None:
        self.url, self.sandbox = url, sandbox
        self.clocks = clocks
        self.world = world  # the sandbox's: it never pauses
        self.apis: list[Api | None] = [None] * len(clocks)

    def config(self, **overrides: Any) -> Config:
        settings: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "http_listen": None,
            "db_path": self.url,
            "pinterest_api_base": self.sandbox.base_url,
            "pinterest_client_id": "client-1",
            "pinterest_client_secret": "client-secret-1",
            "log_level": "warning",
            "request_timeout_s": 2.0,
            "shutdown_grace_s": 1.0,
            "pinterest_read_lag_s": 0.0,
            "preflight_lead_time_s": 0.0,
            "token_keeper": False,
            "cluster": True,
            "cluster_lease_s": LEASE_S,
        }
        return Config(**{**settings, **overrides})

    async def start(self, i: int, **overrides: Any) -> Api:
        """Start daemon *i* as member `node-<i>`: fixed ids make rendezvous ownership, and so
        every test here, the same at every run (a real member id is new at every start)."""
        with mock.patch("pinsched.cluster.member.new_member_id", return_value=f"node-{i}"):
            api = await Api.open(Daemon(self.config(**overrides), clock=self.clocks[i]))
        self.apis[i] = api
        return api

    def daemon(self, i: int) -> Daemon:
        api = self.apis[i]
        assert api is not None
        return api.daemon

    def member_id(self, i: int) -> str:
        member = self.daemon(i).member
        assert member is not None
        return member.id

    async def run(self, seconds: float, *, running: list[int] | None = None) -> None:
        """Move the clocks of the *running* daemons (default: all started) forward together,
        in steps, letting each daemon finish what every step made due; the others are paused."""
        which = [i for i, a in enumerate(self.apis) if a is not None]
        if running is not None:
            which = [i for i in which if i in running]
        step = 0.25
        for _ in range(round(seconds / step)):
            await self.world.advance(step)
            for i in which:
                await self.clocks[i].advance(step)
            for i in which:
                await asyncio.wait_for(self.daemon(i).activity.idle.wait(), 10)

    async def close(self) -> None:
        for api in self.apis:
            if api is not None:
                await api.close(grace_s=0.5)


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[Nodes]:
    """Three daemon slots on one database (none started), a sandbox with user `acme` on a
    clock of its own that moves whenever any daemon's does."""
    clocks = [FakeClock() for _ in range(3)]
    world = FakeClock()
    sandbox = await start_sandbox(world)
    group = Nodes(pg_url, sandbox, clocks, world)
    try:
        yield group
    finally:
        await group.close()
        await sandbox.stop()
