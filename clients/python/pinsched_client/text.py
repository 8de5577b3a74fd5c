"""Human-written values ↔ Python and proto values, for command lines and scripts.

Owns the text forms pinsched accepts and prints: durations (`90s`, `10m`, `2h`, `1d`, `1h30m`),
instants with an offset (ISO 8601; a naive time is refused), UTC offsets (`+02:00`), state names
(`delivered`) and timestamps (`2026-03-08 07:30:00Z`). Pure: no I/O, no clock reads. Every parser
raises ValueError with a message fit to show a user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from google.protobuf import duration_pb2, timestamp_pb2

from pinsched.v1 import job_pb2

__all__ = [
    "format_duration",
    "format_timestamp",
    "parse_duration",
    "parse_instant",
    "parse_state",
    "parse_states",
    "parse_utc_offset",
    "parse_wall_time",
    "state_name",
]

_UNITS: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_OFFSET_RE: Final = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_duration(text: str) -> timedelta:
    """Parse `90s`, `10m`, `2h`, `1d` or a sum such as `1h30m`."""
    compact = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not compact or pos != len(compact):
        raise ValueError(f"bad duration {text!r}: use a number with a unit, like 90s, 10m, 2h, 1d")
    return timedelta(seconds=total)


def format_duration(value: timedelta | duration_pb2.Duration) -> str:
    """Render a duration compactly: `1h30m`, `2.5s`, `0.012s`, `0s`."""
    td = value.ToTimedelta() if isinstance(value, duration_pb2.Duration) else value
    seconds = td.total_seconds()
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    whole = int(seconds)
    if whole < 60:
        return sign + f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    parts = []
    for unit, size in _UNITS.items():
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 date-time carrying `Z` or an offset; a naive one is refused."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise ValueError(
            f"{text!r} has no UTC offset, so its instant is unknown: add one "
            "(2026-03-08T14:30Z, 2026-03-08T14:30+02:00) or give a local time with a zone"
        )
    return when


def parse_wall_time(text: str) -> datetime:
    """Parse a wall-clock ISO 8601 date-time (no offset), such as `2026-03-08T02:30`."""
    try:
        wall = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if wall.tzinfo is not None:
        raise ValueError(f"{text!r} carries an offset: a wall-clock time has none")
    return wall


def parse_utc_offset(text: str) -> timedelta:
    """Parse `+02:00`, `-0430`, `+2`, `Z` or `UTC` into an offset within ±18 hours."""
    if text.strip().upper() in ("Z", "UTC"):
        return timedelta(0)
    match = _OFFSET_RE.match(text.strip())
    if not match or int(match.group(2)) > 18 or int(match.group(3) or 0) > 59:
        raise ValueError(f"bad UTC offset {text!r}: expected +HH:MM or -HH:MM")
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))


def format_timestamp(ts: timestamp_pb2.Timestamp) -> str:
    """Render a Timestamp in UTC as `2026-03-08 07:30:00Z`; an unset one as `-`."""
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def state_name(state: job_pb2.Job.State.ValueType) -> str:
    """Return the short name of a job state: `DELIVERED` for `STATE_DELIVERED`."""
    return job_pb2.Job.State.Name(state).removeprefix("STATE_")


TERMINAL_STATES: Final = frozenset(
    {
        job_pb2.Job.STATE_DELIVERED,
        job_pb2.Job.STATE_FAILED,  # waits for the user (new credentials, RetryJob)
        job_pb2.Job.STATE_PERMANENTLY_FAILED,
        job_pb2.Job.STATE_CANCELLED,
    }
)


def is_terminal(state: job_pb2.Job.State.ValueType) -> bool:
    """Whether a job in *state* stays there unless someone calls the API: DELIVERED, FAILED
    (waiting for the user), PERMANENTLY_FAILED or CANCELLED."""
    return state in TERMINAL_STATES


def parse_state(text: str) -> job_pb2.Job.State.ValueType:
    """Parse `delivered`, `DELIVERED`, `permanently-failed` or `STATE_DELIVERED`."""
    name = text.strip().upper().replace("-", "_")
    name = name if name.startswith("STATE_") else f"STATE_{name}"
    names = list(job_pb2.Job.State.keys())
    if name == "STATE_UNSPECIFIED" or name not in names:
        known = ", ".join(n.removeprefix("STATE_").lower() for n in names[1:])
        raise ValueError(f"unknown state {text!r}; one of: {known}")
    return job_pb2.Job.State.Value(name)


def parse_states(texts: Iterable[str]) -> list[job_pb2.Job.State.ValueType]:
    """Parse several state names; each text may itself be a comma-separated list."""
    return [parse_state(part) for text in texts for part in text.split(",") if part.strip()]
