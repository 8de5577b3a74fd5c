"""Chaos soak: kill -9 the daemon at random moments under Pinterest faults; count what was lost.

The daemon (`pinsched serve`) and the sandbox (`pinsched sandbox`) run as subprocesses on
loopback. Many accounts (one sandbox user and board each) get pins due over a few seconds, in
waves; the sandbox answers a share of requests with 5xx, 429 (Retry-After: 1), dropped or hung
connections after creating the pin, 500 after creating it, and 503 while the pin still lands
a moment later (`late_create`); its reads lag its writes (`--read-lag-s`); a few pins have an
image the sandbox refuses for good, and some pairs of pins are identical (reconciliation must not
give one pin to two jobs). While each wave is being delivered the daemon is SIGKILLed at a
random moment and restarted on the same database. Then the faults are cleared and the daemon runs
until every job is settled. Checked:

* lost: a job whose SchedulePin was acknowledged but that is missing, or not terminal
  (DELIVERED / PERMANENTLY_FAILED) in the end;
* duplicates: pins beyond one per DELIVERED job with that content; stray pins (owned by no job);
  DELIVERED jobs whose pin is not on the sandbox; pins for jobs that did not deliver;
* lateness: first send (QUEUED → SUBMITTED) minus the planned time, over delivered jobs
  (jobs due while the daemon was down are late by the restart: the figure shows it).

`python -m bench.soak [--scale ci|soak|long] [--quick] [--seed N]` prints the figures and, last,
one JSON object (read by `bench/soakrun.py`); the exit status is 1 when anything was lost or
duplicated. `tests/e2e/test_chaos.py` runs the `ci` scale (or `PINSCHED_SOAK_SCALE`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from pinsched.v1 import account_pb2, account_pb2_grpc, job_pb2, scheduler_pb2, scheduler_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
J = job_pb2.Job
CLIENT_ID, CLIENT_SECRET = "soak-client", "soak-secret"
#: The daemon's read-lag margin: above every scale's sandbox read lag.
READ_LAG_MARGIN_S = 1.0
SETTLED = frozenset(
    {J.STATE_DELIVERED, J.STATE_PERMANENTLY_FAILED, J.STATE_FAILED, J.STATE_CANCELLED}
)
TERMINAL = frozenset({J.STATE_DELIVERED, J.STATE_PERMANENTLY_FAILED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Scale:
    """How big a run is."""

    pins: int
    accounts: int
    kills: int
    spread_s: float = 2.5  # each wave's pins fall due over this many seconds
    rate_5xx: float = 0.10
    rate_429: float = 0.05
    rate_drop: float = 0.08  # pin created, connection dropped
    rate_hang: float = 0.04  # pin created, connection held past the request timeout
    rate_after_create: float = 0.04  # pin created, then 500
    rate_late_create: float = 0.05  # 503 at once, the pin lands land_after_s later
    #: When a late create lands, after the request arrived, and the sandbox's read lag: together
    #: well inside the daemon's request timeout (1 s) + read-lag margin (READ_LAG_MARGIN_S), as
    #: pinsched's promise requires, with room for a request that waits in a loaded event loop.
    land_after_s: tuple[float, float] = (0.1, 0.5)
    read_lag_s: float = 0.2
    rejected_every: int = 40  # every n-th pin has an image Pinterest refuses for good
    twin_every: int = 25  # every n-th pin repeats the previous pin of its account exactly
    settle_timeout_s: float = 60.0


SCALES: dict[str, Scale] = {
    # More late creates than the other scales: the ci test requires at least one to fire.
    "ci": Scale(pins=200, accounts=10, kills=3, settle_timeout_s=40.0, rate_late_create=0.15),
    "soak": Scale(pins=2000, accounts=40, kills=8, spread_s=4.0, settle_timeout_s=120.0),
    "long": Scale(pins=10_000, accounts=100, kills=15, spread_s=8.0, settle_timeout_s=300.0),
}


@dataclass(slots=True)
class Result:
    """What a run found. `problems()` is empty when nothing was lost or duplicated."""

    lost_jobs: int = 0
    duplicate_pins: int = 0
    stray_pins: int = 0
    missing_pins: int = 0
    not_terminal: int = 0
    scale: str = ""
    pins_scheduled: int = 0
    jobs_acked: int = 0
    jobs_in_store: int = 0
    delivered: int = 0
    permanently_failed: int = 0
    expected_rejections: int = 0
    unexpected_permanent_failures: int = 0
    kills: int = 0
    resent: int = 0
    submitted_at_kill: int = 0
    sandbox_pins: int = 0
    reconciled_deliveries: int = 0
    late_creates: int = 0
    retries: int = 0
    lateness_p50_s: float = float("nan")
    lateness_p99_s: float = float("nan")
    lateness_max_s: float = float("nan")
    wall_s: float = 0.0
    settle_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [
            f"{name} = {value}"
            for name, value in (
                ("lost_jobs", self.lost_jobs),
                ("duplicate_pins", self.duplicate_pins),
                ("stray_pins", self.stray_pins),
                ("missing_pins", self.missing_pins),
                ("not_terminal", self.not_terminal),
            )
            if value
        ]
        return out + self.notes


# ------------------------------------------------------------------------------ processes


class Child:
    """A subprocess whose output is drained continuously (a full pipe would stall it); keeps the
    last lines and resolves `wait_line` futures as matching lines arrive."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.tail: deque[str] = deque(maxlen=300)
        self._waiting: list[tuple[str, asyncio.Future[str]]] = []
        self._readers = [
            asyncio.create_task(self._read(s)) for s in (proc.stdout, proc.stderr) if s is not None
        ]

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.tail.append(line)
            for needle, fut in self._waiting:
                if needle in line and not fut.done():
                    fut.set_result(line)

    async def wait_line(self, needle: str, timeout_s: float = 30.0) -> str:
        """The first line from now on containing *needle*; fails if the process exits."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append((needle, fut))
        exited = asyncio.ensure_future(self.proc.wait())
        waiters: set[asyncio.Future[Any]] = {fut, exited}
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            if fut in done:
                return fut.result()
            what = "exited" if exited in done else f"printed no {needle!r} in {timeout_s} s"
            raise RuntimeError(f"{self.name} {what}:\n" + "\n".join(list(self.tail)[-40:]))
        finally:
            exited.cancel()
            self._waiting.remove((needle, fut))

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code


async def spawn(args: Sequence[str], name: str, env: dict[str, str] | None = None) -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Child(proc, name)


async def start_sandbox(scale: Scale, seed: int) -> tuple[Child, str]:
    """`pinsched sandbox` with the scale's random faults; returns it and its base URL."""
    child = await spawn(
        [
            "pinsched",
            "sandbox",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--fault-rate-5xx",
            str(scale.rate_5xx),
            "--fault-rate-429",
            str(scale.rate_429),
            "--fault-rate-lost",
            str(scale.rate_drop),
            "--read-lag-s",
            str(scale.read_lag_s),
        ],
        "sandbox",
    )
    line = await child.wait_line("sandbox listening on ")
    return child, line.split("sandbox listening on ", 1)[1].strip()


def daemon_env() -> dict[str, str]:
    """The soak daemon's settings: fast retries, a 1 s request timeout, JSON logs."""
    return {
        "PINSCHED_PINTEREST_CLIENT_ID": CLIENT_ID,
        "PINSCHED_PINTEREST_CLIENT_SECRET": CLIENT_SECRET,
        "PINSCHED_REQUEST_TIMEOUT_S": "1",
        "PINSCHED_RETRY_BASE_DELAY_S": "0.05",
        "PINSCHED_RETRY_MAX_DELAY_S": "1",
        "PINSCHED_MAX_ATTEMPTS": "12",
        "PINSCHED_SHUTDOWN_GRACE_S": "1",
        "PINSCHED_LOG_LEVEL": "info",
        "PINSCHED_PINTEREST_READ_LAG_S": str(READ_LAG_MARGIN_S),
        "PINSCHED_LOG_FORMAT": "json",
    }


async def start_daemon(db: Path | str, base_url: str) -> tuple[Child, int, dict[str, int]]:
    """`pinsched serve` on *db* with fast retries and a 1 s request timeout; returns it, its
    port and what it recovered at start-up (jobs by state)."""
    child = await spawn(
        [
            "pinsched",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--db",
            str(db),
            "--pinterest-api-base",
            base_url,
        ],
        "daemon",
        env=daemon_env(),
    )
    ready = json.loads(await child.wait_line('"pinsched_ready"'))
    return child, int(ready["port"]), dict(ready.get("recovered") or {})


# ------------------------------------------------------------------------------ the sandbox


class Admin:
    """The sandbox's /_admin/ API."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.root = base_url.rsplit("/v5", 1)[0] + "/_admin"
        self.session = session

    async def post(self, path: str, body: dict[str, Any]) -> None:
        async with self.session.post(f"{self.root}{path}", json=body) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"admin {path}: {resp.status} {await resp.text()}")

    async def clear_faults(self) -> None:
        async with self.session.delete(f"{self.root}/faults") as resp:
            resp.raise_for_status()

    async def requests(self) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.root}/requests") as resp:
            resp.raise_for_status()
            return list((await resp.json())["items"])

    async def pins(self) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.root}/pins") as resp:
            resp.raise_for_status()
            return list((await resp.json())["items"])


def account_id(i: int) -> str:
    return f"acct{i:03d}"


def board_id(i: int) -> str:
    return str(5000 + i)


# ------------------------------------------------------------------------------ the run


@dataclass(slots=True)
class Plan:
    """The pins to schedule, by wave."""

    waves: list[list[scheduler_pb2.SchedulePinRequest]]
    rejected_titles: set[str]


def plan(scale: Scale, rng: random.Random) -> Plan:
    """Requests for every pin (times are set when a wave is scheduled)."""
    per_account: dict[int, job_pb2.Pin] = {}
    reqs: list[scheduler_pb2.SchedulePinRequest] = []
    rejected: set[str] = set()
    for n in range(scale.pins):
        i = rng.randrange(scale.accounts)
        prev = per_account.get(i)
        if prev is not None and scale.twin_every and n % scale.twin_every == 0:
            pin = job_pb2.Pin()
            pin.CopyFrom(prev)  # an identical twin
        else:
            url = f"https://example.com/soak/{n}.jpg"
            if scale.rejected_every and n % scale.rejected_every == 1:
                url = f"https://example.com/soak/{n}-sandbox-too-small.jpg"
                rejected.add(f"soak pin {n}")
            pin = job_pb2.Pin(
                board_id=board_id(i),
                title=f"soak pin {n}",
                description=f"description {n}",
                link=f"https://example.com/p/{n}",
                alt_text=f"alt {n}",
                media_source=job_pb2.MediaSource(image_url=job_pb2.ImageUrl(url=url)),
            )
        per_account[i] = pin
        reqs.append(
            scheduler_pb2.SchedulePinRequest(
                request_id=f"soak-{n}", account_id=account_id(i), pin=pin
            )
        )
    waves = max(1, scale.kills + 1)
    size = -(-len(reqs) // waves)
    return Plan([reqs[w * size : (w + 1) * size] for w in range(waves)], rejected)


async def schedule_wave(
    port: int,
    wave: list[scheduler_pb2.SchedulePinRequest],
    spread_s: float,
    rng: random.Random,
    acked: dict[str, str],
) -> list[scheduler_pb2.SchedulePinRequest]:
    """Schedule *wave* in batches of 50, due over the next *spread_s* seconds (requests sent
    before keep their time); record acked job ids by request id; return what was not acked.

    The daemon may be killed meanwhile: a batch that fails was not acknowledged (it may still
    have been committed), and is sent again, unchanged, after the restart — its request ids
    must then give back the same jobs."""
    start = datetime.now(UTC) + timedelta(seconds=0.3)
    for req in wave:
        if not req.HasField("scheduled_at"):
            req.scheduled_at.FromDatetime(start + timedelta(seconds=rng.uniform(0, spread_s)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        jobs = scheduler_pb2_grpc.PinSchedulerStub(channel)
        for k in range(0, len(wave), 50):
            try:
                got = await jobs.BatchSchedulePins(
                    scheduler_pb2.BatchSchedulePinsRequest(requests=wave[k : k + 50]), timeout=10
                )
            except grpc.aio.AioRpcError:
                return wave[k:]  # killed mid-wave
            for req, job in zip(wave[k : k + 50], got.jobs, strict=True):
                if acked.setdefault(req.request_id, job.id) != job.id:
                    raise AssertionError(f"request {req.request_id} gave two jobs")
    return []


async def all_jobs(jobs: scheduler_pb2_grpc.PinSchedulerAsyncStub) -> dict[str, job_pb2.Job]:
    out: dict[str, job_pb2.Job] = {}
    token = ""
    while True:
        page = await jobs.ListJobs(scheduler_pb2.ListJobsRequest(page_size=1000, page_token=token))
        out.update((j.id, j) for j in page.jobs)
        token = page.next_page_token
        if not token:
            return out


async def follow_until_settled(
    jobs: scheduler_pb2_grpc.PinSchedulerAsyncStub, ids: set[str], timeout_s: float
) -> dict[str, list[job_pb2.JobEvent]]:
    """Replay the durable event log, then follow it live, until every job in *ids* is settled;
    return every job's events."""
    events: dict[str, list[job_pb2.JobEvent]] = {}
    unsettled = set(ids)
    call = jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=0))
    try:
        async with asyncio.timeout(timeout_s):
            async for message in call:
                for event in message.events:
                    events.setdefault(event.job_id, []).append(event)
                    if event.to_state in SETTLED:
                        unsettled.discard(event.job_id)
                    elif event.job_id in ids:
                        unsettled.add(event.job_id)
                if not unsettled:
                    return events
    except TimeoutError:
        pass
    finally:
        call.cancel()
    return events


async def seed_sandbox(admin: Admin, scale: Scale) -> None:
    """The sandbox's users (one per account, with its board) and the fault rules of *scale*."""
    for i in range(scale.accounts):
        await admin.post(
            "/users",
            {
                "username": account_id(i),
                "boards": [board_id(i)],
                "access_token": f"pina_soak_{i:03d}",
                "refresh_token": f"pinr_soak_{i:03d}",
            },
        )
    for rule in (
        {
            "kind": "lost_response",
            "mode": "hang",
            "hold_s": 3.0,
            "probability": scale.rate_hang,
        },
        {
            "kind": "status_after_create",
            "status": 500,
            "probability": scale.rate_after_create,
        },
        {
            "kind": "late_create",
            "probability": scale.rate_late_create,
            "land_after_min_s": scale.land_after_s[0],
            "land_after_max_s": scale.land_after_s[1],
        },
    ):
        await admin.post("/faults", rule)


async def create_accounts(port: int, scale: Scale) -> None:
    """Create *scale*'s accounts through the daemon on *port*, unpaced."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        accounts = account_pb2_grpc.AccountServiceStub(channel)
        for i in range(scale.accounts):
            await accounts.CreateAccount(
                account_pb2.CreateAccountRequest(
                    account_id=account_id(i),
                    account=account_pb2.Account(
                        access_token=f"pina_soak_{i:03d}",
                        refresh_token=f"pinr_soak_{i:03d}",
                        pacing=account_pb2.Pacing(writes_per_minute=6000),
                    ),
                )
            )


async def run(
    scale: Scale, workdir: Path, *, seed: int = 1, name: str = "", db_url: str = ""
) -> Result:
    """One soak run in *workdir* (the database lives there, unless *db_url* names another, e.g.
    a PostgreSQL database)."""
    rng = random.Random(seed)
    result = Result(scale=name, pins_scheduled=scale.pins)
    started = time.monotonic()
    db: Path | str = db_url or workdir / "soak.db"
    sandbox, base = await start_sandbox(scale, seed)
    daemon: Child | None = None
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(base, session)
            await seed_sandbox(admin, scale)
            daemon, port, _ = await start_daemon(db, base)
            await create_accounts(port, scale)
            work = plan(scale, rng)
            acked: dict[str, str] = {}
            unacked: list[scheduler_pb2.SchedulePinRequest] = []
            for w, wave in enumerate(work.waves):
                scheduling = asyncio.create_task(
                    schedule_wave(port, unacked + wave, scale.spread_s, rng, acked)
                )
                if w < scale.kills:
                    # A random moment: now and then while the wave is still being scheduled
                    # (acknowledged batches must survive), mostly while it is being delivered.
                    early = rng.random() < 0.25
                    await asyncio.sleep(
                        rng.uniform(0.0, 0.05) if early else rng.uniform(0.2, scale.spread_s + 0.3)
                    )
                    await daemon.stop(signal.SIGKILL)
                    unacked = await scheduling
                    result.resent += len(unacked)
                    result.kills += 1
                    daemon, port, recovered = await start_daemon(db, base)
                    result.submitted_at_kill += recovered.get("SUBMITTED", 0)
                else:
                    unacked = await scheduling
            if unacked:
                result.notes.append(f"{len(unacked)} pins could not be scheduled")
            await admin.clear_faults()
            settle_started = time.monotonic()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                jobs = scheduler_pb2_grpc.PinSchedulerStub(channel)
                stored = await all_jobs(jobs)
                events = await follow_until_settled(jobs, set(stored), scale.settle_timeout_s)
                stored = await all_jobs(jobs)
            result.settle_s = time.monotonic() - settle_started
            pins = await admin.pins()
            result.late_creates = sum(
                1 for r in await admin.requests() if r["fault"] == "late_create"
            )
        _check(result, acked, stored, events, pins, work.rejected_titles)
    finally:
        if daemon is not None:
            await daemon.stop()
        await sandbox.stop()
        result.wall_s = time.monotonic() - started
    return result


def _content(pin: job_pb2.Pin | dict[str, Any]) -> tuple[str, ...]:
    if isinstance(pin, dict):
        return tuple(
            str(pin.get(k) or "") for k in ("board_id", "title", "description", "link", "alt_text")
        )
    return (pin.board_id, pin.title, pin.description, pin.link, pin.alt_text)


def _check(
    result: Result,
    acked_by_request: dict[str, str],
    stored: dict[str, job_pb2.Job],
    events: dict[str, list[job_pb2.JobEvent]],
    pins: list[dict[str, Any]],
    rejected_titles: set[str],
) -> None:
    acked = set(acked_by_request.values())
    result.jobs_acked = len(acked)
    result.jobs_in_store = len(stored)
    result.sandbox_pins = len(pins)
    result.lost_jobs = len(acked - set(stored)) + sum(
        1 for i in acked & set(stored) if stored[i].state not in TERMINAL
    )
    result.not_terminal = sum(1 for j in stored.values() if j.state not in TERMINAL)
    delivered = [j for j in stored.values() if j.state == J.STATE_DELIVERED]
    result.delivered = len(delivered)
    failed = [j for j in stored.values() if j.state == J.STATE_PERMANENTLY_FAILED]
    result.permanently_failed = len(failed)
    result.expected_rejections = sum(1 for j in failed if j.pin.title in rejected_titles)
    result.unexpected_permanent_failures = len(failed) - result.expected_rejections
    by_id = {str(p["id"]): p for p in pins}
    owned = {j.pinterest_pin_id for j in delivered}
    result.missing_pins = sum(1 for j in delivered if j.pinterest_pin_id not in by_id)
    result.stray_pins = sum(1 for pin_id in by_id if pin_id not in owned)
    wanted: dict[tuple[str, ...], int] = {}
    for j in delivered:
        wanted[_content(j.pin)] = wanted.get(_content(j.pin), 0) + 1
    have: dict[tuple[str, ...], int] = {}
    for p in pins:
        have[_content(p)] = have.get(_content(p), 0) + 1
    result.duplicate_pins = sum(max(0, n - wanted.get(k, 0)) for k, n in have.items())
    for key in [k for k, n in have.items() if n > wanted.get(k, 0)][:3]:
        made = sorted((str(p.get("created_at")), str(p["id"])) for p in pins if _content(p) == key)
        owners = [
            (j.id, [h.reason for h in events.get(j.id, [])][-6:])
            for j in stored.values()
            if _content(j.pin) == key
        ]
        result.notes.append(f"duplicated {key[1]!r}: pins {made}; jobs {owners}")
    mismatched = [
        j.id
        for j in delivered
        if j.pinterest_pin_id in by_id and _content(by_id[j.pinterest_pin_id]) != _content(j.pin)
    ]
    if mismatched:
        result.notes.append(f"{len(mismatched)} jobs own a pin with other content")
    if len(owned) != len(delivered):
        result.notes.append("two DELIVERED jobs share a pin id")
    late: list[float] = []
    for j in delivered:
        first = next(
            (
                e
                for e in events.get(j.id, ())
                if e.from_state == J.STATE_QUEUED and e.to_state == J.STATE_SUBMITTED
            ),
            None,
        )
        if first is not None:
            sent = first.time.ToDatetime(tzinfo=UTC)
            late.append((sent - j.planned_at.ToDatetime(tzinfo=UTC)).total_seconds())
        history = events.get(j.id, [])
        result.retries += sum(1 for e in history if e.to_state == J.STATE_RETRYING)
        if history and history[-1].reason.startswith("reconciled"):
            result.reconciled_deliveries += 1
    late.sort()
    if late:
        result.lateness_p50_s = round(late[len(late) // 2], 4)
        result.lateness_p99_s = round(late[min(len(late) - 1, int(len(late) * 0.99))], 4)
        result.lateness_max_s = round(late[-1], 4)


def report(result: Result) -> str:
    """Human-readable figures."""
    r = result
    return "\n".join(
        [
            f"chaos soak ({r.scale}): {r.pins_scheduled} pins, {r.jobs_in_store} jobs stored, "
            f"{r.kills} kill -9 ({r.submitted_at_kill} jobs caught SUBMITTED, {r.resent} pins "
            f"re-sent after a kill cut their batch), wall "
            f"{r.wall_s:.1f} s (settle {r.settle_s:.1f} s)",
            f"  delivered {r.delivered}, permanently failed {r.permanently_failed} "
            f"({r.expected_rejections} expected rejections, "
            f"{r.unexpected_permanent_failures} exhausted), not terminal {r.not_terminal}",
            f"  lost jobs {r.lost_jobs}, duplicate pins {r.duplicate_pins}, stray pins "
            f"{r.stray_pins}, missing pins {r.missing_pins}, sandbox pins {r.sandbox_pins}",
            f"  retries {r.retries}, deliveries found by reconciliation {r.reconciled_deliveries}"
            f" ({r.late_creates} creates answered 5xx that landed later)",
            f"  lateness (first send - planned): p50 {r.lateness_p50_s} s, "
            f"p99 {r.lateness_p99_s} s, max {r.lateness_max_s} s",
            *(f"  PROBLEM: {p}" for p in r.problems()),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n", 1)[0] if __doc__ else None
    )
    parser.add_argument(
        "--scale", choices=sorted(SCALES), default=os.environ.get("PINSCHED_SOAK_SCALE", "soak")
    )
    parser.add_argument("--quick", action="store_true", help="the ci scale (< 60 s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    name = "ci" if args.quick else args.scale
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="pinsched-soak-"))
        )
        result = asyncio.run(run(SCALES[name], workdir, seed=args.seed, name=name))
    print(report(result), flush=True)
    print(json.dumps(asdict(result)), flush=True)
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
