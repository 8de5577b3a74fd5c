"""`pinsched cluster status` and the takeover history, on both backends (`db_url`): what the
database says about members, leases and takeovers, read with every daemon down, and one line
with exit code 2 for a database it cannot read."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pinsched.cli.main import main
from pinsched.core.accounts import Account
from pinsched.store import Store, cluster_view
from tests.backends import Cluster, run_sql

TTL = timedelta(seconds=10)
# The command judges "live" and "held" by the wall clock: times an hour away either side of it
# give the same answer whenever the test runs.
NOW = datetime.now(UTC).replace(microsecond=0)
PAST = NOW - timedelta(hours=1)


async def cli(*argv: str) -> int:
    """Run the command line in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


def out_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    for name in ("acme", "zen"):
        await s.create_account(Account(id=name, access_token="t", created_at=PAST, updated_at=PAST))
    yield s
    await s.close()


async def test_a_lease_that_changes_hands_is_recorded_once_with_why(
    store: Store, db_url: str
) -> None:
    """The first take, a renewal and the owner retaking its own expired lease record nothing;
    an expired lease taken by another is "expired", a released one "released", newest first."""
    a = await store.take_lease("acme", "A", PAST, TTL)
    assert a is not None
    await store.take_lease("acme", "A", PAST + timedelta(seconds=5), TTL)
    await store.take_lease("acme", "A", PAST + timedelta(seconds=60), TTL)  # its own, expired
    b = await store.take_lease("acme", "B", PAST + timedelta(seconds=120), TTL)
    assert b is not None
    await store.release_lease(b)
    c = await store.take_lease("acme", "C", PAST + timedelta(seconds=121), TTL)
    assert c is not None
    view = await cluster_view.read_cluster(db_url, 99, takeovers=10, timeout_s=5)
    got = [(t.previous_owner, t.new_owner, t.epoch, t.reason) for t in view.takeovers]
    assert got == [("B", "C", c.epoch, "released"), ("A", "B", b.epoch, "expired")]
    assert view.takeovers[1].at_us == int((PAST + timedelta(seconds=120)).timestamp() * 1e6)


async def test_the_history_keeps_only_the_newest_rows(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past TAKEOVERS_KEPT rows the oldest go: the table never grows without bound."""
    monkeypatch.setattr(cluster_view, "TAKEOVERS_KEPT", 3)
    at = PAST
    for i in range(6):
        at += timedelta(seconds=20)
        assert await store.take_lease("acme", "AB"[i % 2], at, TTL) is not None
    view = await cluster_view.read_cluster(db_url, 99, takeovers=50, timeout_s=5)
    assert [t.epoch for t in view.takeovers] == [6, 5, 4]
    huge = await cluster_view.read_cluster(db_url, 99, takeovers=10**30, timeout_s=5)
    assert huge.takeovers == view.takeovers  # a count past any integer column is just "all"


async def test_status_shows_members_leases_and_takeovers_with_every_daemon_down(
    store: Store, db_url: str, db_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the store closed, `cluster status --json` lists each member live or gone, each lease
    held or expired with its owner and epoch, and the takeover; the human form names them."""
    await store.heartbeat("daemon-a", PAST, timedelta(hours=2))
    await store.heartbeat("daemon-b", PAST, timedelta(minutes=1))
    first = await store.take_lease("acme", "daemon-b", PAST, TTL)
    assert first is not None
    await store.take_lease("acme", "daemon-a", PAST + timedelta(minutes=5), timedelta(hours=2))
    await store.take_lease("zen", "daemon-b", PAST, TTL)
    await store.close()

    assert await cli("cluster", "status", "--db", db_url, "--json") == 0
    data = out_json(capsys)
    assert data["backend"] == db_backend
    assert [(m["id"], m["live"]) for m in data["members"]] == [
        ("daemon-a", True),
        ("daemon-b", False),
    ]
    leases = [(x["account_id"], x["owner"], x["epoch"], x["held"]) for x in data["leases"]]
    assert leases == [("acme", "daemon-a", 2, True), ("zen", "daemon-b", 1, False)]
    [takeover] = data["takeovers"]
    assert takeover["previous_owner"] == "daemon-b"
    assert takeover["new_owner"] == "daemon-a"
    assert (takeover["epoch"], takeover["reason"]) == (2, "expired")

    assert await cli("cluster", "status", "--db", db_url) == 0
    text = capsys.readouterr().out
    if db_backend == "postgresql":
        assert "members: 1 live of 2" in text
        assert "leases: 1 held of 2 accounts" in text
        assert "daemon-b" in text
        assert "expired" in text
    else:
        assert "single daemon" in text


@pytest.mark.sqlite_only
async def test_on_sqlite_it_says_one_daemon_and_whether_it_runs(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite file has one daemon: while a store holds the file the command names its pid
    as running; once closed, not running."""
    s = await Store.open(db_url)
    try:
        assert await cli("cluster", "status", "--db", db_url, "--json") == 0
        data = out_json(capsys)
        assert data["single_daemon"] is True
        assert data["daemon"] == {"pid": os.getpid(), "running": True}
    finally:
        await s.close()
    assert await cli("cluster", "status", "--db", db_url) == 0
    text = capsys.readouterr().out
    assert "single daemon" in text
    assert "not running" in text


async def test_the_database_comes_from_pinsched_db_like_serve(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --db, PINSCHED_DB names the database, as for `pinsched serve`."""
    await store.heartbeat("from-env", NOW, TTL)
    monkeypatch.setenv("PINSCHED_DB", db_url)
    assert await cli("cluster", "status", "--json") == 0
    assert [m["id"] for m in out_json(capsys)["members"]] == ["from-env"]


async def error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one stderr line of a failed `cluster status`, after checking it exited 2."""
    assert await cli("cluster", "status", *argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in captured.err
    return lines[0]


async def test_an_unreachable_postgresql_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A closed port: exit 2, one line naming the database, the password masked."""
    line = await error_line(
        capsys, "--db", "postgresql://ops:s3cret@127.0.0.1:1/pinsched", "--timeout", "2"
    )
    assert "postgresql://ops:***@127.0.0.1:1/pinsched" in line
    assert "cannot connect" in line
    assert "s3cret" not in line


async def test_a_missing_database_or_one_without_pinsched_is_named(
    pg_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that does not exist on the server, or exists without pinsched's schema:
    one line each, exit 2."""
    line = await error_line(capsys, "--db", pg_cluster.url("no_such_db"))
    assert "no_such_db" in line
    assert "cannot connect" in line
    name = pg_cluster.create_database()
    try:
        line = await error_line(capsys, "--db", pg_cluster.url(name))
        assert "no pinsched schema" in line
    finally:
        pg_cluster.drop_database(name)


async def test_a_newer_postgresql_schema_is_refused(
    pg_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database written by a newer pinsched: one line saying to upgrade."""
    name = pg_cluster.create_database()
    try:
        store = await Store.open(pg_cluster.url(name))
        await store.close()
        run_sql(pg_cluster.url(name), "UPDATE pinsched_schema SET version = version + 5")
        line = await error_line(capsys, "--db", pg_cluster.url(name))
        assert "newer" in line
        assert "upgrade pinsched" in line
    finally:
        pg_cluster.drop_database(name)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--db", "mysql://u@h/db"], "--db: mysql:// is not a supported database"),
        (["--db", "postgresql://u@h:port/db"], "--db: not a valid PostgreSQL URL"),
        (["--db", "postgresql://u@h:5432/"], "--db: the PostgreSQL URL names no database"),
        (["--db", "NOWHERE/pinsched.db"], "no such file"),
    ],
)
async def test_bad_databases_are_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL of another engine, a malformed URL, a URL without a database, a missing file."""
    assert needle in await error_line(capsys, *argv)


async def test_a_file_that_is_not_sqlite_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a SQLite database: one line naming it, exit 2; nothing written."""
    bad = tmp_path / "notes.db"
    bad.write_text("just text, not a database\n" * 10)
    line = await error_line(capsys, "--db", str(bad))
    assert str(bad) in line
    assert "not a SQLite database" in line
    assert bad.read_text().startswith("just text")
    assert not (tmp_path / "notes.db.lock").exists()


def test_a_sqlite_file_is_read_without_being_changed(tmp_path: Path) -> None:
    """The command opens SQLite read-only: a database without the lease tables (an old schema)
    reads as empty and is not migrated."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    assert main(["cluster", "status", "--db", str(path), "--json"]) == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert names == {"t"}


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--takeovers", "-1"], "argument --takeovers"),
        (["--takeovers", "many"], "argument --takeovers"),
        (["--timeout", "0"], "argument --timeout"),
        (["--timeout", "soon"], "argument --timeout"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    flags: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad flag values: argparse's one error line naming the flag, exit 2."""
    with pytest.raises(SystemExit) as exit_:
        main(["cluster", "status", "--db", "x.db", *flags])
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err


def test_the_database_resolves_like_serve_and_reads_no_other_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--db over PINSCHED_DB over the config file's db_path over the default; another setting
    that `serve` would refuse (a public listen address without a token) is not read."""
    from pinsched.cli.cluster import database

    config = tmp_path / "pinsched.toml"
    config.write_text('db_path = "from-file.db"\nlisten = "0.0.0.0:50051"\n')
    env = {"PINSCHED_LISTEN": "0.0.0.0:50051"}
    assert database(None, env, str(config)) == "from-file.db"
    assert database(None, {**env, "PINSCHED_DB": "from-env.db"}, str(config)) == "from-env.db"
    assert database("flag.db", {"PINSCHED_DB": "from-env.db"}, str(config)) == "flag.db"
    assert database(None, {}, None) == "./pinsched.db"
    monkeypatch.chdir(tmp_path)
    assert main(["cluster", "status", "--config", str(config), "--json"]) == 2  # no such file


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("db_path = [1, 2]\n", "pinsched.toml: db_path: expected"),
        ("db_path = 'mysql://h/db'\n", "pinsched.toml: db_path: mysql://"),
        ("db_path = \n", "invalid TOML"),
    ],
)
async def test_a_bad_config_file_is_one_line_naming_it(
    tmp_path: Path, text: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file with a bad db_path, or not TOML: one line naming the file, exit 2."""
    config = tmp_path / "pinsched.toml"
    config.write_text(text)
    assert needle in await error_line(capsys, "--config", str(config))


async def test_a_missing_config_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config naming no file: one line naming it, exit 2."""
    line = await error_line(capsys, "--config", str(tmp_path / "nope.toml"))
    assert "nope.toml: cannot read the config file" in line
