"""Tests of `pinsched.core.times`: DST resolution, skew and horizon rules, windows."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinsched.core.jobs import LocalTime
from pinsched.core.times import (
    DEFAULT_HORIZON,
    DEFAULT_SKEW_TOLERANCE,
    AmbiguousPolicy,
    NonexistentPolicy,
    TimeError,
    check_instant,
    check_window,
    format_duration,
    format_utc,
    resolve_local_time,
    window_end,
    zone,
)

SHIFT = NonexistentPolicy.SHIFT_FORWARD
EARLIER, LATER = AmbiguousPolicy.EARLIER, AmbiguousPolicy.LATER
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def lt(zone_id: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> LocalTime:
    return LocalTime(year=y, month=mo, day=d, hours=h, minutes=mi, seconds=s, time_zone=zone_id)


def naive(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A wall-clock (naive) datetime, for comparing wall times."""
    return datetime(y, mo, d, h, mi)  # noqa: DTZ001 - a wall time on purpose


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


# --- DST: named zones --------------------------------------------------------------------------


def test_new_york_gap_rejected_names_both_candidates() -> None:
    """02:30 on the spring-forward day is refused, naming the instants read with each offset."""
    with pytest.raises(TimeError) as info:
        resolve_local_time(lt("America/New_York", 2026, 3, 8, 2, 30))
    message = str(info.value)
    assert "2026-03-08T02:30 does not exist in America/New_York" in message
    assert "clocks jump from 02:00 to 03:00" in message
    assert "2026-03-08T07:30:00Z (SHIFT_FORWARD" in message
    assert "2026-03-08T06:30:00Z" in message
    assert info.value.field == ""


def test_new_york_gap_shift_forward_moves_by_the_gap() -> None:
    """SHIFT_FORWARD turns 02:30 into 03:30 EDT, the pre-gap-offset reading."""
    at = resolve_local_time(lt("America/New_York", 2026, 3, 8, 2, 30), nonexistent=SHIFT)
    assert at == utc(2026, 3, 8, 7, 30)
    assert at.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None) == naive(
        2026, 3, 8, 3, 30
    )


def test_new_york_fall_back_rejected_names_both_candidates() -> None:
    """01:30 on the fall-back day is refused by default, naming EARLIER and LATER instants."""
    with pytest.raises(TimeError) as info:
        resolve_local_time(lt("America/New_York", 2026, 11, 1, 1, 30))
    message = str(info.value)
    assert "happens twice in America/New_York" in message
    assert "clocks fall back from 02:00 to 01:00" in message
    assert "2026-11-01T05:30:00Z (EARLIER, UTC-04:00)" in message
    assert "2026-11-01T06:30:00Z (LATER, UTC-05:00)" in message


@pytest.mark.parametrize(
    ("local", "policy", "expected"),
    [
        (lt("America/New_York", 2026, 11, 1, 1, 30), EARLIER, utc(2026, 11, 1, 5, 30)),
        (lt("America/New_York", 2026, 11, 1, 1, 30), LATER, utc(2026, 11, 1, 6, 30)),
        (lt("Europe/London", 2026, 10, 25, 1, 30), EARLIER, utc(2026, 10, 25, 0, 30)),
        (lt("Europe/London", 2026, 10, 25, 1, 30), LATER, utc(2026, 10, 25, 1, 30)),
        (lt("Australia/Lord_Howe", 2026, 4, 5, 1, 45), EARLIER, utc(2026, 4, 4, 14, 45)),
        (lt("Australia/Lord_Howe", 2026, 4, 5, 1, 45), LATER, utc(2026, 4, 4, 15, 15)),
        (lt("Europe/Dublin", 2026, 10, 25, 1, 30), EARLIER, utc(2026, 10, 25, 0, 30)),
        (lt("Europe/Dublin", 2026, 10, 25, 1, 30), LATER, utc(2026, 10, 25, 1, 30)),
    ],
)
def test_fall_back_policies_pick_an_occurrence(
    local: LocalTime, policy: AmbiguousPolicy, expected: datetime
) -> None:
    """EARLIER picks the first occurrence of a repeated wall time and LATER the second."""
    assert resolve_local_time(local, ambiguous=policy) == expected


@pytest.mark.parametrize(
    ("local", "expected", "jump"),
    [
        (lt("Europe/London", 2026, 3, 29, 1, 30), utc(2026, 3, 29, 1, 30), "01:00 to 02:00"),
        (lt("Australia/Lord_Howe", 2026, 10, 4, 2, 15), utc(2026, 10, 3, 15, 45), "02:00 to 02:30"),
        (lt("Europe/Dublin", 2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 0), "01:00 to 02:00"),
        (lt("America/Sao_Paulo", 2018, 11, 4, 0, 30), utc(2018, 11, 4, 3, 30), "00:00 to 01:00"),
    ],
)
def test_gaps_in_other_zones(local: LocalTime, expected: datetime, jump: str) -> None:
    """Gaps of one hour and of 30 minutes are refused with the jump named, or shifted forward."""
    with pytest.raises(TimeError, match=f"clocks jump from {jump}"):
        resolve_local_time(local)
    assert resolve_local_time(local, nonexistent=SHIFT) == expected


def test_lord_howe_half_hour_fall_back_is_named() -> None:
    """Lord Howe's 30-minute fall-back is reported as 02:00 to 01:30 with both offsets."""
    with pytest.raises(TimeError) as info:
        resolve_local_time(lt("Australia/Lord_Howe", 2026, 4, 5, 1, 45))
    assert "clocks fall back from 02:00 to 01:30" in str(info.value)
    assert "UTC+11:00" in str(info.value)
    assert "UTC+10:30" in str(info.value)


def test_dublin_negative_dst_offsets_are_right_in_both_seasons() -> None:
    """Dublin (whose tzdata marks winter as the DST period) is UTC+1 in summer and UTC in winter."""
    assert resolve_local_time(lt("Europe/Dublin", 2026, 7, 1, 12)) == utc(2026, 7, 1, 11)
    assert resolve_local_time(lt("Europe/Dublin", 2026, 1, 15, 12)) == utc(2026, 1, 15, 12)


def test_apia_skipped_day_is_a_gap() -> None:
    """Samoa's skipped 2011-12-30 is a 24-hour gap, shifted forward by a day."""
    local = lt("Pacific/Apia", 2011, 12, 30, 12)
    with pytest.raises(TimeError, match="does not exist in Pacific/Apia"):
        resolve_local_time(local)
    at = resolve_local_time(local, nonexistent=SHIFT)
    assert at.astimezone(ZoneInfo("Pacific/Apia")).replace(tzinfo=None) == naive(2011, 12, 31, 12)


def test_ordinary_times_ignore_the_policies() -> None:
    """A time that exists once resolves the same whatever the policies say."""
    local = lt("America/New_York", 2026, 7, 4, 9, 15)
    for nonexistent in NonexistentPolicy:
        for ambiguous in AmbiguousPolicy:
            at = resolve_local_time(local, nonexistent=nonexistent, ambiguous=ambiguous)
            assert at == utc(2026, 7, 4, 13, 15)
            assert at.tzinfo is UTC


# --- fixed offsets, fields, zones --------------------------------------------------------------


def test_utc_offset_is_applied() -> None:
    """A fixed UTC offset of +05:30 is subtracted to give the UTC instant."""
    local = LocalTime(year=2026, month=5, day=1, hours=10, utc_offset_s=5 * 3600 + 1800)
    assert resolve_local_time(local) == utc(2026, 5, 1, 4, 30)


def test_zero_utc_offset_counts_as_given() -> None:
    """A utc_offset of 0 is a real offset (UTC), not a missing one."""
    local = LocalTime(year=2026, month=5, day=1, hours=10, utc_offset_s=0)
    assert resolve_local_time(local) == utc(2026, 5, 1, 10)


def test_utc_offset_beyond_18_hours_is_refused() -> None:
    """An offset beyond ±18h is refused on the utc_offset field."""
    local = LocalTime(year=2026, month=5, day=1, utc_offset_s=-19 * 3600)
    with pytest.raises(TimeError) as info:
        resolve_local_time(local)
    assert info.value.field == "utc_offset"


def test_neither_zone_nor_offset_is_refused() -> None:
    """A local time without zone or offset is refused with the contract's message."""
    with pytest.raises(TimeError, match="a local time needs a time_zone or a utc_offset"):
        resolve_local_time(LocalTime(year=2026, month=5, day=1))


def test_both_zone_and_offset_are_refused() -> None:
    """A local time with both a zone and an offset is refused."""
    local = LocalTime(year=2026, month=5, day=1, time_zone="UTC", utc_offset_s=0)
    with pytest.raises(TimeError, match="not both"):
        resolve_local_time(local)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"year": 0}, "year"),
        ({"year": 10000}, "year"),
        ({"month": 0}, "month"),
        ({"month": 13}, "month"),
        ({"month": 4, "day": 31}, "day"),
        ({"month": 2, "day": 29}, "day"),
        ({"day": 0}, "day"),
        ({"hours": 24}, "hours"),
        ({"hours": -1}, "hours"),
        ({"minutes": 60}, "minutes"),
        ({"seconds": 60}, "seconds"),
        ({"nanos": 1_000_000_000}, "nanos"),
        ({"nanos": -1}, "nanos"),
    ],
)
def test_out_of_range_fields_are_named(changes: dict[str, int], field: str) -> None:
    """Each out-of-range date or time field is refused and named."""
    values = {"year": 2026, "month": 1, "day": 15, **changes}
    with pytest.raises(TimeError) as info:
        resolve_local_time(LocalTime(**values, time_zone="UTC"))
    assert info.value.field == field


def test_leap_day_and_nanos() -> None:
    """29 February exists in a leap year, and nanos are kept to the microsecond (truncated)."""
    local = LocalTime(year=2028, month=2, day=29, hours=23, nanos=123_456_789, time_zone="UTC")
    assert resolve_local_time(local) == datetime(2028, 2, 29, 23, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    [
        "Mars/Olympus_Mons",
        "right/UTC",
        "posix/America/New_York",
        "",
        "America",
        "localtime",
        "../etc/passwd",
        "/etc/passwd",
        "utc",
        "x" * 90,
    ],
)
def test_unknown_zones_are_named(key: str) -> None:
    """An unknown or malformed zone id is refused on the time_zone field, naming it."""
    with pytest.raises(TimeError) as info:
        zone(key)
    assert info.value.field == "time_zone"
    assert key[:20] in str(info.value)


def test_out_of_range_instant_is_refused() -> None:
    """A wall time whose UTC instant falls outside year 1..9999 is refused, not crashed on."""
    local = LocalTime(year=9999, month=12, day=31, hours=23, utc_offset_s=-3600)
    with pytest.raises(TimeError, match="out of range"):
        resolve_local_time(local)


# --- the whole of 2026, hour by hour, against an independent oracle ----------------------------

ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Apia",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Chatham",
    "Australia/Sydney",
    "UTC",
]


def _occurrences(tz: ZoneInfo, year: int) -> dict[datetime, list[datetime]]:
    """Every :00 and :30 wall time of *year* → the UTC instants showing it (15-minute scan)."""
    found: dict[datetime, list[datetime]] = defaultdict(list)
    start = int(datetime(year - 1, 12, 30, tzinfo=UTC).timestamp())
    stop = int(datetime(year + 1, 1, 3, tzinfo=UTC).timestamp())
    for ts in range(start, stop, 900):
        wall = datetime.fromtimestamp(ts, tz)
        if wall.year == year and wall.minute in (0, 30):
            found[wall.replace(tzinfo=None)].append(datetime.fromtimestamp(ts, UTC))
    return found


@pytest.mark.parametrize("zone_id", ZONES)
def test_every_half_hour_of_2026_agrees_with_zoneinfo(zone_id: str) -> None:
    """Each half hour of 2026 resolves to the one instant showing it, or is a refused gap/fold."""
    tz = ZoneInfo(zone_id)
    occurrences = _occurrences(tz, 2026)
    wall = naive(2026, 1, 1)
    while wall.year == 2026:
        local = lt(zone_id, wall.year, wall.month, wall.day, wall.hour, wall.minute)
        instants = occurrences.get(wall, [])
        if len(instants) == 1:
            at = resolve_local_time(local)
            assert at == instants[0] == wall.replace(tzinfo=tz).astimezone(UTC)
            assert at.astimezone(tz).replace(tzinfo=None) == wall
        elif not instants:
            with pytest.raises(TimeError, match="does not exist"):
                resolve_local_time(local)
            shifted = resolve_local_time(local, nonexistent=SHIFT)
            assert shifted.astimezone(tz).replace(tzinfo=None) > wall
        else:
            with pytest.raises(TimeError) as info:
                resolve_local_time(local)
            assert format_utc(instants[0]) in str(info.value)
            assert format_utc(instants[1]) in str(info.value)
            assert resolve_local_time(local, ambiguous=EARLIER) == instants[0]
            assert resolve_local_time(local, ambiguous=LATER) == instants[1]
        wall += timedelta(minutes=30)


@settings(max_examples=300, deadline=None, database=None)
@given(
    wall=st.datetimes(min_value=naive(1990, 1, 1), max_value=naive(2037, 12, 31)),
    zone_id=st.sampled_from(ZONES),
)
def test_lenient_policies_always_resolve(wall: datetime, zone_id: str) -> None:
    """With SHIFT_FORWARD and EARLIER every wall time resolves; an existing one round-trips."""
    tz = ZoneInfo(zone_id)
    local = LocalTime(
        year=wall.year, month=wall.month, day=wall.day, hours=wall.hour, minutes=wall.minute,
        seconds=wall.second, nanos=wall.microsecond * 1000, time_zone=zone_id,
    )  # fmt: skip
    at = resolve_local_time(local, nonexistent=SHIFT, ambiguous=EARLIER)
    assert at.tzinfo is UTC
    back = at.astimezone(tz).replace(tzinfo=None)
    exists = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
    if exists:
        assert back == wall
    else:  # moved forward by the length of the gap
        gap = (wall.replace(tzinfo=tz, fold=1).utcoffset() or timedelta(0)) - (
            wall.replace(tzinfo=tz, fold=0).utcoffset() or timedelta(0)
        )
        assert back == wall + abs(gap)


# --- skew, horizon, window ---------------------------------------------------------------------


def test_naive_instant_is_refused() -> None:
    """A naive datetime is refused: it names no instant."""
    with pytest.raises(TimeError, match="naive"):
        check_instant(
            datetime(2026, 6, 2),  # noqa: DTZ001 - the point of the test
            now=NOW,
            skew_tolerance=DEFAULT_SKEW_TOLERANCE,
            horizon=DEFAULT_HORIZON,
        )


def test_past_beyond_tolerance_is_refused_with_amounts() -> None:
    """Two hours in the past is refused, saying how far back and what the tolerance is."""
    with pytest.raises(TimeError, match="is 2h in the past; the clock-skew tolerance is 60s"):
        check_instant(
            NOW - timedelta(hours=2),
            now=NOW,
            skew_tolerance=DEFAULT_SKEW_TOLERANCE,
            horizon=DEFAULT_HORIZON,
        )


@pytest.mark.parametrize("ago", [timedelta(0), timedelta(seconds=1), timedelta(seconds=60)])
def test_past_within_tolerance_means_now(ago: timedelta) -> None:
    """Up to the tolerance in the past (inclusive) is read as now."""
    got = check_instant(
        NOW - ago, now=NOW, skew_tolerance=DEFAULT_SKEW_TOLERANCE, horizon=DEFAULT_HORIZON
    )
    assert got == NOW


def test_just_past_tolerance_is_refused() -> None:
    """One microsecond beyond the tolerance is refused."""
    with pytest.raises(TimeError):
        check_instant(
            NOW - timedelta(seconds=60, microseconds=1),
            now=NOW,
            skew_tolerance=DEFAULT_SKEW_TOLERANCE,
            horizon=DEFAULT_HORIZON,
        )


def test_horizon_bounds_the_future() -> None:
    """The horizon itself is allowed; one second beyond it is refused, naming the horizon."""
    at = NOW + DEFAULT_HORIZON
    assert check_instant(at, now=NOW, skew_tolerance=timedelta(0), horizon=DEFAULT_HORIZON) == at
    with pytest.raises(TimeError, match="beyond the horizon of 400d"):
        check_instant(
            at + timedelta(seconds=1), now=NOW, skew_tolerance=timedelta(0), horizon=DEFAULT_HORIZON
        )


def test_future_instant_is_normalised_to_utc() -> None:
    """An aware instant in another offset comes back as the same instant in UTC."""
    at = datetime(2026, 6, 2, 17, 0, tzinfo=timezone(timedelta(hours=5)))
    got = check_instant(at, now=NOW, skew_tolerance=timedelta(0), horizon=DEFAULT_HORIZON)
    assert got == at
    assert got.tzinfo is UTC


def test_naive_now_is_a_programming_error() -> None:
    """A naive `now` is a bug in the caller, not bad input: plain ValueError, not TimeError."""
    with pytest.raises(ValueError, match="now must be") as info:
        check_instant(
            NOW,
            now=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
            skew_tolerance=timedelta(0),
            horizon=DEFAULT_HORIZON,
        )
    assert not isinstance(info.value, TimeError)


@settings(max_examples=200, deadline=None, database=None)
@given(
    offset=st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=500)),
    tolerance=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=1)),
)
def test_accepted_instants_lie_between_now_and_the_horizon(
    offset: timedelta, tolerance: timedelta
) -> None:
    """Whatever is accepted lies in [now, now + horizon]; whatever is refused lies outside."""
    try:
        got = check_instant(
            NOW + offset, now=NOW, skew_tolerance=tolerance, horizon=DEFAULT_HORIZON
        )
    except TimeError:
        assert offset < -tolerance or offset > DEFAULT_HORIZON
    else:
        assert NOW <= got <= NOW + DEFAULT_HORIZON
        assert -tolerance <= offset <= DEFAULT_HORIZON


def test_window_bounds() -> None:
    """A window is 0 to max_window; negative or longer windows are refused."""
    assert check_window(timedelta(0)) == timedelta(0)
    assert check_window(timedelta(days=31)) == timedelta(days=31)
    with pytest.raises(TimeError, match="negative"):
        check_window(timedelta(seconds=-1))
    with pytest.raises(TimeError, match="at most 2h"):
        check_window(timedelta(hours=3), max_window=timedelta(hours=2))
    assert window_end(NOW, timedelta(hours=2)) == NOW + timedelta(hours=2)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=60), "60s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=400), "400d"),
        (timedelta(days=2, seconds=5), "2d5s"),
        (timedelta(seconds=-90), "-90s"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    """Durations in messages are short and exact."""
    assert format_duration(delta) == text


def test_format_utc() -> None:
    """Instants in messages are ISO 8601 UTC with a Z, microseconds only when present."""
    assert format_utc(utc(2026, 3, 8, 7, 30)) == "2026-03-08T07:30:00Z"
    assert format_utc(datetime(2026, 3, 8, 2, 30, 0, 5, tzinfo=timezone(-timedelta(hours=5)))) == (
        "2026-03-08T07:30:00.000005Z"
    )
