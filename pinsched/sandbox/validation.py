"""Request validation for the sandbox, shaped like Pinterest API v5 (spec 5.23.0). Pure.

Owns: turning decoded JSON bodies and query strings into typed inputs, raising
`errors.ApiError` (400, code 1) the way the real API does. Messages follow the jsonschema style
Pinterest returns, ``Invalid request: <detail> - '<field>'``:

    'abc' does not match '^\\d+$' - 'board_id'
    'xxxx…' is too long (constraint: maxLength=100) - 'title'
    'url' is a required property - 'media_source'
    [...] is too short (constraint: minItems=2) - 'media_source.items'
    'image/gif' is not one of ['image/jpeg', 'image/png'] - 'media_source.content_type'

Nested fields are named with dots (``media_source.items.0.url``). Unknown fields are ignored.
Does not look at state (board ownership, sections) or fetch media: state.py does that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pinsched.sandbox.errors import invalid, invalid_url

DIGITS: Final = r"^\d+$"


def _full(pattern: str, value: str) -> bool:
    r"""Whether all of *value* matches *pattern* as JSON Schema means it: `$` is the very end
    (Python's `$` also matches before a final newline, so "123\n" would pass) and `\d` is
    0-9 only."""
    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value, re.ASCII) is not None


BASE64: Final = r"^[a-zA-Z0-9+/=]+$"
CONTENT_TYPES: Final = ("image/jpeg", "image/png")
SOURCE_TYPES: Final = (
    "image_base64",
    "image_url",
    "video_id",
    "multiple_image_base64",
    "multiple_image_urls",
    "pin_url",
)
PRIVACY: Final = ("PUBLIC", "PROTECTED", "SECRET")
COVER_MISSING: Final = (
    "a video Pin needs a cover image: set cover_image_url or cover_image_content_type "
    "(with cover_image_data) or cover_image_key_frame_time"
)

MediaKind = Literal["image", "carousel", "video"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SlideInput:
    """One carousel image (or a PATCH carousel slot) with its optional texts."""

    source: str  # the url, or a digest-able stand-in for base64 data ("" for PATCH slots)
    title: str | None = None
    description: str | None = None
    link: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInput:
    """A validated `media_source`."""

    kind: MediaKind
    is_standard: bool
    fetch_urls: tuple[str, ...]  # image URLs Pinterest would download (checked for magic words)
    sources: tuple[str, ...]  # what the renditions are derived from
    slides: tuple[SlideInput, ...] = ()
    cover_image_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PinCreateInput:
    """A validated `PinCreate` body."""

    board_id: str
    media: MediaInput
    board_section_id: str | None = None
    title: str | None = None
    description: str | None = None
    link: str | None = None
    alt_text: str | None = None
    dominant_color: str | None = None
    parent_pin_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PinUpdateInput:
    """A validated `PinUpdate` body; `fields` holds only the keys that were sent."""

    fields: Mapping[str, str | None]
    carousel_slots: tuple[SlideInput, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BoardCreateInput:
    """A validated `BoardCreate` body."""

    name: str
    description: str | None = None
    privacy: str = "PUBLIC"


_TEXT_LIMITS: Final = {"title": 100, "description": 800, "link": 2048, "alt_text": 500}


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _object(value: object, field: str | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(f"{value!r} is not of type 'object'", field)
    return value


def _string(
    obj: Mapping[str, Any],
    key: str,
    prefix: str = "",
    *,
    required: bool = False,
    nullable: bool = True,
    max_len: int | None = None,
    pattern: str | None = None,
    enum: tuple[str, ...] | None = None,
) -> str | None:
    field = _path(prefix, key)
    if key not in obj:
        if required:
            raise invalid(f"{key!r} is a required property", prefix or None)
        return None
    value = obj[key]
    if value is None:
        if nullable and not required:
            return None
        raise invalid("None is not of type 'string'", field)
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not of type 'string'", field)
    if max_len is not None and len(value) > max_len:
        raise invalid(f"{value!r} is too long (constraint: maxLength={max_len})", field)
    if pattern is not None and not _full(pattern, value):
        raise invalid(f"{value!r} does not match '{pattern}'", field)
    if enum is not None and value not in enum:
        raise invalid(f"{value!r} is not one of {list(enum)!r}", field)
    return value


def _boolean(obj: Mapping[str, Any], key: str, prefix: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise invalid(f"{value!r} is not of type 'boolean'", _path(prefix, key))
    return value


def _non_negative_int(obj: Mapping[str, Any], key: str, prefix: str) -> int | None:
    if key not in obj or obj[key] is None:
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{value!r} is not of type 'integer'", _path(prefix, key))
    if value < 0:
        raise invalid(f"{value} is less than the minimum of 0", _path(prefix, key))
    return value


def check_url(value: str | None) -> None:
    """Raise the "invalid URL" error unless *value* is None or an absolute http(s) URL."""
    if value is None:
        return
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise invalid_url()


def check_id(value: str, field: str) -> str:
    """Validate a numeric id from a path or query parameter."""
    if not _full(DIGITS, value):
        raise invalid(f"{value!r} does not match '{DIGITS}'", field)
    return value


def _items(obj: Mapping[str, Any], prefix: str) -> list[Mapping[str, Any]]:
    field = _path(prefix, "items")
    if "items" not in obj:
        raise invalid("'items' is a required property", prefix)
    items = obj["items"]
    if not isinstance(items, list):
        raise invalid(f"{items!r} is not of type 'array'", field)
    if len(items) < 2:
        raise invalid(f"{items!r} is too short (constraint: minItems=2)", field)
    if len(items) > 5:
        raise invalid(f"{items!r} is too long (constraint: maxItems=5)", field)
    return [_object(item, f"{field}.{i}") for i, item in enumerate(items)]


def _slide(item: Mapping[str, Any], prefix: str, source: str) -> SlideInput:
    link = _string(item, "link", prefix)
    check_url(link)
    return SlideInput(
        source=source,
        title=_string(item, "title", prefix),
        description=_string(item, "description", prefix),
        link=link,
    )


def parse_media_source(value: object) -> MediaInput:
    """Validate a `PinMediaSource` (all variants of the spec's oneOf)."""
    prefix = "media_source"
    src = _object(value, prefix)
    kind = _string(src, "source_type", prefix, required=True, enum=SOURCE_TYPES)
    if kind == "image_url":
        url = _string(src, "url", prefix, required=True)
        assert url is not None
        check_url(url)
        standard = _boolean(src, "is_standard", prefix, True)
        return MediaInput(kind="image", is_standard=standard, fetch_urls=(url,), sources=(url,))
    if kind == "image_base64":
        _string(src, "content_type", prefix, required=True, enum=CONTENT_TYPES)
        data = _string(src, "data", prefix, required=True, pattern=BASE64)
        assert data is not None
        standard = _boolean(src, "is_standard", prefix, True)
        return MediaInput(kind="image", is_standard=standard, fetch_urls=(), sources=(data[:64],))
    if kind in ("multiple_image_urls", "multiple_image_base64"):
        _non_negative_int(src, "index", prefix)
        slides: list[SlideInput] = []
        for i, item in enumerate(_items(src, prefix)):
            item_prefix = f"{prefix}.items.{i}"
            if kind == "multiple_image_urls":
                url = _string(item, "url", item_prefix, required=True)
                assert url is not None
                check_url(url)
                slides.append(_slide(item, item_prefix, url))
            else:
                _string(item, "content_type", item_prefix, required=True, enum=CONTENT_TYPES)
                data = _string(item, "data", item_prefix, required=True, pattern=BASE64)
                assert data is not None
                slides.append(_slide(item, item_prefix, data[:64]))
        fetch = tuple(s.source for s in slides) if kind == "multiple_image_urls" else ()
        return MediaInput(
            kind="carousel",
            is_standard=True,
            fetch_urls=fetch,
            sources=tuple(s.source for s in slides),
            slides=tuple(slides),
        )
    if kind == "video_id":
        media_id = _string(src, "media_id", prefix, required=True, pattern=DIGITS)
        assert media_id is not None
        cover_url = _string(src, "cover_image_url", prefix)
        check_url(cover_url)
        cover_type = _string(src, "cover_image_content_type", prefix, enum=CONTENT_TYPES)
        cover_data = _string(src, "cover_image_data", prefix, pattern=BASE64)
        key_frame = _non_negative_int(src, "cover_image_key_frame_time", prefix)
        if cover_url is None and key_frame is None and (cover_type is None or cover_data is None):
            raise invalid(COVER_MISSING, prefix)
        standard = _boolean(src, "is_standard", prefix, True)
        return MediaInput(
            kind="video",
            is_standard=standard,
            fetch_urls=(cover_url,) if cover_url else (),
            sources=(media_id,),
            cover_image_url=cover_url,
        )
    # pin_url: product Pins are a closed beta; the sandbox does not emulate them.
    raise invalid(f"{kind!r} is not supported by this sandbox", _path(prefix, "source_type"))


def _texts(body: Mapping[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, limit in _TEXT_LIMITS.items():
        if key in body:
            out[key] = _string(body, key, max_len=limit)
    check_url(out.get("link"))
    return out


def parse_pin_create(body: object) -> PinCreateInput:
    """Validate a `PinCreate` body; `board_id` and `media_source` are required in practice."""
    obj = _object(body, None)
    board_id = _string(obj, "board_id", required=True, pattern=DIGITS)
    section_id = _string(obj, "board_section_id", pattern=DIGITS)
    parent_pin_id = _string(obj, "parent_pin_id", pattern=DIGITS)
    _string(obj, "sponsor_id", pattern=DIGITS)
    dominant_color = _string(obj, "dominant_color")
    texts = _texts(obj)
    if "media_source" not in obj:
        raise invalid("'media_source' is a required property")
    media = parse_media_source(obj["media_source"])
    assert board_id is not None
    return PinCreateInput(
        board_id=board_id,
        board_section_id=section_id,
        media=media,
        dominant_color=dominant_color,
        parent_pin_id=parent_pin_id,
        title=texts.get("title"),
        description=texts.get("description"),
        link=texts.get("link"),
        alt_text=texts.get("alt_text"),
    )


def parse_pin_update(body: object) -> PinUpdateInput:
    """Validate a `PinUpdate` body; media cannot be changed."""
    obj = _object(body, None)
    fields: dict[str, str | None] = _texts(obj)
    if "board_id" in obj:
        fields["board_id"] = _string(obj, "board_id", nullable=False, pattern=DIGITS)
    if "board_section_id" in obj:
        fields["board_section_id"] = _string(obj, "board_section_id", pattern=DIGITS)
    slots: tuple[SlideInput, ...] | None = None
    if "carousel_slots" in obj and obj["carousel_slots"] is not None:
        raw = obj["carousel_slots"]
        if not isinstance(raw, list):
            raise invalid(f"{raw!r} is not of type 'array'", "carousel_slots")
        slots = tuple(
            _slide(_object(item, f"carousel_slots.{i}"), f"carousel_slots.{i}", "")
            for i, item in enumerate(raw)
        )
    return PinUpdateInput(fields=fields, carousel_slots=slots)


def parse_board_create(body: object) -> BoardCreateInput:
    """Validate a `BoardCreate` body (`name` required)."""
    obj = _object(body, None)
    name = _string(obj, "name", required=True)
    assert name is not None
    if not name.strip():
        raise invalid("'' is too short (constraint: minLength=1)", "name")
    privacy = _string(obj, "privacy", enum=PRIVACY) or "PUBLIC"
    return BoardCreateInput(name=name, description=_string(obj, "description"), privacy=privacy)


def parse_page_size(raw: str | None, *, default: int = 25, maximum: int = 250) -> int:
    """Validate the `page_size` query parameter (integer, 1..maximum)."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{raw!r} is not of type 'integer'", "page_size") from None
    if value < 1:
        raise invalid(f"{value} is less than the minimum of 1", "page_size")
    if value > maximum:
        raise invalid(f"{value} is greater than the maximum of {maximum}", "page_size")
    return value
