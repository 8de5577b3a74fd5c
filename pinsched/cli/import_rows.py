"""The rows of a `pinsched import` file as requests: the columns (`COLUMNS`), reading CSV or JSON
Lines lazily (`Source`), one row → one `SchedulePinRequest` (`build_request`, `RowError`), and the
request id a row without one gets (`derived_request_id`). Sending them is `cli.importer`'s.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from google.protobuf import timestamp_pb2

from pinsched.v1 import scheduler_pb2
from pinsched_client import local_time, parse_duration, parse_instant, parse_wall_time

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
_TRUE: Final = frozenset({"true", "yes", "1", "now"})
_FALSE: Final = frozenset({"", "false", "no", "0"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class RowError(ValueError):
    """A row that cannot become a request: `field: reason`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


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
