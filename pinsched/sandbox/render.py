"""JSON shapes of sandbox entities as Pinterest API v5 returns them. Pure: no I/O, no clock.

Owns: `Pin`, `Board`, `BoardSection` and `Account` response bodies, the timestamp format
(``2026-11-25T14:00:03``: UTC, no offset, like the real API) and fake ``i.pinimg.com``
renditions. Does not own the records themselves (state.py) or HTTP (server.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from pinsched.sandbox.validation import MediaKind, SlideInput

RENDITIONS: Final = (("150x150", 150, 150), ("400x300", 400, 300), ("600x", 600, 900))
CREATIVE_TYPES: Final[dict[MediaKind, str]] = {
    "image": "REGULAR",
    "carousel": "CAROUSEL",
    "video": "VIDEO",
}


@dataclass(slots=True, kw_only=True)
class Pin:
    """A stored pin. Mutable only through SandboxState."""

    id: str
    owner: str
    board_id: str
    board_section_id: str | None
    created_at: datetime
    media_kind: MediaKind
    is_standard: bool
    sources: tuple[str, ...]
    title: str | None = None
    description: str | None = None
    link: str | None = None
    alt_text: str | None = None
    dominant_color: str | None = None
    parent_pin_id: str | None = None
    slides: tuple[SlideInput, ...] = ()
    cover_image_url: str | None = None


@dataclass(slots=True, kw_only=True)
class Board:
    """A stored board; `pin_count` and `pins_modified_at` are kept current by SandboxState."""

    id: str
    owner: str
    name: str
    created_at: datetime
    pins_modified_at: datetime
    description: str | None = None
    privacy: str = "PUBLIC"
    pin_count: int = 0
    section_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """A stored board section."""

    id: str
    board_id: str
    name: str


def iso(moment: datetime) -> str:
    """Format an aware datetime the way Pinterest does: UTC, seconds, no offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def digest(*parts: str) -> str:
    """Return a stable 32-hex-digit digest of *parts* (used for fake media URLs and ids)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def image_sizes(key: str) -> dict[str, dict[str, Any]]:
    """Return an `ImageSize` object with fake i.pinimg.com URLs derived from *key*."""
    path = f"{key[:2]}/{key[2:4]}/{key[4:6]}/{key}.jpg"
    sizes = {
        name: {"width": w, "height": h, "url": f"https://i.pinimg.com/{name}/{path}"}
        for name, w, h in RENDITIONS
    }
    sizes["1200x"] = {"width": 1200, "height": 1800, "url": f"https://i.pinimg.com/1200x/{path}"}
    return sizes


def cover_key(pin: Pin) -> str:
    """Return the digest behind *pin*'s first image (its board thumbnail)."""
    if pin.media_kind == "carousel":
        return digest(pin.id, "0", pin.slides[0].source)
    return digest(pin.id, "0", *pin.sources)


def media_json(pin: Pin) -> dict[str, Any]:
    """Return the `PinMedia` object for *pin* (`media_source` itself is never echoed)."""
    if pin.media_kind == "carousel":
        items = [
            {
                "item_type": "image",
                "title": slide.title,
                "description": slide.description,
                "link": slide.link,
                "images": image_sizes(digest(pin.id, str(i), slide.source)),
            }
            for i, slide in enumerate(pin.slides)
        ]
        return {"media_type": "multiple_images", "items": items}
    images = image_sizes(cover_key(pin))
    if pin.media_kind == "video":
        return {
            "media_type": "video",
            "images": images,
            "cover_image_url": images["1200x"]["url"],
            "video_url": None,
            "duration": None,
            "width": None,
            "height": None,
        }
    return {"media_type": "image", "images": images}


def pin_json(pin: Pin, *, viewer: str | None = None) -> dict[str, Any]:
    """Return the `Pin` response body; `is_owner` is relative to *viewer* (default: owner)."""
    return {
        "id": pin.id,
        "created_at": iso(pin.created_at),
        "link": pin.link,
        "title": pin.title,
        "description": pin.description,
        "dominant_color": pin.dominant_color,
        "alt_text": pin.alt_text,
        "creative_type": CREATIVE_TYPES[pin.media_kind],
        "board_id": pin.board_id,
        "board_section_id": pin.board_section_id,
        "board_owner": {"username": pin.owner},
        "is_owner": viewer is None or viewer == pin.owner,
        "media": media_json(pin),
        "parent_pin_id": pin.parent_pin_id,
        "is_standard": pin.is_standard,
        "has_been_promoted": False,
        "pin_metrics": None,
    }


def board_json(board: Board, *, cover_keys: list[str]) -> dict[str, Any]:
    """Return the `Board` response body; *cover_keys* are digests of its newest pins."""
    thumbs = [image_sizes(k)["150x150"]["url"] for k in cover_keys[:4]]
    return {
        "id": board.id,
        "created_at": iso(board.created_at),
        "board_pins_modified_at": iso(board.pins_modified_at),
        "name": board.name,
        "description": board.description,
        "collaborator_count": 0,
        "pin_count": board.pin_count,
        "follower_count": 0,
        "media": {
            "image_cover_url": image_sizes(cover_keys[0])["400x300"]["url"] if cover_keys else None,
            "pin_thumbnail_urls": thumbs,
        },
        "owner": {"username": board.owner},
        "privacy": board.privacy,
        "is_ads_only": False,
    }


def section_json(section: Section) -> dict[str, Any]:
    """Return the `BoardSection` response body."""
    return {"id": section.id, "name": section.name}


def account_json(username: str, *, board_count: int, pin_count: int) -> dict[str, Any]:
    """Return the `Account` body of GET /v5/user_account."""
    return {
        "account_type": "BUSINESS",
        "id": str(int(digest("user", username)[:15], 16)),
        "username": username,
        "about": "",
        "business_name": None,
        "profile_image": f"https://i.pinimg.com/600x600_R/{digest('avatar', username)}.jpg",
        "website_url": "",
        "board_count": board_count,
        "pin_count": pin_count,
        "follower_count": 0,
        "following_count": 0,
        "monthly_views": 0,
    }
