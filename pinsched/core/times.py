"""Time rules of DESIGN §4: local wall-clock times to UTC instants, and when an instant is allowed.

Pure: no I/O beyond reading the IANA zone database through `zoneinfo`, and no clock reads; the
current time is always the `now` parameter. Owns DST handling (times that do not exist or exist
twice), the clock-skew tolerance, the horizon and the delivery-window bound. Does not know about
protos: `pinsched.api.validation` turns a `TimeError` into a field violation.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pinsched.core.jobs import LocalTime

DEFAULT_SKEW_TOLERANCE: Final = timedelta(seconds=60)
DEFAULT_HORIZON: Final = timedelta(days=400)
DEFAULT_MAX_WINDOW: Final = timedelta(days=31)
#: Real offsets span -12h..+14h; ±18h is the usual sanity bound (ISO 8601 libraries use it).
MAX_UTC_OFFSET: Final = timedelta(hours=18)

_ZONE_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}", re.ASCII)
# Files of a zone directory that are not IANA zone ids, and trees that only duplicate them
# (`right/` counts leap seconds, which zoneinfo does not model).
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory", "leapseconds", "tzdata.zi"})
_NOT_ZONE_TREES: Final = ("right/", "posix/")


class TimeError(ValueError):
    """A time the client sent cannot be used; `field` names the part at fault ("" = all of it)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NonexistentPolicy(StrEnum):
    """What to do with a local time inside a spring-forward gap."""

    REJECT = "REJECT"
    SHIFT_FORWARD = "SHIFT_FORWARD"


class AmbiguousPolicy(StrEnum):
    """What to do with a local time that a fall-back makes happen twice."""

    REJECT = "REJECT"
    EARLIER = "EARLIER"
    LATER = "LATER"


def format_utc(at: datetime) -> str:
    """ISO 8601 in UTC with a `Z`: `2026-03-08T07:30:00Z` (microseconds only when non-zero)."""
    u = at.astimezone(UTC)
    frac = f".{u.microsecond:06d}" if u.microsecond else ""
    return f"{u:%Y-%m-%dT%H:%M:%S}{frac}Z"


def format_duration(delta: timedelta) -> str:
    """A short human duration: `60s`, `90s`, `2h`, `1h30m`, `400d`, `1.5s`."""
    sign = "-" if delta < timedelta(0) else ""
    delta = abs(delta)
    total = delta.total_seconds()
    if total < 100:
        return f"{sign}{total:.3f}".rstrip("0").rstrip(".") + "s"
    seconds = int(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def zone(key: str) -> ZoneInfo:
    """The IANA zone *key* (`America/New_York`); `TimeError` naming it when there is none."""
    if not key:
        raise TimeError("a time zone id is required, e.g. America/New_York", field="time_zone")
    shown = key if len(key) <= 64 else key[:61] + "..."
    if (
        len(key) > 64
        or not _ZONE_KEY.fullmatch(key)
        or key in _NOT_ZONES
        or key.startswith(_NOT_ZONE_TREES)
    ):
        raise TimeError(f"unknown time zone {shown!r}: expected an IANA id", field="time_zone")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimeError(
            f"unknown time zone {shown!r}: expected an IANA id such as America/New_York",
            field="time_zone",
        ) from None


def wall_time(lt: LocalTime) -> datetime:
    """The naive wall-clock `datetime` of *lt*, checking each field's range (nanos → µs)."""
    ranges = (
        ("year", lt.year, 1, 9999),
        ("month", lt.month, 1, 12),
        ("hours", lt.hours, 0, 23),
        ("minutes", lt.minutes, 0, 59),
        ("seconds", lt.seconds, 0, 59),
        ("nanos", lt.nanos, 0, 999_999_999),
    )
    for name, value, low, high in ranges:
        if not low <= value <= high:
            raise TimeError(f"{name} must be {low} to {high}, got {value}", field=name)
    try:
        return datetime(  # noqa: DTZ001 - a wall time; the zone is applied by the caller
            lt.year, lt.month, lt.day, lt.hours, lt.minutes, lt.seconds, lt.nanos // 1000
        )
    except ValueError:
        raise TimeError(
            f"day {lt.day} does not exist in {lt.year:04d}-{lt.month:02d}", field="day"
        ) from None


def resolve_local_time(
    lt: LocalTime,
    *,
    nonexistent: NonexistentPolicy = NonexistentPolicy.REJECT,
    ambiguous: AmbiguousPolicy = AmbiguousPolicy.REJECT,
) -> datetime:
    """The aware-UTC instant of the wall-clock time *lt*, applying the DST policies.

    Raises `TimeError` for a bad field, an unknown zone, or (under REJECT) a local time that does
    not exist or exists twice; the message then names both candidate instants.
    """
    if lt.time_zone and lt.utc_offset_s is not None:
        raise TimeError("a local time takes a time_zone or a utc_offset, not both")
    if not lt.time_zone and lt.utc_offset_s is None:
        raise TimeError("a local time needs a time_zone or a utc_offset")
    tz = zone(lt.time_zone) if lt.time_zone else None
    wall = wall_time(lt)
    if tz is None:
        assert lt.utc_offset_s is not None
        offset = timedelta(seconds=lt.utc_offset_s)
        if abs(offset) > MAX_UTC_OFFSET:
            raise TimeError(
                f"utc_offset must be within ±18h, got {format_duration(offset)}",
                field="utc_offset",
            )
        return _to_utc(wall.replace(tzinfo=timezone(offset)))
    return _resolve_in_zone(wall, tz, lt.time_zone, nonexistent, ambiguous)


def _resolve_in_zone(
    wall: datetime,
    tz: ZoneInfo,
    key: str,
    nonexistent: NonexistentPolicy,
    ambiguous: AmbiguousPolicy,
) -> datetime:
    # PEP 495: fold=0 reads a wall time with the offset in force before a transition, fold=1 with
    # the one after. A candidate counts only if converting it back gives the same wall time.
    readings = {_to_utc(wall.replace(tzinfo=tz, fold=fold)) for fold in (0, 1)}
    real = sorted(u for u in readings if u.astimezone(tz).replace(tzinfo=None) == wall)
    if len(real) == 1:
        return real[0]
    shown = _format_wall(wall)
    if len(real) == 2:
        earlier, later = real
        if ambiguous is AmbiguousPolicy.EARLIER:
            return earlier
        if ambiguous is AmbiguousPolicy.LATER:
            return later
        before, after = _jump(tz, earlier, later)
        raise TimeError(
            f"{shown} happens twice in {key} (clocks fall back from {_format_wall(before, wall)}"
            f" to {_format_wall(after, wall)}); candidates: {format_utc(earlier)} (EARLIER,"
            f" UTC{_format_offset(earlier, tz)}) or {format_utc(later)} (LATER,"
            f" UTC{_format_offset(later, tz)}); choose one with ambiguous_time_policy"
        )
    # A gap: neither reading survives the round trip. Reading the wall time with the pre-gap
    # (smaller) offset gives the later instant, which is the wall time moved forward by the gap.
    low, high = sorted(readings)
    if len(readings) != 2 or low == high:  # pragma: no cover - zoneinfo always gives two here
        raise TimeError(f"{shown} cannot be resolved in {key}")
    if nonexistent is NonexistentPolicy.SHIFT_FORWARD:
        return high
    before, after = _jump(tz, low, high)
    raise TimeError(
        f"{shown} does not exist in {key} (clocks jump from {_format_wall(before, wall)} to"
        f" {_format_wall(after, wall)}); candidates: {format_utc(high)} (SHIFT_FORWARD, read with"
        f" the offset before the jump: {_format_wall(_local(high, tz), wall)} local) or"
        f" {format_utc(low)} (read with the offset after it:"
        f" {_format_wall(_local(low, tz), wall)} local); choose with nonexistent_time_policy"
        " or send scheduled_at"
    )


def _to_utc(aware: datetime) -> datetime:
    try:
        return aware.astimezone(UTC)
    except OverflowError:
        raise TimeError(f"{_format_wall(aware.replace(tzinfo=None))} is out of range") from None


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None)


def _jump(tz: ZoneInfo, low: datetime, high: datetime) -> tuple[datetime, datetime]:
    """Wall clock just before and right after the offset change in (*low*, *high*]."""
    start = low.astimezone(tz).utcoffset()
    # Transitions fall on whole seconds: bisect integer epoch seconds, offset(lo) == start.
    lo, hi = math.floor(low.timestamp()), math.ceil(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == start:
            lo = mid
        else:
            hi = mid
    at = datetime.fromtimestamp(hi, UTC)
    end = at.astimezone(tz).utcoffset()
    assert start is not None
    assert end is not None
    return (at + start).replace(tzinfo=None), (at + end).replace(tzinfo=None)


def _format_wall(wall: datetime, ref: datetime | None = None) -> str:
    """`02:30` when *ref* shares the date, else `2026-03-08T02:30`; seconds only when non-zero."""
    spec = "minutes" if not wall.second and not wall.microsecond else "auto"
    if ref is not None and wall.date() == ref.date():
        return wall.time().isoformat(timespec=spec)
    return wall.isoformat(timespec=spec)


def _format_offset(at: datetime, tz: ZoneInfo) -> str:
    offset = at.astimezone(tz).utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = int(abs(offset).total_seconds()) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def check_instant(
    at: datetime, *, now: datetime, skew_tolerance: timedelta, horizon: timedelta
) -> datetime:
    """*at* in UTC if it may be scheduled at *now*: a little in the past means now; not too far.

    Raises `TimeError` for a naive time, one older than the skew tolerance, or one beyond the
    horizon.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    if at.tzinfo is None or at.utcoffset() is None:
        raise TimeError(f"{at.isoformat()} has no time zone or UTC offset; naive times are refused")
    at, now = at.astimezone(UTC), now.astimezone(UTC)
    if at < now - skew_tolerance:
        raise TimeError(
            f"{format_utc(at)} is {format_duration(now - at)} in the past; the clock-skew"
            f" tolerance is {format_duration(skew_tolerance)} (it is now {format_utc(now)})"
        )
    if at < now:
        return now
    if at > now + horizon:
        raise TimeError(
            f"{format_utc(at)} is {format_duration(at - now)} ahead, beyond the horizon of"
            f" {format_duration(horizon)}"
        )
    return at


def check_window(window: timedelta, *, max_window: timedelta = DEFAULT_MAX_WINDOW) -> timedelta:
    """*window* if it is a usable delivery window (0 ≤ window ≤ *max_window*), else `TimeError`."""
    if window < timedelta(0):
        raise TimeError(f"a delivery window cannot be negative, got {format_duration(window)}")
    if window > max_window:
        raise TimeError(
            f"a delivery window is at most {format_duration(max_window)},"
            f" got {format_duration(window)}"
        )
    return window


def window_end(scheduled_at: datetime, window: timedelta) -> datetime:
    """The last instant a job scheduled at *scheduled_at* with *window* may be published."""
    return scheduled_at + window
