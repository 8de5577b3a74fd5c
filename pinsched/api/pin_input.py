"""Pins and local times *from* proto, as given: what `api.validation` builds once a request has
passed its checks. Pure: no I/O, no clock reads. The other direction, and timestamps, durations
and states both ways, is `api.convert`."""

from __future__ import annotations

from google.type import datetime_pb2  # type: ignore[import-untyped, unused-ignore]

from pinsched.api import video_convert
from pinsched.api.fields import join_path
from pinsched.core.errors import InvalidArgument
from pinsched.core.jobs import (
    Carousel,
    CarouselItem,
    ImageBase64,
    ImageUrl,
    LocalTime,
    MediaSource,
    PinSpec,
    Video,
)
from pinsched.v1 import job_pb2


def pin_from_proto(pin: job_pb2.Pin, *, field: str = "pin") -> PinSpec:
    """The `PinSpec` of *pin*, as given: call it on a pin `validation.check_pin` accepted.

    Only a missing media source (nothing to build) raises `InvalidArgument`.
    """
    source = pin.media_source
    which = source.WhichOneof("source") if pin.HasField("media_source") else None
    media: MediaSource
    if which == "image_url":
        media = ImageUrl(url=source.image_url.url)
    elif which == "image_base64":
        image = source.image_base64
        media = ImageBase64(content_type=image.content_type, data=image.data)
    elif which == "multiple_image_urls":
        carousel = source.multiple_image_urls
        media = Carousel(
            items=tuple(
                CarouselItem(url=i.url, title=i.title, description=i.description, link=i.link)
                for i in carousel.items
            ),
            index=carousel.index,
        )
    elif which == "video_id":
        video = source.video_id
        cover = video.WhichOneof("cover")
        media = Video(
            media_id=video.media_id,
            cover_image_url=video.cover_image_url if cover == "cover_image_url" else "",
            cover_image_key_frame_time=(
                video.cover_image_key_frame_time if cover == "cover_image_key_frame_time" else None
            ),
        )
    elif which in ("video_url", "video_asset"):
        media = video_convert.from_source(source, which)
    else:
        raise InvalidArgument.one(join_path(field, "media_source"), "required")
    return PinSpec(
        board_id=pin.board_id,
        media=media,
        board_section_id=pin.board_section_id,
        title=pin.title,
        description=pin.description,
        link=pin.link,
        alt_text=pin.alt_text,
        dominant_color=pin.dominant_color,
    )


def local_time_from_proto(dt: datetime_pb2.DateTime) -> LocalTime:
    """The `LocalTime` of *dt* as given (`timing.resolve_local_time` checks it).

    A `utc_offset` keeps its whole seconds; with neither offset nor zone both stay unset.
    """
    fields = {
        "year": dt.year, "month": dt.month, "day": dt.day, "hours": dt.hours,
        "minutes": dt.minutes, "seconds": dt.seconds, "nanos": dt.nanos,
    }  # fmt: skip
    which = dt.WhichOneof("time_offset")
    if which == "utc_offset":
        return LocalTime(**fields, utc_offset_s=dt.utc_offset.seconds)
    if which == "time_zone":
        return LocalTime(**fields, time_zone=dt.time_zone.id)
    return LocalTime(**fields)
