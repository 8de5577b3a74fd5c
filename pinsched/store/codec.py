"""JSON encoding of domain values for the store's TEXT columns, and microsecond timestamps.

Pure: no I/O. The store is the only caller; keeping the encoding here keeps `store.py` about SQL.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

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
from pinsched.core.video import VideoAsset, VideoUrl

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(when: datetime) -> int:
    """Aware datetime → integer microseconds since the epoch."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def opt_us(when: datetime | None) -> int | None:
    return None if when is None else to_us(when)


def opt_dt(us: int | None) -> datetime | None:
    return None if us is None else from_us(us)


def td_us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def media_to_dict(media: MediaSource) -> dict[str, Any]:
    match media:
        case ImageUrl(url=url):
            return {"image_url": {"url": url}}
        case ImageBase64(content_type=ct, sha256=digest, size=size):
            # The bytes live in the store's media table, once per content hash.
            return {"image_base64": {"content_type": ct, "sha256": digest, "size": size}}
        case Carousel(items=items, index=index):
            return {
                "multiple_image_urls": {
                    "items": [
                        {
                            "url": i.url,
                            "title": i.title,
                            "description": i.description,
                            "link": i.link,
                        }
                        for i in items
                    ],
                    "index": index,
                }
            }
        case Video(media_id=mid, cover_image_url=cover, cover_image_key_frame_time=kft):
            return {
                "video_id": {
                    "media_id": mid,
                    "cover_image_url": cover,
                    "cover_image_key_frame_time": kft,
                }
            }
        case VideoUrl(url=url, cover_image_url=cover, cover_image_key_frame_time=kft):
            return {
                "video_url": {
                    "url": url,
                    "cover_image_url": cover,
                    "cover_image_key_frame_time": kft,
                }
            }
        case VideoAsset(asset_id=asset, cover_image_url=cover, cover_image_key_frame_time=kft):
            return {
                "video_asset": {
                    "asset_id": asset,
                    "cover_image_url": cover,
                    "cover_image_key_frame_time": kft,
                }
            }
    raise TypeError(f"unknown media {media!r}")


def media_from_dict(data: dict[str, Any]) -> MediaSource:
    ((kind, body),) = data.items()
    if kind == "image_url":
        return ImageUrl(url=body["url"])
    if kind == "image_base64":
        if "data" in body:  # written before images were stored apart: bytes inline
            return ImageBase64(
                content_type=body["content_type"], data=base64.b64decode(body["data"])
            )
        return ImageBase64(
            content_type=body["content_type"], sha256=body["sha256"], size=int(body["size"])
        )
    if kind == "multiple_image_urls":
        return Carousel(items=tuple(CarouselItem(**i) for i in body["items"]), index=body["index"])
    if kind == "video_id":
        return Video(**body)
    if kind == "video_url":
        return VideoUrl(**body)
    if kind == "video_asset":
        return VideoAsset(**body)
    raise ValueError(f"unknown media kind {kind!r}")


def pin_to_json(pin: PinSpec) -> str:
    return json.dumps(
        {
            "board_id": pin.board_id,
            "board_section_id": pin.board_section_id,
            "title": pin.title,
            "description": pin.description,
            "link": pin.link,
            "alt_text": pin.alt_text,
            "dominant_color": pin.dominant_color,
            "media": media_to_dict(pin.media),
        },
        separators=(",", ":"),
    )


def pin_from_json(text: str) -> PinSpec:
    data = json.loads(text)
    media = media_from_dict(data.pop("media"))
    return PinSpec(media=media, **data)


def local_time_to_json(lt: LocalTime | None) -> str | None:
    if lt is None:
        return None
    return json.dumps(
        {
            "year": lt.year,
            "month": lt.month,
            "day": lt.day,
            "hours": lt.hours,
            "minutes": lt.minutes,
            "seconds": lt.seconds,
            "nanos": lt.nanos,
            "time_zone": lt.time_zone,
            "utc_offset_s": lt.utc_offset_s,
        },
        separators=(",", ":"),
    )


def local_time_from_json(text: str | None) -> LocalTime | None:
    return None if text is None else LocalTime(**json.loads(text))
