"""The scenes `pinsched demo` plays after the happy path: what pinsched is for.

Owns four short scenes against the demo's sandbox and daemon: a wall-clock time inside the next
daylight-saving gap refused (and the message the CLI would print), three pins sharing a delivery
window spread across it, a 429 from Pinterest retried after its Retry-After, and a pin cancelled
before it is due. Each scene prints one heading line; the demo's live feed shows the events.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import grpc
from rich.console import Console

from pinsched.cli.errors import error_lines
from pinsched.sandbox import Sandbox
from pinsched.sandbox.faults import FaultRule
from pinsched.v1 import job_pb2
from pinsched_client import AsyncClient, error_details, local_time, pin, schedule_request
from pinsched_client import format_timestamp as when

ZONE: Final = "America/New_York"
IMAGE: Final = "https://picsum.photos/seed/{}/1000/1500"


def next_gap(zone: str, today: date, *, days: int = 400) -> datetime | None:
    """02:30 on the next day after *today* on which that wall time does not exist in *zone*."""
    tz = ZoneInfo(zone)
    for n in range(1, days):
        day = today + timedelta(days=n)
        aware = datetime(day.year, day.month, day.day, 2, 30, tzinfo=tz)
        if aware.astimezone(UTC).astimezone(tz).time() != aware.time():  # skipped: a gap
            return aware.replace(tzinfo=None)
    return None


async def play(
    client: AsyncClient, sandbox: Sandbox, console: Console, account: str, board: str
) -> set[str]:
    """Play the scenes; return the ids of the jobs they created (to follow to their end)."""
    ours: set[str] = set()
    now = datetime.now(UTC)

    def card(title: str, n: int) -> job_pb2.Pin:
        return pin(board, title=title, image_url=IMAGE.format(n), link="https://example.com/p")

    gap = next_gap(ZONE, now.date())
    if gap is not None:
        console.print(f"\n[bold]a time that does not exist[/] {gap:%Y-%m-%dT%H:%M} in {ZONE}:")
        request = schedule_request(
            account, card("DST gap", 90), local=local_time(gap, time_zone=ZONE)
        )
        try:
            await client.schedule_pin(request)
        except grpc.aio.AioRpcError as err:
            for line in error_lines(error_details(err)):
                console.print(f"  {line}", style="yellow", highlight=False)

    console.print("\n[bold]three pins sharing a 4-second window[/] are spread across it:")
    for n in range(3):
        request = schedule_request(
            account,
            card(f"Window pin #{n + 1}", 91 + n),
            scheduled_at=now + timedelta(seconds=2),
            window=timedelta(seconds=4),
        )
        job = await client.schedule_pin(request)
        ours.add(job.id)
    for job_id in sorted(ours):
        job = await client.get_job(job_id)
        console.print(f"  {job.pin.title}: planned at {when(job.planned_at)}")

    console.print("\n[bold]Pinterest answers the next create with a 429[/] (Retry-After: 1s):")
    sandbox.add_fault(FaultRule(kind="rate_limit", retry_after_s=1, times=1))

    console.print("\n[bold]a pin cancelled before it is due[/]:")
    request = schedule_request(
        account, card("Cancelled pin", 95), scheduled_at=now + timedelta(minutes=10)
    )
    job = await client.schedule_pin(request)
    cancelled = await client.cancel_job(job.id)
    ours.add(cancelled.id)
    console.print("")
    return ours
