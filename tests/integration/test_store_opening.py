"""Opening the database: one daemon per SQLite file, start-up refusals that touch nothing, and
storage failures at run time answered UNAVAILABLE with nothing half-written."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from pinsched.app import Daemon
from pinsched.core.accounts import Account
from pinsched.core.errors import AccountNotFound, StorageUnavailable
from pinsched.store import MIGRATIONS, JobFilter, Store, StoreOpenError
from pinsched.store.jobs import IN_FLIGHT_SQL
from pinsched.store.videos import video_sql
from tests.conftest import Api
from tests.e2e.procs import ROOT, start_daemon, start_sandbox

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def serve_exit(db: Path, timeout_s: float = 60.0) -> tuple[int, list[str]]:
    """Run `pinsched serve --db db` to its end; its exit code and stderr lines."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pinsched",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "off",
        "--db",
        str(db),
        "--pinterest-api-base",
        "http://127.0.0.1:9",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, err.decode().splitlines()


async def test_a_second_store_on_the_same_file_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """While one store holds a database, opening it again fails with the file and the holder's
    pid; once closed, it opens again."""
    db = tmp_path / "one.db"
    first = await Store.open(db)
    try:
        with pytest.raises(StoreOpenError) as caught:
            await Store.open(db)
        message = str(caught.value)
        assert str(db) in message
        assert f"pid {os.getpid()}" in message
    finally:
        await first.close()
    again = await Store.open(db)
    await again.close()


async def test_a_second_daemon_on_the_same_database_exits_2_naming_file_and_pid(
    tmp_path: Path,
) -> None:
    """`pinsched serve` on a database another daemon serves exits 2 with one line naming the
    file and the running daemon's pid; the running daemon keeps serving."""
    sandbox, base = await start_sandbox()
    db = tmp_path / "shared.db"
    first, _ = await start_daemon(db, base)
    try:
        code, lines = await serve_exit(db)
        assert code == 2
        assert len(lines) == 1, lines
        assert str(db) in lines[0]
        assert f"pid {first.proc.pid}" in lines[0]
        assert first.proc.returncode is None
    finally:
        assert await first.terminate() == 0
        await sandbox.terminate()


async def test_a_newer_schema_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """A database of a newer schema makes `serve` exit 2 with one line, and the file is
    byte-for-byte unchanged (not switched to WAL, not migrated)."""
    db = tmp_path / "newer.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x INTEGER)")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.commit()
    conn.close()
    before = digest(db)
    code, lines = await serve_exit(db)
    assert code == 2
    assert len(lines) == 1, lines
    assert "newer" in lines[0]
    assert str(db) in lines[0]
    assert digest(db) == before
    assert not await asyncio.to_thread(Path(f"{db}-wal").exists)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


async def test_a_corrupted_file_is_refused_untouched(tmp_path: Path) -> None:
    """A file that is not a SQLite database makes `serve` exit 2 with one line; the file is
    unchanged."""
    db = tmp_path / "garbage.db"
    db.write_bytes(b"this is not a database\n" * 200)
    before = digest(db)
    code, lines = await serve_exit(db)
    assert code == 2
    assert len(lines) == 1, lines
    assert "not a SQLite database" in lines[0]
    assert digest(db) == before


async def test_a_missing_directory_is_refused_without_creating_it(tmp_path: Path) -> None:
    """A database in a directory that does not exist makes `serve` exit 2 naming the
    directory; nothing is created."""
    db = tmp_path / "nowhere" / "x.db"
    code, lines = await serve_exit(db)
    assert code == 2
    assert len(lines) == 1, lines
    assert "does not exist" in lines[0]
    assert str(db.parent) in lines[0]
    assert not db.parent.exists()


def _read_only_dir() -> Path | None:
    """A directory on a read-only mount of this machine, if there is one."""
    with open("/proc/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) > 3 and "ro" in parts[3].split(",") and Path(parts[1]).is_dir():
                return Path(parts[1])
    return None


async def test_a_read_only_mount_is_refused() -> None:
    """A database on a read-only mount is refused at start-up with one clear line."""
    where = _read_only_dir()
    if where is None:
        pytest.skip("no read-only mount on this machine")
    with pytest.raises(StoreOpenError, match=r"read-only|not writable"):
        await Store.open(where / "pinsched-test.db")


async def test_disk_full_fails_the_write_whole_and_the_store_recovers(tmp_path: Path) -> None:
    """When the disk is full a write raises StorageUnavailable naming the cause, writes nothing,
    and the store works again once space is back."""
    store = await Store.open(tmp_path / "full.db")
    try:
        writer = store._writer
        pages = next(iter(await writer.execute_fetchall("PRAGMA page_count")))[0]
        await writer.execute(f"PRAGMA max_page_count = {pages}")
        big = Account(
            id="big", display_name="x" * 200_000, access_token="t", created_at=NOW, updated_at=NOW
        )
        with pytest.raises(StorageUnavailable, match="full"):
            await store.create_account(big)
        assert await store.list_accounts() == []
        await writer.execute("PRAGMA max_page_count = 1073741823")
        await store.create_account(big)
        assert [a.id for a in await store.list_accounts()] == ["big"]
    finally:
        await store.close()


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_storage_failures_are_unavailable_over_grpc(api: Api) -> None:
    """SchedulePin on a read-only database answers UNAVAILABLE (not INTERNAL) with a clear
    message, stores nothing, and succeeds once the database is writable again."""
    await api.create_account()
    writer = api.daemon.store._writer
    await writer.execute("PRAGMA query_only = ON")
    request = api.pin_request(at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.jobs.SchedulePin(request)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "read-only" in (caught.value.details() or "")
    assert await api.daemon.store.list_jobs(JobFilter()) == []
    await writer.execute("PRAGMA query_only = OFF")
    job = await api.jobs.SchedulePin(request)
    assert job.id


@pytest.mark.sqlite_only  # several daemons share a PostgreSQL database (tests/cluster)
async def test_a_daemon_start_refused_by_the_lock_leaves_the_holder_running(
    make_daemon: Callable[..., Daemon],
) -> None:
    """An in-process daemon on a database another daemon holds fails to start with
    StoreOpenError and leaves no thread behind; the first one is unaffected."""
    first = make_daemon()
    await first.start()
    try:
        second = make_daemon()
        with pytest.raises(StoreOpenError, match="in use by another pinsched"):
            await second.start()
        with pytest.raises(AccountNotFound):  # the first store still answers
            await first.store.get_account("nobody")
    finally:
        await first.stop(grace_s=0.5)


async def test_a_disk_filling_up_under_group_commit_leaves_nothing_half_written(
    tmp_path: Path,
) -> None:
    """Concurrent job inserts while the disk fills up: each one either commits whole (job and
    its event) or fails with StorageUnavailable, and every committed job has its event."""
    from pinsched.core.jobs import JobState
    from tests.integration.test_store import make_job

    db = tmp_path / "filling.db"
    store = await Store.open(db)
    try:
        await store.create_account(
            Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW)
        )
        pages = next(iter(await store._writer.execute_fetchall("PRAGMA page_count")))[0]
        await store._writer.execute(f"PRAGMA max_page_count = {pages + 6}")
        results: list[object] = []
        for wave in range(40):  # waves of ten concurrent writes: group commits of several
            jobs = [make_job(wave * 10 + i) for i in range(10)]
            results += await asyncio.gather(
                *(store.create_jobs([j], [e]) for j, e in jobs), return_exceptions=True
            )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert failed, "the disk never filled up"
        assert all(isinstance(r, StorageUnavailable) for r in failed), failed[:3]
        acked = {r[0][0].id for r in results if isinstance(r, list)}
        assert acked
        await store._writer.execute("PRAGMA max_page_count = 1073741823")
        stored = await store.list_jobs(JobFilter(), limit=1000)
        assert {j.id for j in stored} == acked
        assert {e.job_id for e in await store.events_after(0, limit=1000)} == acked
        assert await store.count_by_state() == {JobState.PENDING: len(acked)}
    finally:
        await store.close()


async def test_a_restart_finds_its_in_flight_jobs_through_the_active_index(tmp_path: Path) -> None:
    """The start-up read of QUEUED/SUBMITTED/CANCELLING jobs searches the partial index
    `jobs_active` instead of scanning the jobs table (a restart with a million pending jobs
    would read them all)."""
    store = await Store.open(tmp_path / "plan.db")
    await store.close()
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {IN_FLIGHT_SQL}")]
    first_half = [step for step in plan if "jobs_active" in step or "SCAN jobs" in step]
    assert any("USING INDEX jobs_active" in step for step in first_half), plan
    assert not any(step.strip() == "SCAN jobs" for step in plan), plan


async def test_a_restart_finds_its_video_jobs_through_their_index(tmp_path: Path) -> None:
    """The start-up read of the video jobs to stage (and a takeover's, by account) searches the
    partial index `jobs_video` instead of reading every active job's pin (0.65 s at a million
    pending jobs)."""
    store = await Store.open(tmp_path / "plan.db")
    await store.close()
    sql = video_sql("json_extract(pin, '$.media.video_url')")
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        for query, args in ((sql, ()), (f"{sql} AND account_id = ?", ("acme",))):
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", args)]
            assert any("USING INDEX jobs_video" in step for step in plan), plan
            assert not any(step.strip() == "SCAN jobs" for step in plan), plan
