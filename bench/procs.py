"""Subprocesses of a benchmark run: the sandbox, the daemon, the echo server, client processes.

Every process writes its stdout and stderr to a log file in the run's work directory (never a
pipe: a full pipe would stall the process under load, and reading pipes costs the bench CPU).
`wait_line` polls that file. Every process is started in its own session and stopped by its pid
only (SIGTERM, then SIGKILL after a deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_USER = "bench"
SANDBOX_TOKEN = "pina_bench_access"
SANDBOX_REFRESH = "pinr_bench_refresh"
SANDBOX_BOARD = "1001"


@dataclass
class Proc:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float  # time.time() just before exec
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines()[-n:])

    async def wait_line(
        self,
        needle: str,
        timeout_s: float = 60.0,
        fail_on: str = "Traceback (most recent call last)",
    ) -> str:
        """The first log line containing *needle*, polling the log file every 5 ms. A line with
        *fail_on* first (a crash that may leave the process hanging) raises at once."""
        deadline = time.monotonic() + timeout_s
        offset = 0
        pending = b""
        while True:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            pending += chunk
            *whole, pending = pending.split(b"\n")
            for raw in whole:
                line = raw.decode(errors="replace")
                if needle in line:
                    return line
                if fail_on and fail_on in line:
                    await asyncio.sleep(0.2)  # let the traceback reach the log
                    raise RuntimeError(f"{self.name} failed:\n{self.tail()}")
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name}: no line with {needle!r} in {timeout_s}s:\n{self.tail()}"
                )
            await asyncio.sleep(0.005)

    def rss_bytes(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        t = psutil.Process(self.pid).cpu_times()
        return float(t.user + t.system)

    async def wait_exit(self, timeout_s: float | None = None) -> bool:
        """Wait for the process to exit (in a thread); False if it still runs after *timeout_s*."""
        try:
            await asyncio.to_thread(self.popen.wait, timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Signal the process (by pid) and wait for it; SIGKILL after *timeout_s*."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)
            if not await self.wait_exit(timeout_s):
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                await self.wait_exit()
        return int(self.popen.returncode or 0)


class LoadMeter:
    """CPU used on the whole machine vs by this run (the runner and its children) since creation:
    `others_cores` is how many cores other processes kept busy, on average (noise indicator)."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._busy0 = self._machine_busy()
        self._ours0 = self._ours()

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return float(
            t.user
            + t.system
            + getattr(t, "irq", 0.0)
            + getattr(t, "softirq", 0.0)
            + getattr(t, "nice", 0.0)
        )

    @staticmethod
    def _ours() -> float:
        total = 0.0
        me = psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            try:
                c = p.cpu_times()
                total += c.user + c.system + c.children_user + c.children_system
            except psutil.Error:
                pass
        return total  # children that exited and were reaped count in the runner's children_*

    def read(self) -> dict[str, float]:
        wall = max(1e-9, time.monotonic() - self._t0)
        busy = self._machine_busy() - self._busy0
        ours = self._ours() - self._ours0
        return {
            "seconds": wall,
            "cores": float(psutil.cpu_count() or 1),
            "machine_cores": busy / wall,
            "ours_cores": ours / wall,
            "others_cores": max(0.0, (busy - ours) / wall),
        }


def spawn(
    args: Sequence[str],
    name: str,
    workdir: Path,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start `python -m <args>` with output to `<workdir>/<name>.log`."""
    log_path = workdir / f"{name}.log"
    n = 1
    while log_path.exists():
        n += 1
        log_path = workdir / f"{name}-{n}.log"
    out = log_path.open("wb")
    started = time.time()
    popen = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=str(ROOT),
        start_new_session=True,
    )
    out.close()
    proc = Proc(name, popen, log_path, started)
    LIVE.append(proc)
    return proc


def compile_sources() -> None:
    """Byte-compile pinsched and its client once, so that no daemon start of the run spends its
    time compiling sources (with PYTHONDONTWRITEBYTECODE set, every start would: ~0.3 s of CPU
    in each "restart → ready", which an installed daemon does not pay)."""
    import compileall

    for folder in (ROOT / "pinsched", ROOT / "clients" / "python" / "pinsched_client"):
        compileall.compile_dir(str(folder), quiet=1)


#: Every process started by this run, so that `stop_all` can end the ones still running.
LIVE: list[Proc] = []


async def stop_all() -> None:
    """Stop (by pid) every child of this run that is still running."""
    for proc in reversed(LIVE):
        if proc.popen.poll() is None:
            await proc.stop(timeout_s=10)
    LIVE.clear()


async def _started(proc: Proc, needle: str, timeout_s: float) -> str:
    """Wait for *proc*'s ready line; on any failure kill it (a crashed daemon can hang on its
    non-daemon SQLite threads) and re-raise."""
    try:
        return await proc.wait_line(needle, timeout_s)
    except BaseException:
        await proc.stop(signal.SIGKILL)
        raise


async def start_sandbox(workdir: Path, *extra: str) -> tuple[Proc, str]:
    """`pinsched sandbox` with user `bench` (board 1001), no rate limit, no latency."""
    proc = spawn(
        [
            "pinsched",
            "sandbox",
            "--port",
            "0",
            "--seed-user",
            f"{SANDBOX_USER}:{SANDBOX_TOKEN}:{SANDBOX_REFRESH}",
            "--seed-board",
            f"{SANDBOX_USER}:{SANDBOX_BOARD}",
            *extra,
        ],
        "sandbox",
        workdir,
    )
    line = await _started(proc, "sandbox listening on ", 60)
    return proc, line.split("sandbox listening on ", 1)[1].strip()


async def start_daemon(
    workdir: Path,
    db: Path | str,
    api_base: str,
    *extra: str,
    timeout_s: float = 120.0,
    name: str = "daemon",
) -> tuple[Proc, int]:
    """`pinsched serve` on a free port. `proc.info` gets `ready_s` (exec → the `pinsched_ready`
    log line, by the line's own timestamp) and `recovered`."""
    proc = spawn(
        [
            "pinsched",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--db",
            str(db),
            "--pinterest-api-base",
            api_base,
            *extra,
        ],
        name,
        workdir,
    )
    _maybe_profile(proc, workdir)
    line = await _started(proc, '"pinsched_ready"', timeout_s)
    seen = time.time()
    data = json.loads(line[line.index("{") :])
    ready_at = _iso_ts(data.get("timestamp")) or seen
    proc.info.update(
        ready_s=ready_at - proc.started_at,
        recovered=data.get("recovered"),
        http_port=data.get("http_port"),
    )
    return proc, int(data["port"])


async def start_echo(workdir: Path, *extra: str) -> tuple[Proc, int]:
    """The bare grpc.aio echo server (bench.echo) on a free port."""
    proc = spawn(["bench.echo", "--port", "0", *extra], "echo", workdir)
    line = await _started(proc, "echo listening on ", 60)
    return proc, int(line.rsplit(" ", 1)[1])


async def start_http_echo(workdir: Path) -> tuple[Proc, int]:
    """The bare aiohttp JSON echo server (bench.http_echo) on a free port."""
    proc = spawn(["bench.http_echo", "--port", "0"], "http-echo", workdir)
    line = await _started(proc, "http echo listening on ", 60)
    return proc, int(line.rsplit(" ", 1)[1])


async def run_child(
    args: Sequence[str],
    name: str,
    workdir: Path,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Run `python -m <args>` to completion; it prints one JSON object as its last line."""
    proc = spawn(args, name, workdir)
    if not await proc.wait_exit(timeout_s):
        await proc.stop(signal.SIGKILL)
        raise TimeoutError(f"{name} did not finish in {timeout_s}s:\n{proc.tail()}")
    lines = [ln for ln in proc.lines() if ln.startswith("{")]
    if proc.popen.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed ({proc.popen.returncode}):\n{proc.tail()}")
    return dict(json.loads(lines[-1]))


def _maybe_profile(proc: Proc, workdir: Path) -> None:
    """With BENCH_PROFILE_DIR set, attach `py-spy record` to *proc* until it exits. `--gil`:
    only the thread holding the GIL is sampled, so the profile shows what the one serial
    resource of a Python process is spent on (the SQLite thread's I/O is left out)."""
    folder = os.environ.get("BENCH_PROFILE_DIR")
    if not folder:
        return
    out = Path(folder) / f"{proc.log_path.stem}.txt"
    log = (workdir / f"py-spy-{proc.log_path.stem}.log").open("wb")
    # The virtualenv's own py-spy when it is not on PATH (a venv run without activating it).
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    subprocess.Popen(  # exits by itself when the profiled process does
        [
            spy or "py-spy",
            "record",
            "--pid",
            str(proc.pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "--gil",
            "-o",
            str(out),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()


def _iso_ts(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
