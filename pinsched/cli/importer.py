"""`pinsched import FILE`: bulk import of pins from CSV or JSON Lines, a result per row.

Unlike BatchSchedulePins the import is not atomic: every row ends `created`, `existing` (its
`request_id` was already used with the same content) or `failed: <field>: <reason>`, and a bad
row never fails its neighbours. A row without `request_id` gets one derived from its content
(`import-<sha256>`), so running the same file twice creates nothing the second time.

It streams: rows are read lazily, sent as BatchSchedulePins chunks (a few in flight), and their
results printed in row order as chunks complete, so memory stays flat whatever the file size.
When a chunk is refused, the rows its error names (`requests[3].pin.title`) fail and the rest is
sent again; an error that names no row splits the chunk in halves until the row at fault is
alone. Each account is looked up once first, so the rows of an unknown account (or of one
without a posting schedule, for `next_free_slot` rows) fail without sending them.

Columns (CSV header, or JSON keys): see `cli.import_rows.COLUMNS`. Exactly one time per row:
`scheduled_at` (ISO 8601 with Z or an offset), `local_time` + `time_zone`, or `next_free_slot`
(`true`/`now`, or an ISO instant: not before then). Exactly one media per row: `image_url`, or
`video_url` (a video the daemon stages on Pinterest ahead of time) with `cover_image_url` (else the
first frame is the cover).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
from google.protobuf import timestamp_pb2

from pinsched.cli.import_rows import RowError, Source, build_request
from pinsched.v1 import scheduler_pb2
from pinsched_client import (
    AsyncClient,
    error_details,
)

CHUNK: Final = 500
IN_FLIGHT: Final = 4
_ITEM: Final = re.compile(r"requests\[(\d+)\]\.?")


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one row."""

    row: int  # 1 = the first record (after the CSV header; the first JSON line)
    status: str  # created | existing | failed
    job_id: str = ""
    planned_at: str = ""
    error: str = ""  # "field: reason" when failed

    def to_json(self) -> str:
        return json.dumps(
            {k: v for k, v in dataclasses.asdict(self).items() if v != ""}, separators=(",", ":")
        )

    def line(self) -> str:
        what = f"failed: {self.error}" if self.status == "failed" else self.status
        return f"{self.row:>7}  {self.job_id or '-':<26}  {self.planned_at or '-':<24}  {what}"


def _failure(err: grpc.aio.AioRpcError, req: scheduler_pb2.SchedulePinRequest) -> str:
    """`field: reason` for a call that failed without naming a field."""
    d = error_details(err)
    if d.code == grpc.StatusCode.NOT_FOUND:
        return f"account: {d.message}"
    if d.code == grpc.StatusCode.FAILED_PRECONDITION and req.HasField("next_free_slot"):
        return f"next_free_slot: {d.message}"
    if d.code == grpc.StatusCode.ALREADY_EXISTS:
        return f"request_id: {_ITEM.sub('', d.message)}"
    return f"{d.code.name.lower()}: {d.message}"


Item = tuple[int, scheduler_pb2.SchedulePinRequest]


def _rfc3339(ts: timestamp_pb2.Timestamp) -> str:
    frac = f".{ts.nanos // 1000:06d}" if ts.nanos else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts.seconds)) + frac + "Z"


async def send_chunk(client: AsyncClient, items: list[Item]) -> dict[int, Result]:
    """Schedule *items*; a result for each, whatever the others do."""
    out: dict[int, Result] = {}
    todo = deque([items])
    while todo:
        part = todo.popleft()
        if not part:
            continue
        try:
            resp = await client.batch_schedule_pins([r for _, r in part])
        except grpc.aio.AioRpcError as err:
            named = _named_rows(err, part, out)
            if named:
                todo.appendleft([it for i, it in enumerate(part) if i not in named])
            elif len(part) == 1:
                n, req = part[0]
                out[n] = Result(n, "failed", error=_failure(err, req))
            else:
                half = len(part) // 2
                todo.extendleft([part[half:], part[:half]])
            continue
        for (n, _), job, created in zip(part, resp.jobs, resp.created, strict=True):
            out[n] = Result(
                n, "created" if created else "existing", job.id, _rfc3339(job.planned_at)
            )
    return out


def _named_rows(err: grpc.aio.AioRpcError, part: list[Item], out: dict[int, Result]) -> set[int]:
    """Mark the rows *err* names (`requests[i].…`) failed; their indexes in *part*."""
    d = error_details(err)
    named: dict[int, list[str]] = {}
    for v in d.field_violations:
        m = _ITEM.match(v.field)
        if m and int(m.group(1)) < len(part):
            named.setdefault(int(m.group(1)), []).append(f"{v.field[m.end() :]}: {v.description}")
    m = _ITEM.search(d.message) if not named else None
    if m and int(m.group(1)) < len(part) and d.code == grpc.StatusCode.ALREADY_EXISTS:
        named[int(m.group(1))] = [f"request_id: {_ITEM.sub('', d.message)}"]
    for i, problems in named.items():
        n = part[i][0]
        out[n] = Result(n, "failed", error="; ".join(problems))
    return set(named)


async def run(
    client: AsyncClient,
    records: Iterable[tuple[int, dict[str, Any] | RowError]],
    emit: Callable[[Result], None],
    *,
    chunk: int = CHUNK,
    in_flight: int = IN_FLIGHT,
) -> None:
    """Import *records*, calling *emit* with each row's result, in row order."""
    pending: deque[tuple[list[Result | int], Awaitable[dict[int, Result]]]] = deque()

    async def drain(limit: int) -> None:
        while len(pending) > limit:
            order, task = pending.popleft()
            got = await task
            for r in order:
                emit(r if isinstance(r, Result) else got[r])

    accounts: dict[str, str] = {}  # account id → why its rows fail ("" = fine)

    async def account_problem(req: scheduler_pb2.SchedulePinRequest) -> str:
        """Checked once per account, so that its rows fail alone instead of splitting chunks."""
        if req.account_id not in accounts:
            try:
                acct = await client.get_account(req.account_id)
                accounts[req.account_id] = (
                    ""
                    if acct.HasField("posting_schedule")
                    else (
                        f"next_free_slot: account {req.account_id!r} has no posting schedule: set "
                        "one with `pinsched accounts update --posting-schedule`"
                    )
                )
            except grpc.aio.AioRpcError as err:
                accounts[req.account_id] = (
                    f"account: {error_details(err).message}"
                    if err.code() == grpc.StatusCode.NOT_FOUND
                    else ""
                )
        problem = accounts[req.account_id]
        return problem if problem.startswith("account") or req.HasField("next_free_slot") else ""

    order: list[Result | int] = []
    items: list[Item] = []
    for n, fields in records:
        if isinstance(fields, RowError):
            order.append(Result(n, "failed", error=str(fields)))
        else:
            try:
                req = build_request(fields)
            except RowError as e:
                order.append(Result(n, "failed", error=str(e)))
            else:
                problem = await account_problem(req)
                if problem:
                    order.append(Result(n, "failed", error=problem))
                else:
                    items.append((n, req))
                    order.append(n)
        if len(order) >= chunk:
            pending.append((order, asyncio.ensure_future(send_chunk(client, items))))
            order, items = [], []
            await drain(in_flight - 1)
    if order:
        pending.append((order, asyncio.ensure_future(send_chunk(client, items))))
    await drain(0)


async def command(
    client: AsyncClient,
    path: Path,
    *,
    as_json: bool,
    fmt: str = "",
    progress: bool = False,
    write: Callable[[str], None] = print,
    note: Callable[[str], None] = print,
) -> int:
    """`pinsched import`: print each row's result (a table, or JSON Lines with *as_json*) and a
    summary; 0 when every row was created or already existed, 1 otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    source = Source(path, fmt)
    counts = {"created": 0, "existing": 0, "failed": 0}
    started = time.monotonic()
    if not as_json:
        write(f"{'row':>7}  {'job':<26}  {'planned_at':<24}  result")
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not progress,
    )
    task = bar.add_task("import", total=source.size, rows=0)

    def emit(result: Result) -> None:
        counts[result.status] += 1
        write(result.to_json() if as_json else result.line())
        if progress:
            bar.update(task, completed=source.bytes_read, rows=sum(counts.values()))

    with bar:
        await run(client, source.records(), emit)
    total = sum(counts.values())
    elapsed = time.monotonic() - started
    note(
        f"{total} rows: {counts['created']} created, {counts['existing']} existing, "
        f"{counts['failed']} failed in {elapsed:.1f}s ({total / max(elapsed, 1e-9):.0f} rows/s)"
    )
    return 0 if counts["failed"] == 0 else 1
