"""Restart → ready of `pinsched serve` against an empty database, 10k and 1M pending jobs.

    python -m bench.restart [--rounds 5] [--sizes 10000,1000000] [--workdir DIR]

Seeds each database once (`bench.seed`, in a child process; a million jobs take a few minutes),
starts the daemon on each in turn for every round (exec → its `pinsched_ready` log line, by the
line's own timestamp: `bench.procs.start_daemon`), stops it with SIGTERM, and prints the median
and every start. The first start after seeding migrates the database if it is older; that start
is not counted. Nothing else runs meanwhile: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from bench import procs

NOWHERE = "http://127.0.0.1:9/v5"  # start-up does not call Pinterest before it is ready


async def _seed(workdir: Path, jobs: int) -> Path:
    db = workdir / f"pending-{jobs}.db"
    if not db.exists():
        seeded = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.seed",
            "--db",
            str(db),
            "--jobs",
            str(max(jobs, 1)),
            "--token",
            "pina_bench",
        )
        if await seeded.wait() != 0:
            raise SystemExit(f"seeding {db} failed")
    return db


async def _ready_s(workdir: Path, db: Path, name: str) -> float:
    proc, _ = await procs.start_daemon(workdir, db, NOWHERE, name=name)
    try:
        return float(proc.info["ready_s"])
    finally:
        await proc.stop(signal.SIGTERM)


async def run(rounds: int, sizes: list[int], workdir: Path) -> dict[int, list[float]]:
    dbs = {n: await _seed(workdir, n) for n in [0, *sizes]}
    for n, db in dbs.items():
        await _ready_s(workdir, db, f"warm-{n}")  # migrations, page cache: not counted
    times: dict[int, list[float]] = {n: [] for n in dbs}
    for r in range(rounds):
        for n, db in dbs.items():
            times[n].append(await _ready_s(workdir, db, f"start-{n}-{r}"))
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", default="10000,1000000", help="pending jobs, comma-separated")
    p.add_argument("--workdir", default=None, help="keeps the seeded databases between runs")
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",") if s]
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="pinsched-restart-"))
    workdir.mkdir(parents=True, exist_ok=True)
    times = asyncio.run(run(a.rounds, sizes, workdir))
    for n, values in times.items():
        label = "1 job (≈ empty)" if n == 0 else f"{n:,} pending"
        shown = " ".join(f"{v:.3f}" for v in values)
        print(f"{label:>18}: median {statistics.median(values):.3f} s  ({shown})")


if __name__ == "__main__":
    main()
