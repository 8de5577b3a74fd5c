"""The API's input rules for posting schedules, `next_free_slot` and board groups.

Pure: no I/O, no clock reads (`now` is a parameter). Reports every problem as a field violation
under the request's paths, like `pinsched.api.validation`, which calls in here.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Final, Protocol

from pinsched.api import convert
from pinsched.core import boards, slots
from pinsched.core import times as timing
from pinsched.core.errors import FieldViolation, InvalidArgument
from pinsched.v1 import account_pb2, scheduler_pb2

MAX_BOARD_INTERVAL: Final = timedelta(days=90)

ScheduleRequest = scheduler_pb2.SchedulePinRequest | scheduler_pb2.PreviewScheduleRequest


class _Out(Protocol):
    """What `pinsched.api.validation.Violations` offers that this module uses."""

    def add(self, path: str, description: str) -> None: ...


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def posting_schedule_from_proto(
    msg: account_pb2.PostingSchedule, path: str
) -> slots.PostingSchedule | None:
    """The schedule *msg* at *path*; None for an empty message (no schedule); `InvalidArgument`
    naming every bad field."""
    if not msg.slots and not msg.time_zone.id and not msg.max_per_slot:
        return None
    problems: list[tuple[str, str]] = []
    try:
        timing.zone(msg.time_zone.id)
    except timing.TimeError as e:
        problems.append((_join(path, "time_zone.id"), e.message))
    if not 1 <= len(msg.slots) <= slots.MAX_RULES:
        problems.append(
            (
                _join(path, "slots"),
                f"1 to {slots.MAX_RULES} slots, got {len(msg.slots)}; e.g. "
                "{days: [MONDAY, FRIDAY], time: {hours: 9}}",
            )
        )
    if not 0 <= msg.max_per_slot <= slots.MAX_PER_SLOT:
        problems.append(
            (
                _join(path, "max_per_slot"),
                f"must be 1 to {slots.MAX_PER_SLOT} (0 means 1), got {msg.max_per_slot}",
            )
        )
    rules: list[slots.SlotRule] = []
    for i, item in enumerate(msg.slots):
        at = _join(path, f"slots[{i}]")
        days = list(item.days)
        if not days:
            problems.append((_join(at, "days"), "at least one day, e.g. MONDAY"))
        bad = [d for d in days if not 1 <= d <= 7]
        if bad:
            problems.append((_join(at, "days"), f"days are MONDAY to SUNDAY (1-7), got {bad[0]}"))
        elif len(set(days)) != len(days):
            problems.append((_join(at, "days"), "a day is listed twice"))
        t = item.time
        if not item.HasField("time"):
            problems.append((_join(at, "time"), "required: the local time, e.g. {hours: 9}"))
        elif not (
            0 <= t.hours <= 23 and 0 <= t.minutes <= 59 and 0 <= t.seconds <= 59 and t.nanos == 0
        ):
            problems.append(
                (
                    _join(at, "time"),
                    "hours 0-23, minutes 0-59, seconds 0-59 and no nanos; got "
                    f"{t.hours:02d}:{t.minutes:02d}:{t.seconds:02d}.{t.nanos}",
                )
            )
        else:
            rules.append(slots.SlotRule(frozenset(days), time(t.hours, t.minutes, t.seconds)))
    if problems:
        raise InvalidArgument([FieldViolation(p, d) for p, d in problems])
    return slots.PostingSchedule(
        time_zone=msg.time_zone.id, rules=tuple(rules), max_per_slot=msg.max_per_slot or 1
    )


def next_free_slot_instant(
    out: _Out,
    prefix: str,
    req: ScheduleRequest,
    *,
    now: datetime,
    skew_tolerance: timedelta,
    horizon: timedelta,
) -> datetime | None:
    """The `not_before` of a `next_free_slot` request (now when unset), checked like any time."""
    path = _join(prefix, "next_free_slot.not_before")
    if (
        req.HasField("delivery_window")
        and convert.duration_problem(req.delivery_window) is None
        and convert.duration_from_proto(req.delivery_window, field="") != timedelta(0)
    ):
        out.add(
            _join(prefix, "delivery_window"),
            "a slot is an exact time: next_free_slot takes no delivery window",
        )
    if not req.next_free_slot.HasField("not_before"):
        return now
    ts = req.next_free_slot.not_before
    problem = convert.timestamp_problem(ts)
    if problem is not None:
        out.add(path, problem)
        return None
    try:
        return timing.check_instant(
            convert.timestamp_from_proto(ts, field=path),
            now=now,
            skew_tolerance=skew_tolerance,
            horizon=horizon,
        )
    except timing.TimeError as e:
        out.add(path, e.message)
        return None


def group_from_proto(
    out: _Out, prefix: str, req: ScheduleRequest
) -> tuple[tuple[str, ...], timedelta]:
    """`also_boards` and `board_interval`, checked (at most 9 distinct other boards, an interval
    of at least an hour when there are any)."""
    also = tuple(req.also_boards)
    path = _join(prefix, "also_boards")
    if len(also) > boards.MAX_ALSO_BOARDS:
        out.add(path, f"at most {boards.MAX_ALSO_BOARDS} more boards, got {len(also)}")
    for i, board in enumerate(also):
        if not board.isascii() or not board.isdigit() or len(board) > 19:
            out.add(f"{path}[{i}]", f"must be a Pinterest board id: 1-19 digits; got {board!r}")
        elif board == req.pin.board_id or board in also[:i]:
            out.add(f"{path}[{i}]", f"board {board} is already in the group")
    ipath = _join(prefix, "board_interval")
    interval = timedelta(0)
    if req.HasField("board_interval"):
        problem = convert.duration_problem(req.board_interval)
        if problem is not None:
            out.add(ipath, problem)
            return also, interval
        interval = convert.duration_from_proto(req.board_interval, field=ipath)
    if also and not boards.MIN_BOARD_INTERVAL <= interval <= MAX_BOARD_INTERVAL:
        out.add(
            ipath,
            "required with also_boards: 1h to 90 days (Tailwind recommends 7 days, "
            f"604800s); got {timing.format_duration(interval)}",
        )
    elif not also and interval:
        out.add(ipath, "only with also_boards")
    return also, interval


def update_not_before(
    request: scheduler_pb2.UpdateJobRequest, *, now: datetime, skew: timedelta, horizon: timedelta
) -> datetime:
    """The `not_before` of an UpdateJob to `next_free_slot` (now when unset)."""
    if not request.next_free_slot.HasField("not_before"):
        return now
    path = "next_free_slot.not_before"
    try:
        return timing.check_instant(
            convert.timestamp_from_proto(request.next_free_slot.not_before, field=path),
            now=now,
            skew_tolerance=skew,
            horizon=horizon,
        )
    except timing.TimeError as e:
        raise InvalidArgument.one(path, e.message) from None


def free_slots_request(
    request: scheduler_pb2.ListFreeSlotsRequest,
    *,
    now: datetime,
    skew: timedelta,
    horizon: timedelta,
) -> tuple[str, datetime, int]:
    """The account, `not_before` (now when unset) and count (default 10) of ListFreeSlots."""
    problems: list[FieldViolation] = []
    if not request.account_id:
        problems.append(FieldViolation("account_id", "required: the account"))
    if not 0 <= request.count <= 100:
        problems.append(
            FieldViolation("count", f"must be 1 to 100 (0 means 10), got {request.count}")
        )
    not_before = now
    if request.HasField("not_before"):
        try:
            not_before = timing.check_instant(
                convert.timestamp_from_proto(request.not_before, field="not_before"),
                now=now,
                skew_tolerance=skew,
                horizon=horizon,
            )
        except timing.TimeError as e:
            problems.append(FieldViolation("not_before", e.message))
        except InvalidArgument as e:
            problems.extend(e.violations)
    if problems:
        raise InvalidArgument(problems)
    return request.account_id, not_before, request.count or 10
