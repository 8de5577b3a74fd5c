"""Retention: settled jobs, their events and finished webhook deliveries are pruned after
`retention_days` of the injected clock, in small batches; DeleteAccount takes the account's
events along; job and delivery counts are kept by the writing transactions, not by scans."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from bench.retention import run as run_retention
from pinsched.app import Daemon
from pinsched.core.accounts import Account
from pinsched.core.jobs import JobState, transition
from pinsched.retention import Retention
from pinsched.store import Outbox, OutboxRow, Store
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import Api, start_sandbox
from tests.integration.test_store import NOW, make_job

J = job_pb2.Job


async def settled_store(tmp_path: Path, n: int, *, at: datetime = NOW) -> Store:
    """A store with *n* CANCELLED jobs (three events each) changed at *at*."""
    store = await Store.open(tmp_path / "r.db")
    await store.create_account(Account(id="acme", access_token="t", created_at=at, updated_at=at))
    jobs = [make_job(i) for i in range(n)]
    await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
    for job, _ in jobs:
        queued, entry = transition(job, JobState.QUEUED, now=at, reason="due")
        await store.commit(job, queued, entry)
        await store.commit(
            queued, *transition(queued, JobState.CANCELLED, now=at, reason="cancelled")
        )
    return store


def table_counts(db: Path) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Jobs by state and deliveries by (endpoint, state), counted the slow way."""
    conn = sqlite3.connect(db)
    try:
        jobs = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        hooks = {
            (e, s): n
            for e, s, n in conn.execute(
                "SELECT endpoint, state, count(*) FROM webhook_deliveries GROUP BY 1, 2"
            )
        }
        return jobs, hooks
    finally:
        conn.close()


async def test_pruning_takes_settled_jobs_with_their_events_in_small_batches(
    tmp_path: Path,
) -> None:
    """Settled jobs older than the retention go with their events, at most one batch per call;
    newer and active jobs stay with their history."""
    store = await settled_store(tmp_path, 450)
    try:
        active, active_entry = make_job(2000)
        await store.create_jobs([active], [active_entry])
        clock = FakeClock(NOW + timedelta(days=31))
        retention = Retention(store, clock, days=30, batch=200)
        first = await store.prune(clock.now() - timedelta(days=30), limit=200)
        assert first.jobs == 200
        assert first.events == 600
        rest = await retention.prune_once()
        assert rest.jobs == 250
        assert retention.batches == 2  # 200 + 50 (a short batch ends the round)
        assert await store.count_by_state() == {JobState.PENDING: 1}
        kept = await store.get_job(active.id, with_history=True)
        assert len(kept.history) == 1
        assert [e.job_id for e in await store.events_after(0)] == [active.id]
    finally:
        await store.close()


async def test_retention_keeps_what_is_younger_and_zero_keeps_everything(tmp_path: Path) -> None:
    """Settled jobs younger than the retention are kept, and `retention_days = 0` never
    prunes."""
    store = await settled_store(tmp_path, 5)
    try:
        young = Retention(store, FakeClock(NOW + timedelta(days=29)), days=30)
        assert (await young.prune_once()).jobs == 0
        never = Retention(store, FakeClock(NOW + timedelta(days=3650)), days=0)
        assert (await never.prune_once()).jobs == 0
        assert await store.count_by_state() == {JobState.CANCELLED: 5}
    finally:
        await store.close()


async def test_finished_webhook_deliveries_are_pruned_and_pending_ones_kept(tmp_path: Path) -> None:
    """DELIVERED and DEAD deliveries older than the retention are pruned, PENDING ones stay,
    and the outbox counts follow every change."""
    store = await Store.open(
        tmp_path / "w.db",
        outbox=Outbox(lambda e: [OutboxRow("hook", f"m{e.sequence}", e.job_id, "job.x", "{}")]),
    )
    try:
        await store.create_account(
            Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW)
        )
        jobs = [make_job(i) for i in range(3)]
        await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
        d1, d2, _ = await store.webhook_list()
        await store.webhook_record(
            d1.id,
            state="DELIVERED",
            attempts=1,
            next_attempt_at=NOW,
            status=204,
            error=None,
            now=NOW,
        )
        await store.webhook_record(
            d2.id, state="DEAD", attempts=9, next_attempt_at=NOW, status=500, error="gone", now=NOW
        )
        assert await store.webhook_depth() == {
            ("hook", "DELIVERED"): 1,
            ("hook", "DEAD"): 1,
            ("hook", "PENDING"): 1,
        }
        pruned = await store.prune(NOW + timedelta(days=1), limit=10)
        assert pruned.deliveries == 2
        assert [d.state for d in await store.webhook_list()] == ["PENDING"]
        assert await store.webhook_depth() == {("hook", "PENDING"): 1}
        assert table_counts(tmp_path / "w.db")[1] == {("hook", "PENDING"): 1}
    finally:
        await store.close()


async def test_the_daemon_prunes_on_its_clock(make_daemon: Callable[..., Daemon]) -> None:
    """With `retention_days = 2`, a delivered job is gone (GetJob NOT_FOUND, no events) two
    days and a pruning tick after it settled; a job due later keeps its history."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url, retention_days=2)
    api = await Api.open(daemon)
    try:
        await api.create_account()
        soon = await api.jobs.SchedulePin(api.pin_request(at=clock.now() + timedelta(minutes=5)))
        later = await api.jobs.SchedulePin(
            api.pin_request(at=clock.now() + timedelta(days=10), title="later")
        )
        for _ in range(2):
            await clock.advance(600)
            await daemon.activity.idle.wait()
        got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=soon.id))
        assert got.state == J.STATE_DELIVERED
        await clock.advance(2 * 86400)
        await daemon.activity.idle.wait()
        await clock.advance(600)  # the next pruning tick, two days after the delivery
        await daemon.activity.idle.wait()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=soon.id))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert [e.job_id for e in await daemon.store.events_after(0)] == [later.id]
        kept = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=later.id))
        assert len(kept.history) == 1
        assert daemon.retention.total.jobs == 1
    finally:
        await api.close()
        await sandbox.stop()


async def test_delete_account_takes_its_events_so_a_new_account_sees_none(api: Api) -> None:
    """After DeleteAccount, an account created with the same id watching from sequence 0 sees
    only its own events, never the deleted account's."""
    await api.create_account()
    old = await api.jobs.SchedulePin(api.pin_request(at=datetime.now(UTC) + timedelta(days=1)))
    await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=old.id))
    await api.accounts.DeleteAccount(account_pb2.DeleteAccountRequest(account_id="acme"))
    assert await api.daemon.store.events_after(0) == []
    await api.create_account()
    new = await api.jobs.SchedulePin(api.pin_request(at=datetime.now(UTC) + timedelta(days=1)))
    watch = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(account_id="acme", since_sequence=0))
    first = await asyncio.wait_for(watch.read(), 5)
    watch.cancel()
    assert first.job_id == new.id


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_state_counts_follow_every_write_without_a_scan(api: Api, tmp_path: Path) -> None:
    """The counts metrics read (jobs by state) equal a full count after creates, transitions,
    pruning and an account deletion."""
    store = api.daemon.store
    await api.create_account()
    await api.create_account("other")
    ids = []
    for account in ("acme", "acme", "other"):
        job = await api.jobs.SchedulePin(
            api.pin_request(at=datetime.now(UTC) + timedelta(days=1), account_id=account)
        )
        ids.append(job.id)
    await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=ids[0]))
    await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=ids[2]))
    await api.accounts.DeleteAccount(account_pb2.DeleteAccountRequest(account_id="other"))
    await store.prune(datetime.now(UTC) + timedelta(days=400))
    db = tmp_path / "pinsched.db"
    expected = {JobState(k): v for k, v in table_counts(db)[0].items()}
    assert await store.count_by_state() == expected == {JobState.PENDING: 1}


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_database_size_stays_flat_while_jobs_come_and_go(tmp_path: Path) -> None:
    """Creating and finishing jobs for many hours of fake time with a one-day retention, the
    database stops growing once a day went by (`bench/retention.py` at a small size)."""
    scale = os.environ.get("PINSCHED_SOAK_SCALE", "ci")
    hours, per_hour = (36, 10) if scale == "ci" else (120, 100)
    result = await run_retention(tmp_path, hours=hours, per_hour=per_hour, retention_days=1)
    assert result.samples[-1].active == 0
    assert result.samples[-1].jobs <= 25 * per_hour
    assert result.pruned["jobs"] >= (hours - 26) * per_hour
    assert result.flatness <= 1.05, [s.file_bytes for s in result.samples]


async def test_an_older_database_is_upgraded_with_counts_and_its_inline_images(
    tmp_path: Path,
) -> None:
    """A database of schema 4 (images inline in the job row, events of deleted jobs left
    behind) opens with correct state counts, without the orphaned events, and its inline
    image moves to the media table at the job's next change."""
    import base64
    import json

    from pinsched.core.jobs import ImageBase64
    from pinsched.store import MIGRATIONS
    from pinsched.store.rows import _JOB_COLUMNS, _job_row

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:4]):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version + 1}; COMMIT;")
    conn.execute(
        "INSERT INTO accounts (id, pacing, created_at, updated_at) VALUES ('acme', '{}', 0, 0)"
    )
    job, _ = make_job(1)
    row = list(_job_row(job))
    pin = json.loads(row[4])
    pin["media"] = {
        "image_base64": {
            "content_type": "image/png",
            "data": base64.b64encode(b"legacy-bytes").decode(),
        }
    }
    row[4] = json.dumps(pin)
    schema4 = ", ".join(_JOB_COLUMNS.split(", ")[:24])  # later migrations add the rest
    conn.execute(f"INSERT INTO jobs ({schema4}) VALUES ({','.join('?' * 24)})", row[:24])
    for job_id in (job.id, "deleted-long-ago"):
        conn.execute(
            "INSERT INTO events (job_id, account_id, to_state, time, reason, attempt) "
            "VALUES (?, 'acme', 'PENDING', 0, 'scheduled', 0)",
            (job_id,),
        )
    conn.close()
    store = await Store.open(db)
    try:
        assert await store.count_by_state() == {JobState.PENDING: 1}
        assert [e.job_id for e in await store.events_after(0)] == [job.id]
        legacy = await store.get_job(job.id)
        assert isinstance(legacy.pin.media, ImageBase64)
        assert legacy.pin.media.data == b"legacy-bytes"
        queued, entry = transition(legacy, JobState.QUEUED, now=NOW, reason="due")
        await store.commit(legacy, queued, entry)
        moved = await store.get_job(job.id)
        assert isinstance(moved.pin.media, ImageBase64)
        assert moved.pin.media.data == b""
        assert (await store.load_pin(moved.pin)).media == legacy.pin.media
        assert await store.media_bytes(moved.pin.media.sha256) == b"legacy-bytes"
        assert await store.count_by_state() == {JobState.QUEUED: 1}
    finally:
        await store.close()


async def test_a_pruning_batch_frees_a_bounded_amount_of_image_bytes(tmp_path: Path) -> None:
    """Settled jobs with large distinct inline images are pruned a few at a time (at most
    2 MiB of image bytes per batch, at least one job), and the round goes on until all went."""
    import dataclasses

    from pinsched.core.jobs import ImageBase64, PinSpec

    store = await Store.open(tmp_path / "img.db")
    try:
        await store.create_account(
            Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW)
        )
        for i in range(10):
            job, entry = make_job(i)
            image = ImageBase64(content_type="image/png", data=bytes([i]) * (1024 * 1024))
            job = dataclasses.replace(job, pin=PinSpec(board_id="1", media=image))
            [(created, _)] = await store.create_jobs([job], [entry])
            await store.commit(
                created, *transition(created, JobState.CANCELLED, now=NOW, reason="cancelled")
            )
        first = await store.prune(NOW + timedelta(days=1), limit=200)
        assert (first.jobs, first.more) == (2, True)
        retention = Retention(store, FakeClock(NOW + timedelta(days=31)), days=30)
        rest = await retention.prune_once()
        assert rest.jobs == 8
        assert retention.batches == 4
        assert await store.count_by_state() == {}
    finally:
        await store.close()
