"""The database backends the tests run on, chosen in ONE place: the `db_url` fixture.

`db_url` is a SQLite file in the test's temporary directory or a fresh PostgreSQL database, and
every test that uses it (directly, or through the daemon fixtures of `tests/conftest.py`) runs
once per backend: `test_x[sqlite]`, `test_x[postgresql]`.

* `PINSCHED_TEST_BACKENDS` (comma-separated, default `sqlite,postgresql`) says which run. When
  PostgreSQL is asked for explicitly and its programs are missing, the session fails; by default
  it is skipped with a note, so a machine without PostgreSQL still runs the SQLite half.
* The PostgreSQL cluster is throwaway, one per test session: `initdb` into a temporary
  directory, `pg_ctl start` on 127.0.0.1 (a free port) and a socket in that directory, without
  fsync (a test never survives a power cut), stopped and removed at the end. As root (CI
  containers), initdb refuses to run: the cluster then runs as the `postgres` user, or `nobody`.
* Each test gets its own database (`CREATE DATABASE … TEMPLATE template0`), dropped afterwards.
* `@pytest.mark.sqlite_only` keeps a test on SQLite (it looks at the database file itself).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENV = "PINSCHED_TEST_BACKENDS"
BACKENDS = ("sqlite", "postgresql")
_SEARCH = ("/usr/lib/postgresql",)


def chosen() -> list[str]:
    raw = os.environ.get(ENV, ",".join(BACKENDS))
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise pytest.UsageError(f"{ENV}: unknown backend {unknown}; use {','.join(BACKENDS)}")
    return names


def pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl (PATH first, then Debian's versioned dirs)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for root in _SEARCH:
        for candidate in sorted(Path(root).glob("*/bin"), reverse=True):
            if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
                return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_sql(url: str, *statements: str) -> None:
    """Run *statements* (outside a transaction) on *url*, from a thread of its own (the tests'
    event loop is not disturbed)."""
    import asyncpg

    failure: list[BaseException] = []

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def main() -> None:
        try:
            asyncio.run(go())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable  # fsync as in production (benchmarks); tests run without
        self.base = Path(tempfile.mkdtemp(prefix="pinsched-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as an unprivileged user
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.base} -c max_connections=200"
        if not self.durable:
            options += " -F -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        run_sql(self.url("postgres"), f"CREATE DATABASE {name} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        run_sql(self.url("postgres"), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: the test looks at the SQLite file itself; not run on PostgreSQL"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" not in metafunc.fixturenames:
        return
    names = chosen()
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        names = [n for n in names if n == "sqlite"] or ["sqlite"]
    metafunc.parametrize("db_backend", names, indirect=True, scope="function")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL cluster (started on first use)."""
    bindir = pg_bin()
    if bindir is None:
        if ENV in os.environ:
            pytest.fail(f"{ENV} asks for postgresql but initdb/pg_ctl are not installed")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this test's run ("sqlite" or "postgresql")."""
    name: str = getattr(request, "param", "sqlite")
    return name


@pytest.fixture
def db_url(
    db_backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any
) -> Iterator[str]:
    """The test's database: a SQLite file in its temporary directory, or a fresh PostgreSQL
    database (the working directory is then the temporary directory, where the daemon keeps
    its media directory)."""
    if db_backend == "sqlite":
        yield str(tmp_path / "pinsched.db")
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    monkeypatch.chdir(tmp_path)
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)
