"""Chaos across three daemons on one PostgreSQL database: SIGKILLs and SIGSTOPs longer than the
account lease, under Pinterest faults; counts what was lost or published twice.

Three `pinsched serve` processes share one database (`pinsched.cluster`: each account is
published by the daemon holding its lease) and one sandbox with the soak's faults (5xx, 429,
lost and hung answers after the pin was created, creates that land after their 503, reads that
lag writes; `bench/soak.py`). Pins are scheduled in waves through a random running daemon. While
the waves are delivered, random daemons are SIGKILLed (and started again at once) and others are
SIGSTOPped for longer than the lease, then SIGCONTed: their accounts move to the others, which
reconcile the SUBMITTED jobs first; the woken daemon must send and commit nothing for them
(fencing). Then the faults are cleared and the run waits until every job is settled. Checked as
in the soak (`bench.soak._check`): lost jobs, duplicate / stray / missing pins, jobs not
terminal.

`python -m bench.cluster_chaos --db postgresql://… [--scale ci|full] [--seed N]` prints the
figures and one JSON object; `tests/cluster/test_chaos.py` runs it on the test session's
throwaway PostgreSQL (`ci` scale in CI, `full` with `PINSCHED_SOAK_SCALE=soak` or `long`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import grpc

from bench.soak import (
    ROOT,
    TERMINAL,
    Admin,
    Child,
    Result,
    Scale,
    _check,
    all_jobs,
    create_accounts,
    daemon_env,
    plan,
    report,
    schedule_wave,
    seed_sandbox,
    start_sandbox,
)
from pinsched.v1 import job_pb2, scheduler_pb2, scheduler_pb2_grpc


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterScale:
    """How big a run is: the soak's scale (pins, accounts, faults; its `kills` is the number of
    waves less one) and the cluster's own chaos."""

    soak: Scale
    daemons: int = 3
    kills: int = 10
    stops: int = 2
    lease_s: float = 4.0
    stop_s: float = 7.0  # longer than the lease: the others take the accounts over


SCALES: dict[str, ClusterScale] = {
    "ci": ClusterScale(
        soak=Scale(pins=120, accounts=10, kills=2, settle_timeout_s=60.0, rate_late_create=0.1),
        kills=3,
        stops=1,
        lease_s=3.0,
        stop_s=4.5,
    ),
    "full": ClusterScale(
        soak=Scale(pins=320, accounts=10, kills=5, spread_s=4.0, settle_timeout_s=120.0),
        kills=12,
        stops=2,
    ),
}


async def _spawn(args: Sequence[str], name: str, cwd: Path, env: dict[str, str]) -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Child(proc, name)


async def start_daemon(db: str, base_url: str, lease_s: float, workdir: Path) -> tuple[Child, int]:
    """`pinsched serve` on *db* as in the soak, with the cluster's lease; its process and port."""
    child = await _spawn(
        [
            "pinsched",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--db",
            db,
            "--pinterest-api-base",
            base_url,
        ],
        "daemon",
        workdir,
        {
            **daemon_env(),
            "PINSCHED_PREFLIGHT_LEAD_TIME_S": "0",
            "PINSCHED_CLUSTER": "true",
            "PINSCHED_CLUSTER_LEASE_S": str(lease_s),
        },
    )
    ready = json.loads(await child.wait_line('"pinsched_ready"', timeout_s=60))
    return child, int(ready["port"])


@dataclass(slots=True)
class Node:
    child: Child
    port: int
    stopped: bool = False


async def _histories(port: int, ids: Sequence[str]) -> dict[str, list[job_pb2.JobEvent]]:
    """Every job's events, from its history (any daemon reads every daemon's commits)."""
    out: dict[str, list[job_pb2.JobEvent]] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        jobs = scheduler_pb2_grpc.PinSchedulerStub(channel)
        for job_id in ids:
            job = await jobs.GetJob(
                scheduler_pb2.GetJobRequest(job_id=job_id, view=scheduler_pb2.JOB_VIEW_FULL)
            )
            out[job_id] = [
                job_pb2.JobEvent(
                    sequence=h.sequence,
                    job_id=job_id,
                    from_state=h.from_state,
                    to_state=h.to_state,
                    time=h.time,
                    reason=h.reason,
                )
                for h in job.history
            ]
    return out


async def _settle(port: int, timeout_s: float) -> dict[str, job_pb2.Job]:
    """Read the jobs every half second until all are terminal (or *timeout_s*)."""
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        jobs = scheduler_pb2_grpc.PinSchedulerStub(channel)
        while True:
            stored = await all_jobs(jobs)
            if all(j.state in TERMINAL for j in stored.values()) or time.monotonic() > deadline:
                return stored
            await asyncio.sleep(0.5)


async def run(
    cs: ClusterScale, db_url: str, workdir: Path, *, seed: int = 1, name: str = ""
) -> tuple[Result, int]:
    """One run on the PostgreSQL database *db_url* (fresh), the daemons working in *workdir*:
    what was found, and how many SIGSTOPs there were (the kills are `Result.kills`)."""
    scale = cs.soak
    rng = random.Random(seed)
    result = Result(scale=f"cluster-{name}", pins_scheduled=scale.pins)
    started = time.monotonic()
    sandbox, base = await start_sandbox(scale, seed)
    nodes: list[Node] = []
    stops = 0
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(base, session)
            await seed_sandbox(admin, scale)
            for _ in range(cs.daemons):
                nodes.append(Node(*await start_daemon(db_url, base, cs.lease_s, workdir)))
            await create_accounts(nodes[0].port, scale)
            work = plan(scale, rng)
            chaos = ["kill"] * cs.kills + ["stop"] * cs.stops
            rng.shuffle(chaos)
            per_wave = [chaos[w :: len(work.waves)] for w in range(len(work.waves))]
            acked: dict[str, str] = {}
            unacked: list[scheduler_pb2.SchedulePinRequest] = []
            for w, wave in enumerate(work.waves):
                target = rng.choice([n for n in nodes if not n.stopped])
                scheduling = asyncio.create_task(
                    schedule_wave(target.port, unacked + wave, scale.spread_s, rng, acked)
                )
                for action in per_wave[w]:
                    await asyncio.sleep(rng.uniform(0.1, scale.spread_s / 2))
                    if action == "kill":
                        victim = rng.randrange(len(nodes))
                        await nodes[victim].child.stop(signal.SIGKILL)
                        nodes[victim] = Node(*await start_daemon(db_url, base, cs.lease_s, workdir))
                        result.kills += 1
                    else:
                        others = [n for n in nodes if n is not target]
                        victim_node = rng.choice(others)
                        victim_node.stopped = True
                        victim_node.child.proc.send_signal(signal.SIGSTOP)
                        await asyncio.sleep(cs.stop_s)
                        victim_node.child.proc.send_signal(signal.SIGCONT)
                        victim_node.stopped = False
                        stops += 1
                unacked = await scheduling
            if unacked:
                result.notes.append(f"{len(unacked)} pins could not be scheduled")
            await admin.clear_faults()
            settle_started = time.monotonic()
            stored = await _settle(nodes[0].port, scale.settle_timeout_s)
            result.settle_s = time.monotonic() - settle_started
            events = await _histories(nodes[0].port, sorted(stored))
            pins = await admin.pins()
            result.late_creates = sum(
                1 for r in await admin.requests() if r["fault"] == "late_create"
            )
        _check(result, acked, stored, events, pins, work.rejected_titles)
    finally:
        for node in nodes:
            if node.child.proc.returncode is None:
                node.child.proc.send_signal(signal.SIGCONT)
            await node.child.stop()
        await sandbox.stop()
        result.wall_s = time.monotonic() - started
    return result, stops


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster_chaos",
        description=__doc__.split("\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("--db", required=True, help="a fresh postgresql:// database")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    result, stops = asyncio.run(
        run(SCALES[args.scale], args.db, args.workdir, seed=args.seed, name=args.scale)
    )
    print(report(result), flush=True)
    print(f"  {stops} SIGSTOPs longer than the lease", flush=True)
    print(json.dumps(asdict(result)), flush=True)
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
