"""APScheduler's add rate (the reference of the throughput rows): `add_job` N times on a running
`AsyncIOScheduler` with a `SQLAlchemyJobStore` on SQLite (WAL, synchronous=FULL), in a child
process. Its firing, burst and restart figures are measured beside pinsched's own in
`lateness.py` and `burst.py`.
"""

from __future__ import annotations

from bench import procs
from bench.context import Ctx


async def run(ctx: Ctx) -> None:
    db = ctx.db("aps-add")
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    got = await procs.run_child(
        ["bench.apsched", "add", "--db", str(db), "--jobs", str(ctx.sizes.aps_add_jobs)],
        "aps-add",
        ctx.workdir,
    )
    ctx.shared["aps_add_rate"] = float(got["add_per_s"])
    ctx.details["apscheduler_add"] = got
