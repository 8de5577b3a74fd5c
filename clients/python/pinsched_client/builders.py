"""Pure helpers that build pinsched request messages from Python values.

Owns: `pin()`, `at()`, `local_time()`, `duration()`, `schedule_request()`. No I/O, no clock
reads: a naive datetime is refused rather than guessed. Parsing human-written text (durations,
offsets, state names) lives in `pinsched_client.text`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2
from google.type import datetime_pb2

from pinsched.v1 import job_pb2, scheduler_pb2

__all__ = ["at", "duration", "local_time", "pin", "schedule_request"]


def duration(value: timedelta | float) -> duration_pb2.Duration:
    """Return a protobuf Duration for a timedelta or a number of seconds."""
    td = value if isinstance(value, timedelta) else timedelta(seconds=value)
    out = duration_pb2.Duration()
    out.FromTimedelta(td)
    return out


def at(when: datetime) -> timestamp_pb2.Timestamp:
    """Return a Timestamp for an aware datetime; a naive one is refused (its instant is unknown)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()}: give a time zone or a UTC offset")
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


def local_time(
    wall: datetime,
    *,
    time_zone: str | None = None,
    utc_offset: timedelta | None = None,
) -> datetime_pb2.DateTime:
    """Return a wall-clock `google.type.DateTime` in an IANA zone or at a fixed UTC offset.

    *wall* must be naive (it is a reading of a clock on the wall); exactly one of *time_zone* and
    *utc_offset* is required. The daemon resolves it, applying the DST policies of the request.
    """
    if wall.tzinfo is not None:
        raise ValueError("local_time takes a naive wall-clock time; use at() for an instant")
    if (time_zone is None) == (utc_offset is None):
        raise ValueError("give exactly one of time_zone and utc_offset")
    out = datetime_pb2.DateTime(
        year=wall.year,
        month=wall.month,
        day=wall.day,
        hours=wall.hour,
        minutes=wall.minute,
        seconds=wall.second,
        nanos=wall.microsecond * 1000,
    )
    if time_zone is not None:
        out.time_zone.id = time_zone
    else:
        assert utc_offset is not None
        out.utc_offset.CopyFrom(duration(utc_offset))
    return out


def pin(
    board_id: str,
    *,
    title: str = "",
    description: str = "",
    link: str = "",
    alt_text: str = "",
    board_section_id: str = "",
    dominant_color: str = "",
    image_url: str | None = None,
    image_base64: bytes | None = None,
    content_type: str = "image/jpeg",
    image_urls: Sequence[str] | None = None,
    carousel_index: int = 0,
    video_id: str | None = None,
    cover_image_url: str | None = None,
    cover_image_key_frame_time: int | None = None,
    video_url: str | None = None,
    video_asset_id: str | None = None,
) -> job_pb2.Pin:
    """Return a Pin; at most one media source: an image URL, image bytes, a carousel, a video
    uploaded to Pinterest (`video_id`), a video URL the daemon stages (`video_url`) or a video
    uploaded to the daemon (`video_asset_id`, from `upload_media`).

    The daemon validates the limits (title ≤ 100 characters, 2-5 carousel images, ...); this only
    refuses combinations that cannot be expressed.
    """
    given = [
        x is not None
        for x in (image_url, image_base64, image_urls, video_id, video_url, video_asset_id)
    ]
    if sum(given) > 1:
        raise ValueError(
            "give at most one of image_url, image_base64, image_urls, video_id, "
            "video_url and video_asset_id"
        )
    out = job_pb2.Pin(
        board_id=board_id,
        board_section_id=board_section_id,
        title=title,
        description=description,
        link=link,
        alt_text=alt_text,
        dominant_color=dominant_color,
    )
    media = out.media_source
    if image_url is not None:
        media.image_url.url = image_url
    elif image_base64 is not None:
        media.image_base64.content_type = content_type
        media.image_base64.data = image_base64
    elif image_urls is not None:
        media.multiple_image_urls.items.extend(job_pb2.CarouselItem(url=u) for u in image_urls)
        media.multiple_image_urls.index = carousel_index
    elif video_id is not None:
        media.video_id.media_id = video_id
        if cover_image_url is not None:
            media.video_id.cover_image_url = cover_image_url
        elif cover_image_key_frame_time is not None:
            media.video_id.cover_image_key_frame_time = cover_image_key_frame_time
    elif video_url is not None or video_asset_id is not None:
        video: job_pb2.VideoUrl | job_pb2.VideoAsset
        if video_url is not None:
            video = media.video_url
            video.url = video_url
        else:
            video = media.video_asset
            video.asset_id = str(video_asset_id)
        video.SetInParent()
        if cover_image_url is not None:
            video.cover_image_url = cover_image_url
        elif cover_image_key_frame_time is not None:
            video.cover_image_key_frame_time = cover_image_key_frame_time
    return out


def schedule_request(
    account_id: str,
    pin: job_pb2.Pin,
    *,
    scheduled_at: datetime | None = None,
    local: datetime_pb2.DateTime | None = None,
    window: timedelta | None = None,
    retry_for: timedelta | None = None,
    request_id: str | None = None,
    nonexistent: scheduler_pb2.NonexistentTimePolicy.ValueType = (
        scheduler_pb2.NONEXISTENT_TIME_POLICY_UNSPECIFIED
    ),
    ambiguous: scheduler_pb2.AmbiguousTimePolicy.ValueType = (
        scheduler_pb2.AMBIGUOUS_TIME_POLICY_UNSPECIFIED
    ),
) -> scheduler_pb2.SchedulePinRequest:
    """Return a SchedulePinRequest at an instant or a local time; a fresh uuid4 `request_id`."""
    if (scheduled_at is None) == (local is None):
        raise ValueError("give exactly one of scheduled_at and local")
    out = scheduler_pb2.SchedulePinRequest(
        request_id=request_id or str(uuid.uuid4()),
        account_id=account_id,
        pin=pin,
        nonexistent_time_policy=nonexistent,
        ambiguous_time_policy=ambiguous,
    )
    if scheduled_at is not None:
        out.scheduled_at.CopyFrom(at(scheduled_at))
    else:
        assert local is not None
        out.local_time.CopyFrom(local)
    if window is not None:
        out.delivery_window.CopyFrom(duration(window))
    if retry_for is not None:
        out.retry_for.CopyFrom(duration(retry_for))
    return out
