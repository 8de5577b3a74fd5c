"""Several daemons on one PostgreSQL: SchedulePin throughput with 1, 2 and 3 daemon processes
sharing one database (the load spread evenly over their ports), beside one daemon on SQLite,
and failover time: `kill -9` of the daemon that owns accounts with pins due, until the first pin
of one of those accounts reaches the sandbox from another daemon.

* Throughput: for each total of calls in flight (16 and 64; `--quick`: 64), one `bench.loadgen`
  process per daemon, each with its share of the calls, all at once; calls/s is their sum. The
  SQLite reference is one daemon and one load generator with the same total. Each daemon count
  gets a fresh database on a throwaway local cluster with fsync on (`tests.backends.Cluster`).
* Failover: three daemons, `FAILOVER_ACCOUNTS` accounts, each its own sandbox user, so that a
  create request names its account. Once every account's lease is held and stable (read from
  the database, `store.cluster_view`), the owner of the first account is chosen; its accounts
  get pins due every `PIN_EVERY_S` from just before the kill for a minute. Failover time = the
  sandbox's arrival time of the first create for one of those accounts after the kill minus
  the kill. A member's id is learnt from the `members` table as each daemon starts. Done
  `FAILOVER_ROUNDS` times (`--quick`: once), each on a fresh database; the median is the row.

Skipped with a note when PostgreSQL (initdb, pg_ctl) is not installed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bench import procs
from bench.context import FREE, Ctx, pin_request, schedule_all
from bench.report import Row
from pinsched.store.cluster_view import ClusterView, read_cluster
from pinsched.store.schema import MIGRATIONS
from pinsched.v1 import account_pb2
from pinsched_client import AsyncClient

FAILOVER_ACCOUNTS: Final = 9
PIN_EVERY_S: Final = 0.25
FAILOVER_TIMEOUT_S: Final = 120.0
FAILOVER_ROUNDS: Final = 3  # each on a fresh database with three fresh daemons (--quick: 1)


async def _view(db: str) -> ClusterView:
    return await read_cluster(db, len(MIGRATIONS), takeovers=50, timeout_s=10)


async def _start_daemons(
    ctx: Ctx, db: str, count: int, tag: str
) -> list[tuple[procs.Proc, int, str]]:
    """Start *count* daemons on *db* one after another: (process, port, member id or "")."""
    out: list[tuple[procs.Proc, int, str]] = []
    seen: set[str] = set()
    for i in range(count):
        shared = ("--cluster",) if db.startswith("postgresql") else ()
        proc, port = await procs.start_daemon(
            ctx.workdir, db, ctx.sandbox_url, *shared, name=f"{tag}-{i}"
        )
        member = ""
        if db.startswith("postgresql"):
            deadline = time.monotonic() + 30
            while not member and time.monotonic() < deadline:
                fresh = {m.member_id for m in (await _view(db)).members} - seen
                member = min(fresh) if fresh else ""
                if not member:
                    await asyncio.sleep(0.1)
            seen.add(member)
        out.append((proc, port, member))
    return out


async def _stop(daemons: list[tuple[procs.Proc, int, str]]) -> None:
    await asyncio.gather(*(proc.stop() for proc, _, _ in daemons))


async def _load(ctx: Ctx, ports: list[int], total: int) -> dict[str, Any]:
    """*total* SchedulePin calls in flight, spread over *ports*, one load generator each."""
    shares = [total // len(ports) + (1 if i < total % len(ports) else 0) for i in range(len(ports))]
    runs = await asyncio.gather(
        *(
            procs.run_child(
                [
                    "bench.loadgen",
                    "--target",
                    f"127.0.0.1:{port}",
                    "--account",
                    "bench",
                    "--concurrency",
                    str(share),
                    "--duration",
                    str(ctx.sizes.throughput_s),
                    "--warmup",
                    "0.3" if ctx.quick else "0.5",
                ],
                "loadgen",
                ctx.workdir,
            )
            for port, share in zip(ports, shares, strict=True)
        )
    )
    lat = [r["latency_ms"] for r in runs]
    return {
        "calls_per_s": sum(float(r["calls_per_s"]) for r in runs),
        "calls_all": sum(int(r["calls_all"]) for r in runs),
        "errors": sum(int(r["errors"]) for r in runs),
        "first_error": next((r["first_error"] for r in runs if r["first_error"]), None),
        "p50_ms": max(float(x["p50"]) for x in lat),
        "p99_ms": max(float(x["p99"]) for x in lat),
        "per_daemon": runs,
    }


async def _rates(ctx: Ctx, db: str, count: int, tag: str) -> dict[int, dict[str, Any]]:
    daemons = await _start_daemons(ctx, db, count, tag)
    try:
        async with AsyncClient(f"127.0.0.1:{daemons[0][1]}") as client:
            await client.create_account(
                "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
            )
        out: dict[int, dict[str, Any]] = {}
        for total in (64,) if ctx.quick else (16, 64):
            cpu0 = sum(p.cpu_seconds() for p, _, _ in daemons)
            got = await _load(ctx, [port for _, port, _ in daemons], total)
            got["daemon_cpu_s"] = sum(p.cpu_seconds() for p, _, _ in daemons) - cpu0
            out[total] = got
        return out
    finally:
        await _stop(daemons)


def _admin(sandbox_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the sandbox's admin API (blocking; run it in a thread)."""
    url = sandbox_url.removesuffix("/v5") + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


async def _stable_owners(db: str, accounts: list[str], timeout_s: float) -> dict[str, str]:
    """account → owner once every account's lease is held and two reads a second apart agree."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        now_us = int(time.time() * 1e6)
        view = await _view(db)
        owners = {x.account_id: x.owner for x in view.leases if x.expires_at_us > now_us}
        if set(accounts) <= set(owners) and owners == last:
            return owners
        last = owners
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the accounts' leases were not all held and stable in {timeout_s:.0f} s")


async def _failover(ctx: Ctx, db: str, round_no: int) -> dict[str, Any]:
    users = [f"fo{round_no}-{i}" for i in range(FAILOVER_ACCOUNTS)]
    boards = {user: str(5000 + 100 * round_no + i) for i, user in enumerate(users)}
    for user in users:
        body = {"username": user, "access_token": f"pina_{user}", "boards": [boards[user]]}
        await asyncio.to_thread(_admin, ctx.sandbox_url, "/_admin/users", body)
    daemons = await _start_daemons(ctx, db, 3, f"failover{round_no}")
    try:
        async with AsyncClient(f"127.0.0.1:{daemons[0][1]}") as client:
            for user in users:
                await client.create_account(
                    user, account_pb2.Account(access_token=f"pina_{user}", pacing=FREE)
                )
        owners = await _stable_owners(db, users, 90)
        victim = owners[users[0]]
        moved = sorted(u for u, o in owners.items() if o == victim)
        [(proc, _, _)] = [d for d in daemons if d[2] == victim]
        other = next(d for d in daemons if d[2] != victim)
        start = datetime.now(UTC) + timedelta(seconds=2)
        requests = []
        for user in moved:
            board = boards[user]
            for k in range(int(60 / PIN_EVERY_S)):
                req = pin_request(user, start + timedelta(seconds=k * PIN_EVERY_S))
                req.pin.board_id = board
                requests.append(req)
        async with AsyncClient(f"127.0.0.1:{other[1]}") as client:
            await schedule_all(client, requests)
        await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 1.0))
        killed_at = time.time()
        proc.popen.send_signal(signal.SIGKILL)
        await proc.wait_exit(10)
        first, sent_before = None, 0
        deadline = time.monotonic() + FAILOVER_TIMEOUT_S
        while first is None and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            items = (await asyncio.to_thread(_admin, ctx.sandbox_url, "/_admin/requests"))["items"]
            creates = [
                datetime.fromisoformat(r["time"]).timestamp()
                for r in items
                if r["method"] == "POST"
                and r["path"] == "/v5/pins"
                and r["username"] in moved
                and r["status"] == 201
            ]
            sent_before = sum(1 for t in creates if t <= killed_at)
            after = [t for t in creates if t > killed_at]
            first = min(after) if after else None
        view = await _view(db)
        taken = [t for t in view.takeovers if t.account_id in moved and t.previous_owner == victim]
        return {
            "failover_s": None if first is None else first - killed_at,
            "moved_accounts": moved,
            "accounts": FAILOVER_ACCOUNTS,
            "sent_by_victim_before_kill": sent_before,
            "takeovers_recorded": len(taken),
            "first_takeover_s": (min(t.at_us for t in taken) / 1e6 - killed_at if taken else None),
        }
    finally:
        await _stop(daemons)


async def run(ctx: Ctx) -> None:
    from tests.backends import Cluster, pg_bin

    bindir = pg_bin()
    if bindir is None:
        ctx.notes.append("cluster: skipped (initdb/pg_ctl not installed)")
        return
    cluster = Cluster(bindir, durable=True)
    await asyncio.to_thread(cluster.start)
    try:
        lite = await _rates(ctx, str(ctx.db("cluster-reference")), 1, "daemon-sqlite")
        post: dict[int, dict[int, dict[str, Any]]] = {}
        for count in (1, 2, 3):
            name = await asyncio.to_thread(cluster.create_database)
            post[count] = await _rates(ctx, cluster.url(name), count, f"daemon-pg{count}")
        rounds = []
        for i in range(1 if ctx.quick else FAILOVER_ROUNDS):
            name = await asyncio.to_thread(cluster.create_database)
            rounds.append(await _failover(ctx, cluster.url(name), i))
    finally:
        await asyncio.to_thread(cluster.stop)
    ctx.details["cluster"] = {"sqlite": lite, "postgresql": post, "failover": rounds}
    for total, ref in lite.items():
        for count, rates in post.items():
            got = rates[total]
            rate, base = float(got["calls_per_s"]), float(ref["calls_per_s"])
            per_call_us = got["daemon_cpu_s"] / max(1, int(got["calls_all"])) * 1e6
            ctx.add(
                Row(
                    "cluster",
                    f"SchedulePin, {count} daemon{'s' if count > 1 else ''} on one PostgreSQL, "
                    f"{total} in flight",
                    rate,
                    "calls/s",
                    reference=base,
                    reference_name="1 daemon on SQLite",
                    ratio=rate / base if base else None,
                    notes=(
                        f"ack p50 {got['p50_ms']:.2f} / p99 {got['p99_ms']:.2f} ms (SQLite "
                        f"{ref['p50_ms']:.2f}/{ref['p99_ms']:.2f}); daemons' CPU "
                        f"{per_call_us:.0f} µs/call; local cluster, fsync on"
                        + (
                            f"; errors {got['errors']}: {got['first_error']}"
                            if got["errors"]
                            else ""
                        )
                    ),
                )
            )
    times = sorted(r["failover_s"] for r in rounds if r["failover_s"] is not None)
    each = ", ".join("-" if r["failover_s"] is None else f"{r['failover_s']:.2f}" for r in rounds)
    moved = "/".join(str(len(r["moved_accounts"])) for r in rounds)
    ctx.add(
        Row(
            "cluster",
            "failover: kill -9 of an owner → first pin of a moved account sent (median)",
            times[len(times) // 2] if times else None,
            "s",
            notes=(
                f"rounds: {each} s; {moved} of {FAILOVER_ACCOUNTS} accounts moved; pins due every "
                f"{PIN_EVERY_S} s; the owner had sent "
                f"{'/'.join(str(r['sent_by_victim_before_kill']) for r in rounds)} before the "
                f"kill; first takeover recorded after "
                + "/".join(
                    "-" if r["first_takeover_s"] is None else f"{r['first_takeover_s']:.2f}"
                    for r in rounds
                )
                + " s; lease 10 s"
                + ("" if len(times) == len(rounds) else f"; no pin in {FAILOVER_TIMEOUT_S:.0f} s")
            ),
        )
    )
