"""Posting-schedule slots. Pure: no I/O beyond reading the IANA zone database through
`zoneinfo`, no clock reads: `not_before` and the horizon end are parameters.

Owns an account's weekly posting schedule ("Mon-Fri 09:00, 12:30, 18:00 Europe/Paris"), the slot
instants it yields, and where a pin scheduled with `next_free_slot` goes.

* Slots are local times in one IANA zone. A slot whose local time does not exist on a day (the
  clocks jump over it) moves forward by the length of the jump: 02:30 in a 02:00-03:00 gap is
  03:30, in Lord Howe's 02:00-02:30 gap it is 02:30+30m = 03:00. A slot that exists twice (the
  clocks fall back) is the first of its two instants. Slots landing on the same instant are one.
* A pin goes into the first slot at or after `not_before` that holds fewer than `max_per_slot`
  pins and where it keeps the account's pacing (minimum spacing, hourly and daily caps) against
  every time the account has planned. The k-th pin of a slot (k = 0, 1, ...) may sit k minimum
  spacings after the slot's instant, so several pins per slot and a minimum spacing go together.

The store calls `find_free` inside the transaction that inserts the job, with the slot occupancy
and planned times it read in that transaction: that is what makes allocation race-free.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from pinsched.core.accounts import Pacing

MAX_RULES: Final = 100
MAX_PER_SLOT: Final = 100
DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SlotRule:
    """A local time on some days of the week (ISO weekdays: 1 = Monday ... 7 = Sunday)."""

    days: frozenset[int]
    time: time


@dataclass(frozen=True, slots=True, kw_only=True)
class PostingSchedule:
    """An account's weekly posting slots."""

    time_zone: str
    rules: tuple[SlotRule, ...]
    max_per_slot: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_zone": self.time_zone,
            "max_per_slot": self.max_per_slot,
            "rules": [{"days": sorted(r.days), "time": r.time.isoformat()} for r in self.rules],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostingSchedule:
        return cls(
            time_zone=data["time_zone"],
            max_per_slot=int(data["max_per_slot"]),
            rules=tuple(
                SlotRule(frozenset(r["days"]), time.fromisoformat(r["time"])) for r in data["rules"]
            ),
        )

    def describe(self) -> str:
        """`Mon-Fri 09:00,12:30; Sat 10:00 Europe/Paris` (the form `parse` reads)."""
        by_days: dict[tuple[int, ...], list[str]] = {}
        for rule in self.rules:
            by_days.setdefault(tuple(sorted(rule.days)), []).append(
                rule.time.isoformat(timespec="minutes" if not rule.time.second else "seconds")
            )
        parts = [f"{_days_text(days)} {','.join(sorted(times))}" for days, times in by_days.items()]
        cap = f" (max {self.max_per_slot} per slot)" if self.max_per_slot > 1 else ""
        return f"{'; '.join(parts)} {self.time_zone}{cap}"


@dataclass(frozen=True, slots=True)
class Slot:
    """One occurrence of a slot rule: its instant (UTC) and its wall-clock time as listed."""

    at: datetime
    local: datetime  # naive
    time_zone: str


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a pin goes: its slot, its planned time, and how many pins the slot held before."""

    slot: Slot
    planned_at: datetime
    taken: int


def slot_instant(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of the naive wall time *local* in *tz*: the first of two in a fall-back
    overlap; moved forward by the jump inside a spring-forward gap."""
    readings = sorted({local.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)})
    real = [u for u in readings if u.astimezone(tz).replace(tzinfo=None) == local]
    if real:
        return real[0]
    # A gap: the reading with the offset before the jump is the later instant, which is the wall
    # time moved forward by the length of the gap.
    return readings[-1]


def slots_between(schedule: PostingSchedule, start: datetime, end: datetime) -> Iterator[Slot]:
    """The slots with `start <= at < end`, in time order, each instant once."""
    tz = ZoneInfo(schedule.time_zone)
    day = start.astimezone(tz).date() - _DAY
    last_day = end.astimezone(tz).date() + _DAY
    last: datetime | None = None
    while day <= last_day:
        weekday = day.isoweekday()
        found = sorted(
            (slot_instant(datetime.combine(day, rule.time), tz), datetime.combine(day, rule.time))
            for rule in schedule.rules
            if weekday in rule.days
        )
        for at, local in found:
            if (last is not None and at <= last) or at < start:
                continue
            if at >= end:
                return
            last = at
            yield Slot(at, local, schedule.time_zone)
        day += _DAY


def fits(t: datetime, taken: Sequence[datetime], pacing: Pacing) -> bool:
    """Whether a pin at *t* keeps *pacing* against the sorted planned times *taken*."""
    d = pacing.min_spacing
    if d > timedelta(0):
        i = bisect.bisect_right(taken, t - d)
        j = bisect.bisect_left(taken, t + d)
        if i < j:
            return False
    for cap, span in ((pacing.max_per_hour, _HOUR), (pacing.max_per_day, _DAY)):
        if cap and _most_in_span(t, taken, span) + 1 > cap:
            return False
    return True


def _most_in_span(t: datetime, taken: Sequence[datetime], span: timedelta) -> int:
    """The most *taken* times in one sliding [s, s + span) that also contains *t*."""
    lo = bisect.bisect_right(taken, t - span)
    best = 0
    for s in [*taken[lo : bisect.bisect_right(taken, t)], t]:
        best = max(best, bisect.bisect_left(taken, s + span) - bisect.bisect_left(taken, s))
    return best


def find_free(
    schedule: PostingSchedule,
    *,
    pacing: Pacing,
    not_before: datetime,
    until: datetime,
    occupancy: Mapping[datetime, int],
    taken: Sequence[datetime],
) -> Placement | None:
    """The first free place for a pin in a slot in [*not_before*, *until*), or None.

    *occupancy* counts the pins each slot instant holds; *taken* (sorted) is every time the
    account has planned, for pacing.
    """
    for slot in slots_between(schedule, not_before, until):
        held = occupancy.get(slot.at, 0)
        if held >= schedule.max_per_slot:
            continue
        steps = schedule.max_per_slot if pacing.min_spacing > timedelta(0) else 1
        for k in range(steps):
            t = slot.at + pacing.min_spacing * k
            if fits(t, taken, pacing):
                return Placement(slot, t, held)
    return None


def free_slots(
    schedule: PostingSchedule,
    *,
    pacing: Pacing,
    not_before: datetime,
    until: datetime,
    occupancy: Mapping[datetime, int],
    taken: Sequence[datetime],
    count: int,
) -> list[Placement]:
    """The next *count* places consecutive `next_free_slot` requests would get (a slot with room
    for several pins is listed once per free place)."""
    occ = dict(occupancy)
    times = sorted(taken)
    out: list[Placement] = []
    start = not_before
    while len(out) < count:
        place = find_free(
            schedule, pacing=pacing, not_before=start, until=until, occupancy=occ, taken=times
        )
        if place is None:
            break
        out.append(place)
        occ[place.slot.at] = occ.get(place.slot.at, 0) + 1
        bisect.insort(times, place.planned_at)
        start = place.slot.at
    return out


# --- a compact text form, for the CLI -----------------------------------------------------------

_PART: Final = re.compile(
    r"\s*([A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?(?:\s*,\s*[A-Za-z]{3}"
    r"(?:\s*-\s*[A-Za-z]{3})?)*)\s+([0-9:,\s]+)\s*"
)
_TIME: Final = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?")


def parse(text: str, time_zone: str, max_per_slot: int = 1) -> PostingSchedule:
    """`Mon-Fri 09:00,12:30,18:00; Sat,Sun 10:00` → a schedule in *time_zone*; `ValueError`
    saying what is wrong otherwise (the zone is checked by the API)."""
    rules: list[SlotRule] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        m = _PART.fullmatch(part)
        if m is None:
            raise ValueError(f"{part!r}: expected days and times such as 'Mon-Fri 09:00,18:00'")
        days = _parse_days(m.group(1))
        for item in filter(None, (t.strip() for t in m.group(2).split(","))):
            hms = _TIME.fullmatch(item)
            try:
                if hms is None:
                    raise ValueError
                h, m_, sec = (int(g) for g in hms.groups(default="0"))
                at = time(h, m_, sec)
            except ValueError:
                raise ValueError(f"{item!r} is not a time such as 09:00") from None
            rules.append(SlotRule(days, at))
    if not rules:
        raise ValueError("a posting schedule needs at least one slot, e.g. 'Mon-Fri 09:00'")
    return PostingSchedule(time_zone=time_zone, rules=tuple(rules), max_per_slot=max_per_slot)


def _parse_days(text: str) -> frozenset[int]:
    names = [n.lower() for n in DAY_NAMES]
    out: set[int] = set()
    for item in (i.strip() for i in text.split(",")):
        ends = [e.strip().lower() for e in item.split("-")]
        for e in ends:
            if e not in names:
                raise ValueError(f"{e!r} is not a day: use {', '.join(DAY_NAMES)}")
        first, last = names.index(ends[0]) + 1, names.index(ends[-1]) + 1
        if last < first:
            raise ValueError(f"{item!r}: a day range runs Monday to Sunday, e.g. Sat-Sun")
        out.update(range(first, last + 1))
    return frozenset(out)


def _days_text(days: Sequence[int]) -> str:
    if len(days) > 2 and list(days) == list(range(days[0], days[-1] + 1)):
        return f"{DAY_NAMES[days[0] - 1]}-{DAY_NAMES[days[-1] - 1]}"
    return ",".join(DAY_NAMES[d - 1] for d in days)
