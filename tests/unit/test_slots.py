"""Posting-schedule slot arithmetic: DST days in several zones, capacity, pacing, not_before."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinsched.core.accounts import Pacing
from pinsched.core.planning import violations
from pinsched.core.slots import (
    PostingSchedule,
    SlotRule,
    find_free,
    fits,
    free_slots,
    parse,
    slot_instant,
    slots_between,
)

EVERY_DAY = frozenset(range(1, 8))
ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Europe/Paris",
    "UTC",
    "Asia/Kolkata",
]


def daily(zone: str, *times: time, cap: int = 1) -> PostingSchedule:
    return PostingSchedule(
        time_zone=zone, rules=tuple(SlotRule(EVERY_DAY, t) for t in times), max_per_slot=cap
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_new_york_spring_forward_moves_the_missing_slot_forward_by_the_gap() -> None:
    """On 2026-03-08 02:30 does not exist in New York: the slot is 03:30 EDT (07:30Z)."""
    s = daily("America/New_York", time(2, 30))
    got = list(slots_between(s, utc(2026, 3, 7), utc(2026, 3, 10)))
    assert [x.at for x in got] == [
        utc(2026, 3, 7, 7, 30),
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 9, 6, 30),
    ]
    assert got[1].local == datetime(2026, 3, 8, 2, 30)  # noqa: DTZ001 - the wall time as listed


def test_new_york_fall_back_uses_the_first_instant() -> None:
    """On 2026-11-01 01:30 happens twice in New York: the slot is the first, 01:30 EDT (05:30Z)."""
    s = daily("America/New_York", time(1, 30))
    (slot,) = slots_between(s, utc(2026, 11, 1), utc(2026, 11, 2))
    assert slot.at == utc(2026, 11, 1, 5, 30)


def test_london_spring_forward_and_fall_back() -> None:
    """London: 01:30 on 2026-03-29 becomes 02:30 BST (01:30Z); on 2026-10-25 it is 00:30Z."""
    s = daily("Europe/London", time(1, 30))
    spring = list(slots_between(s, utc(2026, 3, 29), utc(2026, 3, 30)))
    autumn = list(slots_between(s, utc(2026, 10, 25), utc(2026, 10, 26)))
    assert [x.at for x in spring] == [utc(2026, 3, 29, 1, 30)]
    assert [x.at for x in autumn] == [utc(2026, 10, 25, 0, 30)]


def test_lord_howe_half_hour_shift() -> None:
    """Lord Howe jumps 02:00→02:30 on 2026-10-04: a 02:15 slot is 02:45 (+11) = 15:45Z the day
    before; on 2026-04-05 it falls back 02:00→01:30, so 01:45 is the first (+11) instant."""
    s = daily("Australia/Lord_Howe", time(2, 15), time(1, 45))
    tz = ZoneInfo("Australia/Lord_Howe")
    spring = {
        x.local.time(): x.at for x in slots_between(s, utc(2026, 10, 3, 12), utc(2026, 10, 4, 12))
    }
    assert spring[time(2, 15)] == utc(2026, 10, 3, 15, 45)
    assert spring[time(2, 15)].astimezone(tz).strftime("%H:%M") == "02:45"
    autumn = {
        x.local.time(): x.at for x in slots_between(s, utc(2026, 4, 4, 12), utc(2026, 4, 5, 12))
    }
    assert autumn[time(1, 45)] == utc(2026, 4, 4, 14, 45)  # 01:45 at +11:00


def test_slots_merge_when_a_shifted_slot_lands_on_another() -> None:
    """02:30 shifted by New York's gap lands on 03:30: the two are one slot that day."""
    s = daily("America/New_York", time(2, 30), time(3, 30))
    day = [x.at for x in slots_between(s, utc(2026, 3, 8, 5), utc(2026, 3, 9, 5))]
    assert day == [utc(2026, 3, 8, 7, 30)]


def test_slots_cross_a_year_boundary() -> None:
    """Weekday slots run from Wed 2026-12-30 into Mon 2027-01-04, skipping the weekend."""
    s = PostingSchedule(
        time_zone="Europe/Paris", rules=(SlotRule(frozenset(range(1, 6)), time(9)),)
    )
    got = [x.local.date().isoformat() for x in slots_between(s, utc(2026, 12, 30), utc(2027, 1, 6))]
    assert got == ["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-04", "2027-01-05"]


def test_no_free_slot_within_the_horizon_is_none() -> None:
    """A full single slot and a horizon that ends before the next one: nothing."""
    s = daily("UTC", time(9))
    got = find_free(
        s,
        pacing=Pacing(),
        not_before=utc(2026, 6, 1),
        until=utc(2026, 6, 2),
        occupancy={utc(2026, 6, 1, 9): 1},
        taken=[utc(2026, 6, 1, 9)],
    )
    assert got is None


def test_parse_and_describe_round_trip() -> None:
    """The CLI's text form reads day ranges and lists, and describes itself the same way."""
    s = parse("Mon-Fri 09:00,12:30,18:00; Sat,Sun 10", "Europe/Paris", max_per_slot=2)
    assert parse("mon 9:05", "UTC").rules == (SlotRule(frozenset({1}), time(9, 5)),)
    assert len(s.rules) == 4
    assert s.describe() == "Mon-Fri 09:00,12:30,18:00; Sat,Sun 10:00 Europe/Paris (max 2 per slot)"
    assert PostingSchedule.from_dict(s.to_dict()) == s
    for bad in ("", "Mon", "Fun 09:00", "Mon 25:00", "Fri-Mon 09:00"):
        with pytest.raises(ValueError, match=r".+"):
            parse(bad, "UTC")


schedules = st.builds(
    lambda zone, rules, cap: PostingSchedule(time_zone=zone, rules=tuple(rules), max_per_slot=cap),
    st.sampled_from(ZONES),
    st.lists(
        st.builds(
            SlotRule,
            st.frozensets(st.integers(1, 7), min_size=1),
            st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 3),
)
pacings = st.builds(
    Pacing,
    min_spacing=st.integers(0, 90).map(lambda m: timedelta(minutes=m)),
    max_per_hour=st.integers(0, 3),
    max_per_day=st.integers(0, 8),
)
# Starts near DST changes of the zones above and across a new year.
starts = st.sampled_from(
    [
        utc(2026, 3, 6),
        utc(2026, 3, 27),
        utc(2026, 4, 2),
        utc(2026, 10, 1),
        utc(2026, 10, 23),
        utc(2026, 10, 30),
        utc(2026, 12, 29),
    ]
).flatmap(lambda d: st.integers(0, 48 * 60).map(lambda m: d + timedelta(minutes=m)))


@settings(max_examples=150, deadline=None)
@given(
    schedule=schedules,
    pacing=pacings,
    start=starts,
    n=st.integers(1, 25),
    fixed=st.lists(st.integers(0, 10 * 24 * 60), max_size=6),
)
def test_filling_slots_keeps_capacity_not_before_and_pacing(
    schedule: PostingSchedule, pacing: Pacing, start: datetime, n: int, fixed: list[int]
) -> None:
    """Pins placed one after another never exceed max_per_slot, never precede not_before, land
    on a slot instant (plus spacing within the slot), and add no pacing violation."""
    until = start + timedelta(days=60)
    taken = sorted(start + timedelta(minutes=m) for m in fixed)
    before = set(violations(taken, pacing))
    occupancy: dict[datetime, int] = {}
    slot_times = {s.at for s in slots_between(schedule, start, until)}
    placed: list[datetime] = []
    for _ in range(n):
        p = find_free(
            schedule, pacing=pacing, not_before=start, until=until, occupancy=occupancy, taken=taken
        )
        if p is None:
            break
        assert p.slot.at >= start
        assert p.planned_at >= p.slot.at
        assert p.slot.at in slot_times
        assert (p.planned_at - p.slot.at) in {
            pacing.min_spacing * k for k in range(schedule.max_per_slot)
        }
        assert slot_instant(p.slot.local, ZoneInfo(schedule.time_zone)) == p.slot.at
        assert fits(p.planned_at, taken, pacing)
        occupancy[p.slot.at] = occupancy.get(p.slot.at, 0) + 1
        assert occupancy[p.slot.at] <= schedule.max_per_slot
        bisect.insort(taken, p.planned_at)
        placed.append(p.planned_at)
    assert [v for v in violations(taken, pacing) if v not in before] == []
    room = len(slot_times) * schedule.max_per_slot  # a weekly slot has only ~9 in 60 days
    if not pacing.max_per_hour and not pacing.max_per_day and not fixed and room >= n:
        assert len(placed) == n  # without caps, n pins fit where the range has n places


@settings(max_examples=100, deadline=None)
@given(schedule=schedules, start=starts)
def test_slot_instants_keep_the_listed_wall_time_unless_it_does_not_exist(
    schedule: PostingSchedule, start: datetime
) -> None:
    """Each slot reads back as its wall time, or (in a gap) as a later one; instants increase."""
    tz = ZoneInfo(schedule.time_zone)
    got = list(slots_between(schedule, start, start + timedelta(days=10)))
    assert [s.at for s in got] == sorted({s.at for s in got})
    for s in got:
        back = s.at.astimezone(tz).replace(tzinfo=None)
        assert back >= s.local
        assert back - s.local <= timedelta(hours=1)


def test_free_slots_list_what_consecutive_requests_would_get() -> None:
    """With two pins per slot and 10 min spacing, the list fills 09:00, 09:10, then 12:00."""
    s = daily("UTC", time(9), time(12), cap=2)
    got = free_slots(
        s,
        pacing=Pacing(min_spacing=timedelta(minutes=10)),
        not_before=utc(2026, 6, 1),
        until=utc(2026, 6, 3),
        occupancy={},
        taken=[],
        count=3,
    )
    assert [(p.planned_at, p.taken) for p in got] == [
        (utc(2026, 6, 1, 9), 0),
        (utc(2026, 6, 1, 9, 10), 1),
        (utc(2026, 6, 1, 12), 0),
    ]
