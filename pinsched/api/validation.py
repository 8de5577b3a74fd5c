"""The API's input rules (DESIGN §2, §4): every check a request passes before it reaches the core.

Pure: no I/O, no clock reads (`now` is a parameter). Turns request protos into domain values
(`schedule_spec_from_proto`, `validate_pin`, `pacing_violations`) and reports *every* problem at
once as one `InvalidArgument` whose field paths use proto field names, under an optional prefix
(`requests[3].pin.title`). Field-level rules (ids, lengths, URLs, `Violations`) are
`pinsched.api.fields`; time rules live in `pinsched.core.times`; domain → proto conversion lives
in `pinsched.api.convert`. Text is kept exactly as given: nothing is trimmed or rewritten.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from google.protobuf import duration_pb2, timestamp_pb2
from google.type import datetime_pb2  # type: ignore[import-untyped, unused-ignore]

from pinsched.api import convert, pin_input, video_validation
from pinsched.api import slots as api_slots
from pinsched.api.account_convert import build_pacing as build_pacing
from pinsched.api.account_convert import pacing_violations as pacing_violations
from pinsched.api.convert import duration_from_proto as duration_from_proto
from pinsched.api.convert import timestamp_from_proto as timestamp_from_proto
from pinsched.api.fields import Violations as Violations
from pinsched.api.fields import account_id_violation as account_id_violation
from pinsched.api.fields import (
    check_digits,
    check_len,
    check_request_id,
    check_url,
    join_path,
    show,
)
from pinsched.api.pin_input import pin_from_proto as pin_from_proto
from pinsched.core import retry
from pinsched.core import times as timing
from pinsched.core.jobs import LocalTime, PinSpec, ScheduleSpec
from pinsched.ops.limits import IMAGE_MAX_BYTES as IMAGE_MAX_BYTES
from pinsched.ops.limits import UTC_OFFSET_MAX_S
from pinsched.v1 import job_pb2, scheduler_pb2

# Limits of Pinterest's PinCreate (spec 5.23.0), counted in characters (Python `len`).
TITLE_MAX: Final = 100
DESCRIPTION_MAX: Final = 800
LINK_MAX: Final = 2048
ALT_TEXT_MAX: Final = 500
IMAGE_CONTENT_TYPES: Final = ("image/jpeg", "image/png")
CAROUSEL_MIN_ITEMS: Final = 2
CAROUSEL_MAX_ITEMS: Final = 5

_COLOR: Final = re.compile(r"#[0-9a-fA-F]{6}")

_NONEXISTENT: Final[dict[int, timing.NonexistentPolicy]] = {
    scheduler_pb2.NONEXISTENT_TIME_POLICY_UNSPECIFIED: timing.NonexistentPolicy.REJECT,
    scheduler_pb2.NONEXISTENT_TIME_POLICY_REJECT: timing.NonexistentPolicy.REJECT,
    scheduler_pb2.NONEXISTENT_TIME_POLICY_SHIFT_FORWARD: timing.NonexistentPolicy.SHIFT_FORWARD,
}
_AMBIGUOUS: Final[dict[int, timing.AmbiguousPolicy]] = {
    scheduler_pb2.AMBIGUOUS_TIME_POLICY_UNSPECIFIED: timing.AmbiguousPolicy.REJECT,
    scheduler_pb2.AMBIGUOUS_TIME_POLICY_REJECT: timing.AmbiguousPolicy.REJECT,
    scheduler_pb2.AMBIGUOUS_TIME_POLICY_EARLIER: timing.AmbiguousPolicy.EARLIER,
    scheduler_pb2.AMBIGUOUS_TIME_POLICY_LATER: timing.AmbiguousPolicy.LATER,
}

ScheduleRequest = scheduler_pb2.SchedulePinRequest | scheduler_pb2.PreviewScheduleRequest


# --- the pin -----------------------------------------------------------------------------------


def check_pin(out: Violations, path: str, pin: job_pb2.Pin) -> None:
    """Add to *out* every violation of *pin* (a `Pin` message at *path*)."""
    check_digits(out, join_path(path, "board_id"), pin.board_id, what="board id", required=True)
    check_digits(
        out, join_path(path, "board_section_id"), pin.board_section_id, what="", required=False
    )
    check_len(out, join_path(path, "title"), pin.title, TITLE_MAX)
    check_len(out, join_path(path, "description"), pin.description, DESCRIPTION_MAX)
    check_url(out, join_path(path, "link"), pin.link, required=False)
    check_len(out, join_path(path, "alt_text"), pin.alt_text, ALT_TEXT_MAX)
    if pin.dominant_color and not _COLOR.fullmatch(pin.dominant_color):
        out.add(
            join_path(path, "dominant_color"),
            f"must be a hex colour like #6E7874; got {show(pin.dominant_color)}",
        )
    media_path = join_path(path, "media_source")
    which = pin.media_source.WhichOneof("source") if pin.HasField("media_source") else None
    if which is None:
        out.add(
            media_path,
            "required: exactly one of image_url, image_base64, multiple_image_urls, video_id, "
            "video_url, video_asset",
        )
        return
    source = pin.media_source
    variant = join_path(media_path, which)
    if which == "image_url":
        check_url(out, join_path(variant, "url"), source.image_url.url, required=True)
    elif which == "image_base64":
        image = source.image_base64
        if image.content_type not in IMAGE_CONTENT_TYPES:
            out.add(
                join_path(variant, "content_type"),
                f"must be image/jpeg or image/png; got {show(image.content_type)}",
            )
        if not image.data:
            out.add(join_path(variant, "data"), "required: the image bytes")
        elif len(image.data) > IMAGE_MAX_BYTES:
            out.add(join_path(variant, "data"), f"at most {IMAGE_MAX_BYTES} bytes")
    elif which == "multiple_image_urls":
        _check_carousel(out, variant, source.multiple_image_urls)
    elif which in ("video_url", "video_asset"):
        video_validation.check(out, variant, getattr(source, which))
    else:
        _check_video(out, variant, source.video_id)


def _check_carousel(out: Violations, path: str, carousel: job_pb2.MultipleImageUrls) -> None:
    items = carousel.items
    if not CAROUSEL_MIN_ITEMS <= len(items) <= CAROUSEL_MAX_ITEMS:
        out.add(
            join_path(path, "items"),
            f"a carousel has {CAROUSEL_MIN_ITEMS} to {CAROUSEL_MAX_ITEMS} items, got {len(items)}",
        )
    for i, item in enumerate(items):
        at = join_path(path, f"items[{i}]")
        check_url(out, join_path(at, "url"), item.url, required=True)
        check_len(out, join_path(at, "title"), item.title, TITLE_MAX)
        check_len(out, join_path(at, "description"), item.description, DESCRIPTION_MAX)
        check_url(out, join_path(at, "link"), item.link, required=False)
    if carousel.index < 0 or (items and carousel.index >= len(items)):
        out.add(
            join_path(path, "index"),
            f"must be 0 to {max(len(items) - 1, 0)} (an item of the carousel),"
            f" got {carousel.index}",
        )


def _check_video(out: Violations, path: str, video: job_pb2.VideoId) -> None:
    check_digits(
        out,
        join_path(path, "media_id"),
        video.media_id,
        what="media id from POST /v5/media",
        required=True,
    )
    cover = video.WhichOneof("cover")
    if cover is None:
        out.add(
            join_path(path, "cover_image_url"),
            "a video needs a cover: cover_image_url or cover_image_key_frame_time",
        )
    elif cover == "cover_image_url":
        check_url(out, join_path(path, "cover_image_url"), video.cover_image_url, required=True)
    elif video.cover_image_key_frame_time < 0:
        out.add(
            join_path(path, "cover_image_key_frame_time"),
            f"must be 0 or more seconds, got {video.cover_image_key_frame_time}",
        )


def validate_pin(pin: job_pb2.Pin, *, path: str = "pin") -> PinSpec:
    """The `PinSpec` of *pin*, or `InvalidArgument` naming every bad field under *path*."""
    out = Violations()
    check_pin(out, path, pin)
    out.raise_if_any()
    return pin_from_proto(pin, field=path)


# --- time --------------------------------------------------------------------------------------


def _timestamp(out: Violations, path: str, ts: timestamp_pb2.Timestamp) -> datetime | None:
    problem = convert.timestamp_problem(ts)
    if problem is not None:
        out.add(path, problem)
        return None
    return ts.ToDatetime(tzinfo=UTC)


def _duration(out: Violations, path: str, d: duration_pb2.Duration) -> timedelta | None:
    problem = convert.duration_problem(d)
    if problem is not None:
        out.add(path, problem)
        return None
    return convert.duration_from_proto(d, field=path)


def local_time_from_proto(
    out: Violations, path: str, dt: datetime_pb2.DateTime
) -> LocalTime | None:
    """The `LocalTime` of a `google.type.DateTime` at *path*, or None after adding why not.

    Field ranges are checked when it is resolved (`timing.resolve_local_time`).
    """
    which = dt.WhichOneof("time_offset")
    if which is None:
        out.add(path, "local_time needs time_zone or utc_offset")
        return None
    if which == "time_zone" and not dt.time_zone.id:
        out.add(join_path(path, "time_zone"), "an IANA time zone id is required, e.g. UTC")
        return None
    if which == "utc_offset" and dt.utc_offset.nanos:
        out.add(join_path(path, "utc_offset"), "must be a whole number of seconds")
        return None
    if which == "utc_offset" and abs(dt.utc_offset.seconds) > UTC_OFFSET_MAX_S:
        out.add(
            join_path(path, "utc_offset"),
            f"must be within ±18h (±{UTC_OFFSET_MAX_S} s), got {dt.utc_offset.seconds} s",
        )
        return None
    return pin_input.local_time_from_proto(dt)


def resolve_time(
    out: Violations,
    *,
    which: str | None,
    scheduled_at: timestamp_pb2.Timestamp,
    local_time: datetime_pb2.DateTime,
    nonexistent_policy: int = 0,
    ambiguous_policy: int = 0,
    prefix: str = "",
    now: datetime,
    skew_tolerance: timedelta,
    horizon: timedelta,
) -> tuple[datetime | None, LocalTime | None]:
    """The checked UTC instant, and the local time if given, of a `time` oneof set to *which*.

    *which* is `"scheduled_at"`, `"local_time"` or None (neither: a violation). Problems are added
    to *out* under *prefix* and give None.
    """
    if which is None:
        out.add(
            join_path(prefix, "scheduled_at"),
            "a time is required: scheduled_at, local_time or next_free_slot",
        )
        return None, None
    path = join_path(prefix, which)
    local: LocalTime | None = None
    if which == "scheduled_at":
        instant = _timestamp(out, path, scheduled_at)
    else:
        nonexistent = _NONEXISTENT.get(nonexistent_policy)
        ambiguous = _AMBIGUOUS.get(ambiguous_policy)
        if nonexistent is None:
            out.add(join_path(prefix, "nonexistent_time_policy"), "unknown value")
        if ambiguous is None:
            out.add(join_path(prefix, "ambiguous_time_policy"), "unknown value")
        local = local_time_from_proto(out, path, local_time)
        if local is None or nonexistent is None or ambiguous is None:
            return None, local
        try:
            instant = timing.resolve_local_time(local, nonexistent=nonexistent, ambiguous=ambiguous)
        except timing.TimeError as e:
            out.add(join_path(path, e.field) if e.field else path, e.message)
            return None, local
    if instant is None:
        return None, local
    try:
        checked = timing.check_instant(
            instant, now=now, skew_tolerance=skew_tolerance, horizon=horizon
        )
    except timing.TimeError as e:
        out.add(path, e.message)
        return None, local
    return checked, local


def window_from_proto(
    out: Violations, path: str, d: duration_pb2.Duration, *, max_window: timedelta
) -> timedelta | None:
    """The delivery window *d*, checked to be 0 ≤ window ≤ *max_window*."""
    window = _duration(out, path, d)
    if window is None:
        return None
    try:
        return timing.check_window(window, max_window=max_window)
    except timing.TimeError as e:
        out.add(path, e.message)
        return None


def retry_for_from_proto(out: Violations, path: str, msg: Any) -> timedelta | None:
    """`retry_for` of *msg* (a request or a Job): None when unset, or after adding why not."""
    value = _duration(out, path, msg.retry_for) if msg.HasField("retry_for") else None
    if value is not None and (problem := retry.retry_for_problem(value)):
        out.add(path, problem)
        return None
    return value


# --- requests ----------------------------------------------------------------------------------


def request_hash(req: ScheduleRequest) -> str:
    """sha256 (hex) of *req* serialized deterministically without `request_id` and
    `validate_only`: same content ⇒ same hash, whichever request type carries it, checked only
    or not."""
    canonical = scheduler_pb2.SchedulePinRequest()
    if isinstance(req, scheduler_pb2.SchedulePinRequest):
        if not (req.request_id or req.validate_only):  # already canonical
            return hashlib.sha256(req.SerializeToString(deterministic=True)).hexdigest()
        canonical.CopyFrom(req)  # one copy, not a serialize + parse round trip
    else:
        canonical.ParseFromString(req.SerializeToString(deterministic=True))
    canonical.ClearField("request_id")
    canonical.ClearField("validate_only")
    return hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()


def schedule_spec_from_proto(
    req: ScheduleRequest,
    *,
    now: datetime,
    skew_tolerance: timedelta,
    horizon: timedelta,
    max_window: timedelta = timing.DEFAULT_MAX_WINDOW,
    prefix: str = "",
) -> ScheduleSpec:
    """The validated `ScheduleSpec` of a SchedulePin/PreviewSchedule request, times in UTC.

    Raises one `InvalidArgument` naming every violation, paths under *prefix*.
    """
    out = Violations()
    if isinstance(req, scheduler_pb2.SchedulePinRequest):  # PreviewSchedule ignores request_id
        check_request_id(out, join_path(prefix, "request_id"), req.request_id)
    violation = account_id_violation(req.account_id, join_path(prefix, "account_id"))
    if violation is not None:
        out.items.append(violation)
    if req.HasField("pin"):
        check_pin(out, join_path(prefix, "pin"), req.pin)
    else:
        out.add(join_path(prefix, "pin"), "required: the pin to publish")
    which = req.WhichOneof("time")
    next_free: datetime | None = None
    local: LocalTime | None = None
    if which == "next_free_slot":  # the store picks the slot
        next_free = scheduled_at = api_slots.next_free_slot_instant(
            out, prefix, req, now=now, skew_tolerance=skew_tolerance, horizon=horizon
        )
    else:
        scheduled_at, local = resolve_time(
            out,
            which=which,
            scheduled_at=req.scheduled_at,
            local_time=req.local_time,
            nonexistent_policy=req.nonexistent_time_policy,
            ambiguous_policy=req.ambiguous_time_policy,
            prefix=prefix,
            now=now,
            skew_tolerance=skew_tolerance,
            horizon=horizon,
        )
    also_boards, board_interval = api_slots.group_from_proto(out, prefix, req)
    window: timedelta | None = timedelta(0)
    if req.HasField("delivery_window"):
        window = window_from_proto(
            out, join_path(prefix, "delivery_window"), req.delivery_window, max_window=max_window
        )
    retry_for = retry_for_from_proto(out, join_path(prefix, "retry_for"), req)
    out.raise_if_any()
    assert scheduled_at is not None
    assert window is not None
    return ScheduleSpec(
        account_id=req.account_id,
        pin=pin_from_proto(req.pin),
        scheduled_at=scheduled_at,
        window=window,
        local_time=local,
        request_id=req.request_id,
        request_hash=request_hash(req),
        retry_for=retry_for,
        next_free_slot=next_free,
        also_boards=also_boards,
        board_interval=board_interval,
    )
