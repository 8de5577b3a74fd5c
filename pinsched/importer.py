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

Columns (CSV header, or JSON keys): see `COLUMNS`. Exactly one time per row: `scheduled_at`
(ISO 8601 with Z or an offset), `local_time` + `time_zone`, or `next_free_slot` (`true`/`now`,
or an ISO instant: not before then). Exactly one media per row: `image_url`, or `video_url` (a
video the daemon stages on Pinterest ahead of time) with `cover_image_url` (else the first frame
is the cover).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

import grpc
from google.protobuf import timestamp_pb2

from pinsched.v1 import scheduler_pb2
from pinsched_client import (
    AsyncClient,
    error_details,
    local_time,
    parse_duration,
    parse_instant,
    parse_wall_time,
)

COLUMNS: Final = (
    "account",
    "board",
    "title",
    "description",
    "link",
    "alt_text",
    "image_url",
    "video_url",
    "cover_image_url",
    "scheduled_at",
    "local_time",
    "time_zone",
    "next_free_slot",
    "delivery_window",
    "also_boards",
    "board_interval",
    "request_id",
)
CHUNK: Final = 500
IN_FLIGHT: Final = 4
_ITEM: Final = re.compile(r"requests\[(\d+)\]\.?")
_TRUE: Final = frozenset({"true", "yes", "1", "now"})
_FALSE: Final = frozenset({"", "false", "no", "0"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class RowError(ValueError):
    """A row that cannot become a request: `field: reason`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


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


class Source:
    """The records of a CSV or JSON Lines file, read lazily; `bytes_read` follows progress."""

    def __init__(self, path: Path, fmt: str = "") -> None:
        self.path = path
        self.format = fmt or ("csv" if path.suffix.lower() in (".csv", ".tsv") else "jsonl")
        self.size = path.stat().st_size
        self.bytes_read = 0

    def _lines(self, f: TextIO) -> Iterator[str]:
        for line in f:
            self.bytes_read += len(line.encode())
            yield line

    def records(self) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
        """(row number, fields) for every record; a record that cannot be read is a RowError.
        Raises ValueError for a CSV header naming unknown columns (nothing is sent then)."""
        with self.path.open(newline="", encoding="utf-8-sig") as f:
            if self.format == "csv":
                reader = csv.DictReader(self._lines(f))
                unknown = [c for c in reader.fieldnames or () if c not in COLUMNS]
                if unknown or not reader.fieldnames:
                    raise ValueError(
                        f"{self.path}: unknown columns {unknown}; the columns are "
                        f"{', '.join(COLUMNS)}"
                    )
                for n, rec in enumerate(reader, 1):
                    if None in rec:
                        yield n, RowError("row", "more values than columns")
                    else:
                        yield n, {k: v for k, v in rec.items() if v not in (None, "")}
                return
            n = 0
            for line in self._lines(f):
                if not line.strip():
                    continue
                n += 1
                try:
                    data = json.loads(line)
                except ValueError as e:
                    yield n, RowError("row", f"not a JSON object: {e}")
                    continue
                if not isinstance(data, dict):
                    yield n, RowError("row", "not a JSON object")
                    continue
                unknown = sorted(k for k in data if k not in COLUMNS)
                yield n, RowError(unknown[0], "unknown column") if unknown else data


def _texts(fields: dict[str, Any]) -> dict[str, str]:
    """The row's text values (JSON numbers become text; lists stay for also_boards)."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool) and key == "next_free_slot":
            out[key] = "true" if value else ""
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = f"{value}s" if key in ("delivery_window", "board_interval") else str(value)
        elif not (key == "also_boards" and isinstance(value, list)) and value is not None:
            raise RowError(key, f"expected text, got {type(value).__name__}")
    return out


def build_request(fields: dict[str, Any]) -> scheduler_pb2.SchedulePinRequest:
    """The SchedulePin request of one row (checked only as far as needed to build it: the
    daemon checks the rest and names the field); RowError when it cannot be built."""
    text = _texts(fields)
    get = text.get
    if get("video_url") and get("image_url"):
        raise RowError("video_url", "give image_url or video_url, not both")
    for key in ("account", "board", "video_url" if get("video_url") else "image_url"):
        if not get(key):
            raise RowError(key, "required")
    req = scheduler_pb2.SchedulePinRequest(
        account_id=text["account"], request_id=get("request_id", "")
    )
    pin = req.pin
    pin.board_id = text["board"]
    for key in ("title", "description", "link", "alt_text"):
        if key in text:
            setattr(pin, key, text[key])
    if get("video_url"):
        video = pin.media_source.video_url
        video.url = text["video_url"]
        if get("cover_image_url"):
            video.cover_image_url = text["cover_image_url"]
        else:
            video.cover_image_key_frame_time = 0
    else:
        pin.media_source.image_url.url = text["image_url"]
    _set_time(req, text)
    for key in ("delivery_window", "board_interval"):
        if get(key):
            try:
                getattr(req, key).FromTimedelta(parse_duration(text[key]))
            except ValueError as e:
                raise RowError(key, str(e)) from None
    boards = fields.get("also_boards") or []
    if isinstance(boards, str):
        boards = [b for b in re.split(r"[\s,;|]+", boards) if b]
    if not all(isinstance(b, str | int) and not isinstance(b, bool) for b in boards):
        raise RowError("also_boards", "a list of board ids")
    req.also_boards.extend(str(b) for b in boards)
    if not req.request_id:
        req.request_id = derived_request_id(req)
    return req


def _timestamp(ts: timestamp_pb2.Timestamp, at: datetime) -> None:
    """Set *ts* to the aware *at* (integer arithmetic: FromDatetime is slow pure Python)."""
    delta = at - _EPOCH
    ts.seconds = delta.days * 86400 + delta.seconds
    ts.nanos = delta.microseconds * 1000


def _set_time(req: scheduler_pb2.SchedulePinRequest, text: dict[str, str]) -> None:
    slot = text.get("next_free_slot", "").strip()
    given = [k for k in ("scheduled_at", "local_time") if text.get(k)]
    if slot.lower() not in _FALSE:
        given.append("next_free_slot")
    if len(given) != 1:
        raise RowError(
            "scheduled_at",
            "give exactly one of scheduled_at, local_time (with "
            f"time_zone) or next_free_slot; got {', '.join(given) or 'none'}",
        )
    try:
        if given[0] == "scheduled_at":
            _timestamp(req.scheduled_at, parse_instant(text["scheduled_at"]))
        elif given[0] == "local_time":
            zone = text.get("time_zone")
            if not zone:
                raise RowError("time_zone", "required with local_time, e.g. Europe/Paris")
            req.local_time.CopyFrom(local_time(parse_wall_time(text["local_time"]), time_zone=zone))
        else:
            req.next_free_slot.SetInParent()
            if slot.lower() not in _TRUE:
                _timestamp(req.next_free_slot.not_before, parse_instant(slot))
    except RowError:
        raise
    except ValueError as e:
        raise RowError(given[0], str(e)) from None


def derived_request_id(req: scheduler_pb2.SchedulePinRequest) -> str:
    """`import-` + a hash of the request without its id: the same row, the same id."""
    body = scheduler_pb2.SchedulePinRequest()
    body.CopyFrom(req)
    body.request_id = ""
    return "import-" + hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()[:40]


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
