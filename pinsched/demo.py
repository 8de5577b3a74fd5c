"""`pinsched demo`: the sandbox, the daemon and a few pins in one process, with the live feed.

Owns the demo script: start the local Pinterest sandbox and a daemon on free loopback
ports, create an account, watch events from sequence 0, schedule a few pins seconds ahead, play
the scenes of `demo_paths` (DST refusal, window spread, 429, cancel), print each event as it
happens, then a summary once every job is terminal; stop everything in reverse order. It talks
to the daemon through the public client, like any application would.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import grpc
from rich.console import Console
from rich.table import Table

from pinsched import demo_paths
from pinsched.cli.render import event_line, short_id, styled_state
from pinsched.config import Config
from pinsched.ops import logs
from pinsched.v1 import account_pb2, job_pb2
from pinsched_client import AsyncClient, format_duration, pin, schedule_request

if TYPE_CHECKING:
    from pinsched.sandbox import Sandbox

ACCOUNT: Final = "demo"
BOARD: Final = "1001"
TIMEOUT_S: Final = 120.0  # give up waiting for the jobs after this long
END_STATES: Final = frozenset(  # FAILED is not terminal, but it waits for a human
    {
        job_pb2.Job.STATE_DELIVERED,
        job_pb2.Job.STATE_PERMANENTLY_FAILED,
        job_pb2.Job.STATE_FAILED,
        job_pb2.Job.STATE_CANCELLED,
    }
)


async def run_demo(*, pins: int = 5, keep_db: str | None = None) -> None:
    """Run the demo with *pins* pins; keep the SQLite database at *keep_db* if given.

    *keep_db* must not exist yet: the sandbox starts empty on every run, so a database from an
    earlier run would hold jobs and pin ids this sandbox never saw. Raises ValueError then.
    """
    if keep_db is not None and await asyncio.to_thread(Path(keep_db).exists):
        raise ValueError(f"--keep-db {keep_db}: the file exists; give a new path")
    from pinsched.app import Daemon
    from pinsched.sandbox import Sandbox

    console = Console(highlight=False)
    logs.configure("warning", "console")
    with contextlib.ExitStack() as stack:
        if keep_db is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="pinsched-demo-"))
            db_path = str(Path(tmp) / "demo.db")
        else:
            db_path = keep_db
        sandbox = Sandbox()
        base = await sandbox.start()
        try:
            sandbox.add_user(
                ACCOUNT, access_token="pina_demo", refresh_token="pinr_demo", board_ids=[BOARD]
            )
            sandbox.set_client("demo-client", "demo-secret")
            config = Config(
                listen="127.0.0.1:0",
                http_listen="127.0.0.1:0",
                db_path=db_path,
                pinterest_api_base=base,
                pinterest_client_id="demo-client",
                pinterest_client_secret="demo-secret",
                log_level="warning",
            )
            daemon = Daemon(config)
            await daemon.start()
            try:
                target = f"127.0.0.1:{daemon.port}"
                console.print(
                    f"sandbox  {base}\ndaemon   {target}\ndatabase {db_path}", style="dim"
                )
                async with AsyncClient(target) as client:
                    await _scenario(client, console, pins, sandbox)
            finally:
                await daemon.stop()
        finally:
            await sandbox.stop()


async def _scenario(client: AsyncClient, console: Console, pins: int, sandbox: Sandbox) -> None:
    """Create the account, schedule the pins, play the other scenes (`demo_paths`), follow every
    job to its end and summarise."""
    account = account_pb2.Account(
        display_name="Demo", access_token="pina_demo", refresh_token="pinr_demo"
    )
    try:
        await client.create_account(ACCOUNT, account)
    except grpc.aio.AioRpcError as err:  # a kept database from an earlier run
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        account.id = ACCOUNT
        await client.update_account(account, ["access_token", "refresh_token"])
    states: dict[str, job_pb2.Job.State.ValueType] = {}
    ours: set[str] = set()
    changed = asyncio.Event()
    started = datetime.now(UTC) - timedelta(seconds=1)

    async def follow() -> None:
        async for event in client.watch(ACCOUNT, since_sequence=0):
            if event.time.ToDatetime(tzinfo=UTC) >= started:  # skip a kept database's past
                console.print(event_line(event, short_ids=True))
            states[event.job_id] = event.to_state
            changed.set()

    watcher = asyncio.create_task(follow())
    try:
        now = datetime.now(UTC)
        for n in range(1, pins + 1):
            request = schedule_request(
                ACCOUNT,
                pin(
                    BOARD,
                    title=f"Demo pin #{n}",
                    description="Scheduled by pinsched demo",
                    link="https://example.com/pinsched",
                    alt_text=f"Picture number {n}",
                    image_url=f"https://picsum.photos/seed/{n}/1000/1500",
                ),
                scheduled_at=now + timedelta(seconds=1 + n),
            )
            ours.add((await client.schedule_pin(request)).id)
        ours |= await demo_paths.play(client, sandbox, console, ACCOUNT, BOARD)
        async with asyncio.timeout(TIMEOUT_S):
            while not all(states.get(job_id) in END_STATES for job_id in ours):
                changed.clear()
                await changed.wait()
    except TimeoutError:
        console.print(f"gave up waiting after {TIMEOUT_S:g}s", style="bold red")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    jobs = [await client.get_job(job_id) for job_id in ours]
    _summary(console, sorted(jobs, key=lambda j: j.pin.title))


def _late_by(job: job_pb2.Job) -> str:
    if job.HasField("late_by"):
        return format_duration(job.late_by)
    if job.HasField("delivered_time") and job.HasField("planned_at"):
        delivered = job.delivered_time.ToDatetime(tzinfo=UTC)
        return format_duration(delivered - job.planned_at.ToDatetime(tzinfo=UTC))
    return "-"


def _summary(console: Console, jobs: list[job_pb2.Job]) -> None:
    table = Table("job", "title", "state", "pinterest pin", "late by", box=None)
    for job in jobs:
        state = styled_state(job.state)
        pin_id = job.pinterest_pin_id or "-"
        table.add_row(short_id(job.id), job.pin.title, state, pin_id, _late_by(job))
    console.print()
    console.print(table)
    delivered = sum(job.state == job_pb2.Job.STATE_DELIVERED for job in jobs)
    console.print(f"{delivered} of {len(jobs)} pins delivered", style="bold")
