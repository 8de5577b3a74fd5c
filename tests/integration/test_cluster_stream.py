"""One event stream for several daemons on one PostgreSQL database (real daemons in this
process, real gRPC and HTTP on loopback): a watcher on any daemon sees every daemon's events in
sequence order with no gap and no duplicate, live and across a `Last-Event-ID` resume, and the
router of a daemon learns of jobs other daemons committed. SQLite (one daemon) is not concerned."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from pinsched.app import Daemon
from pinsched.store import postgres
from pinsched.v1 import scheduler_pb2
from tests.conftest import Api, soon
from tests.integration.test_http_watch import take
from tests.integration.test_webhooks import hook, per_job, receiver

_keys = itertools.count(0x5EED0000)


@pytest.fixture
def pg_only(db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("several daemons share a PostgreSQL database only")


async def start_many(
    n: int, make_daemon: Callable[..., Daemon], monkeypatch: pytest.MonkeyPatch
) -> list[Api]:
    """*n* daemons on the test's database, each running alone (no leases: each routes every
    account's jobs) under its own lock key, so that only the shared event stream is tested."""
    apis = []
    for _ in range(n):
        monkeypatch.setattr(postgres, "LOCK_KEY", next(_keys), raising=False)
        apis.append(await Api.open(make_daemon()))
    return apis


@pytest.fixture
async def trio(
    pg_only: None, make_daemon: Callable[..., Daemon], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[Api]]:
    apis = await start_many(3, make_daemon, monkeypatch)
    try:
        yield apis
    finally:
        for api in apis:
            await api.close()


async def log_sequences(db_url: str) -> list[int]:
    conn = await asyncpg.connect(db_url)
    try:
        return [int(r[0]) for r in await conn.fetch("SELECT seq FROM events ORDER BY seq")]
    finally:
        await conn.close()


async def interleaved_writes(b: Api, c: Api, n: int, *, in_s: float = 86400) -> list[str]:
    """*n* pins (due in *in_s* seconds) scheduled through each of *b* and *c* at once, every
    other one cancelled through the other daemon; the job ids."""

    async def one(via: Api, other: Api, i: int) -> str:
        job = await via.jobs.SchedulePin(via.pin_request(at=soon(in_s), title=f"p{i}"))
        if i % 2:
            await other.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
        return str(job.id)

    return list(
        await asyncio.gather(
            *(one(b, c, i) for i in range(n)), *(one(c, b, i) for i in range(n, 2 * n))
        )
    )


async def test_a_watcher_on_a_sees_the_events_of_b_and_c_in_order(
    trio: list[Api], db_url: str
) -> None:
    """A WatchJobs stream on daemon A, opened from the start of the log, gets every event
    committed through daemons B and C (interleaved, concurrent writes) exactly once, in
    sequence order, each with its job."""
    a, b, c = trio
    await b.create_account()
    jobs = await interleaved_writes(c, b, 1)
    call = a.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=0))
    try:
        async with asyncio.timeout(20):
            seen = [await call.read()]  # replayed from the log: the stream is open
            jobs += await interleaved_writes(b, c, 12)
            expected = await log_sequences(db_url)
            while len(seen) < len(expected):
                seen.append(await call.read())
    finally:
        call.cancel()
    assert [e.sequence for e in seen] == expected
    assert len(expected) == 3 + 2 * 12 + 12  # every pin scheduled, half of them cancelled
    assert {e.job_id for e in seen} == set(jobs)
    assert all(e.job.id == e.job_id for e in seen)
    assert a.daemon.feed is not None
    assert a.daemon.feed.remote == len(expected)


async def test_a_watcher_on_a_from_now_streams_b_and_c(trio: list[Api], db_url: str) -> None:
    """A watcher on A that starts at the end of the log gets the events B and C commit
    afterwards, in order, none twice, and A's router learned of B's and C's pending jobs."""
    a, b, c = trio
    await c.create_account()
    await interleaved_writes(b, c, 1)
    now = (await log_sequences(db_url))[-1]
    call = a.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=now))
    try:
        jobs = await interleaved_writes(b, c, 6, in_s=300)  # in the scheduler's window
        seen: list[Any] = []
        async with asyncio.timeout(20):
            while len(seen) < 6 * 2 + 6:
                seen.append(await call.read())
    finally:
        call.cancel()
    sequences = [e.sequence for e in seen]
    assert sequences == sorted(set(sequences))
    assert {e.job_id for e in seen} == set(jobs)
    heap = a.daemon.scheduler.heap
    assert [j in heap for j in jobs] == [i % 2 == 0 for i in range(len(jobs))]


async def test_sse_on_a_resumes_with_last_event_id_across_daemons(
    trio: list[Api], db_url: str
) -> None:
    """An SSE reader on A that drops the connection and reconnects with `Last-Event-ID` gets
    the events B and C committed before, during and after the break exactly once, in order."""
    a, b, c = trio
    await b.create_account()
    await interleaved_writes(b, c, 3)
    url = f"http://127.0.0.1:{a.daemon.http_port}/v1/jobs:watch"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"since_sequence": "0"}) as resp:
            before = await take(resp, 4)
        await interleaved_writes(c, b, 3)
        async with session.get(url, headers={"Last-Event-ID": before[-1].id}) as resp:
            expected = await log_sequences(db_url)
            rest = await take(resp, len(expected) - 4)
            await interleaved_writes(b, c, 2)
            later = await take(resp, 2 * 2 + 2)
    got = [int(m.id) for m in before + rest + later]
    assert got == await log_sequences(db_url)
    assert len(set(got)) == len(got)


async def test_each_webhook_delivery_is_sent_once_by_two_daemons_in_order_per_job(
    pg_only: None,
    make_daemon: Callable[..., Daemon],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
) -> None:
    """Two daemons with the same endpoint, jobs scheduled and cancelled through both: every
    delivery of the outbox reaches the receiver exactly once (one daemon claims it), and each
    job's messages arrive in sequence order."""
    async with receiver() as r:
        a, b = await start_many(2, lambda: make_daemon(webhooks=hook(r.url)), monkeypatch)
        try:
            await a.create_account()
            jobs = await interleaved_writes(a, b, 8)
            expected = await log_sequences(db_url)
            await r.wait_until(lambda: len(r.acked) >= len(expected))
            await asyncio.wait_for(a.daemon.activity.idle.wait(), 5)
            await asyncio.wait_for(b.daemon.activity.idle.wait(), 5)
        finally:
            await a.close(grace_s=0.3)
            await b.close(grace_s=0.3)
    ids = [hit.id for hit in r.hits]
    assert len(ids) == len(set(ids)) == len(expected) == 8 * 2 + 8
    assert {hit.json["data"]["sequence"] for hit in r.hits} == set(expected)
    by_job = per_job(r.hits)
    assert set(by_job) == set(jobs)
    for messages in by_job.values():
        assert [seq for seq, _ in messages] == sorted(seq for seq, _ in messages)
    assert a.daemon.webhooks is not None
    assert b.daemon.webhooks is not None
    assert a.daemon.webhooks.delivered + b.daemon.webhooks.delivered == len(expected)


async def test_events_still_arrive_when_the_listen_connection_is_lost(
    trio: list[Api], db_url: str
) -> None:
    """With every daemon's LISTEN connection killed by the server, a watcher on A still gets
    what B commits (the feed reads the log every second), and A listens again."""
    a, b, _ = trio
    await b.create_account()
    conn = await asyncpg.connect(db_url)
    try:
        await until_listening(conn, 3)
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
    finally:
        await conn.close()
    assert killed == 3
    now = (await log_sequences(db_url) or [0])[-1]
    call = a.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=now))
    try:
        job = await b.jobs.SchedulePin(b.pin_request(at=soon(86400)))
        async with asyncio.timeout(10):
            event = await call.read()
    finally:
        call.cancel()
    assert event.job_id == job.id
    conn = await asyncpg.connect(db_url)
    try:
        await until_listening(conn, 3)  # each feed listens again (within a poll)
    finally:
        await conn.close()


async def until_listening(conn: asyncpg.Connection, n: int) -> None:
    """Until *n* sessions of the test's database LISTEN (at most 10 s)."""
    for _ in range(100):
        if await listening(conn) == n:
            return
        await asyncio.sleep(0.1)
    assert await listening(conn) == n


async def listening(conn: asyncpg.Connection) -> int:
    """How many sessions of the test's database LISTEN."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
    )
