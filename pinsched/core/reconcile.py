"""Finding a pin whose create had an unknown outcome. Pure: no I/O, no clock reads.

Pinterest has no idempotency key, so after a timeout, a lost connection, a 5xx on a create, or a
crash while SUBMITTED, pinsched lists the board's recent pins (`GET /boards/{id}/pins`) before
anything is retried. `board_pins_modified_at` is never used to skip the listing: its semantics
are undocumented and reads may lag writes.

1. `candidates` keeps, page by page, the pins that could be the job's: on the same board and
   section, of the same media type (image / video / carousel, from `media.media_type`), not
   owned by another account (`is_owner: false`) nor by another job (the store's pin ids),
   created at or after the horizon (submission minus `SKEW`: Pinterest's times have second
   precision and come from another clock), and carrying the job's title, description, link and
   alt text once both sides are normalized (`norm_text`, `norm_link`: Pinterest trims text and
   may rewrite a link's scheme/host case or trailing slash).
2. `choose` decides: a job with text claims the earliest candidate (then the lowest id), so jobs
   with identical content claim distinct pins in creation order. Twins whose outcomes are all
   still unknown (`same_content`, all SUBMITTED) are ranked by submission: the k-th submitted
   takes the k-th candidate, or none yet (a later twin never takes the pin of an earlier one
   whose own look is still to come, which would leave that one to miss a pin landing late). A
   job whose text fields are all empty (`bare`) has only media and section to go on: it claims
   a lone candidate, and with several it claims none (`Ambiguous`), and the caller looks again,
   then asks the user.
3. `search_exhausted`: the listing order is not documented; paging stops only when a page is
   newest-first and reaches past the horizon (later pages are older still).

`media_source` is not echoed by Pinterest, so image URLs cannot be compared. Does not decide what
a result means for the job (the dispatcher does).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from pinsched.core.answers import parse_time
from pinsched.core.jobs import Carousel, ImageBase64, ImageUrl, PinSpec, Video
from pinsched.core.video import VideoAsset, VideoUrl

#: Pinterest's times have second precision and come from another clock: look this far back.
SKEW: Final = timedelta(minutes=5)

#: `PinMedia.media_type` (spec 5.23) → the kind of media a job sends.
MEDIA_TYPES: Final[Mapping[str, str]] = {
    "image": "image",
    "video": "video",
    "multiple_images": "carousel",
    "multiple_videos": "carousel",
    "multiple_mixed": "carousel",
}
#: `Pin.creative_type` → kind, used only when `media.media_type` is absent.
CREATIVE_TYPES: Final[Mapping[str, str]] = {
    "REGULAR": "image",
    "VIDEO": "video",
    "MAX_VIDEO": "video",
    "CAROUSEL": "carousel",
}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pin that could be the job's."""

    pin_id: str
    created_at: datetime

    @property
    def key(self) -> tuple[datetime, int, str]:
        return (self.created_at, *_id_key(self.pin_id))


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """Several pins could be a bare job's: none is claimed."""

    pin_ids: tuple[str, ...]


def horizon(submitted_at: datetime) -> datetime:
    """The earliest `created_at` a pin from a submission at *submitted_at* can carry."""
    return submitted_at - SKEW


def norm_text(value: object) -> str:
    """Text as Pinterest may store it: NFC, trimmed, runs of whitespace as one space."""
    if not isinstance(value, str):
        return ""
    return " ".join(unicodedata.normalize("NFC", value).split())


def norm_link(value: object) -> str:
    """A link compared the way Pinterest may rewrite it: trimmed, scheme and host in lower case,
    the default port and a trailing slash of the path dropped (query and fragment kept)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return ""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    host = (parts.hostname or "").lower()
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    if "@" in parts.netloc:
        host = f"{parts.netloc.rsplit('@', 1)[0]}@{host}"
    return urlunsplit(
        (parts.scheme.lower(), host, parts.path.rstrip("/"), parts.query, parts.fragment)
    )


def media_kind(pin: PinSpec) -> str:
    """`image`, `video` or `carousel`: what a job publishes."""
    match pin.media:
        case ImageUrl() | ImageBase64():
            return "image"
        case Video() | VideoUrl() | VideoAsset():
            return "video"
        case Carousel():
            return "carousel"


def candidate_kind(candidate: Mapping[str, Any]) -> str | None:
    """The kind of a listed pin, or None when Pinterest did not say."""
    media = candidate.get("media")
    if isinstance(media, Mapping) and isinstance(media.get("media_type"), str):
        return MEDIA_TYPES.get(media["media_type"], media["media_type"])
    creative = candidate.get("creative_type")
    return CREATIVE_TYPES.get(creative) if isinstance(creative, str) else None


def bare(pin: PinSpec) -> bool:
    """True when the job has no title, description, link nor alt text to match on."""
    return not any(norm_text(getattr(pin, f)) for f in ("title", "description", "link", "alt_text"))


def matches(pin: PinSpec, candidate: Mapping[str, Any]) -> bool:
    """Whether *candidate* (a Pinterest `Pin` JSON) could be *pin*: board, section, media type,
    ownership by the account, and the normalized text fields."""
    if candidate.get("is_owner") is False:
        return False
    kind = candidate_kind(candidate)
    if kind is not None and kind != media_kind(pin):
        return False
    if isinstance(pin.media, Carousel):
        media = candidate.get("media")
        items = media.get("items") if isinstance(media, Mapping) else None
        if isinstance(items, list) and items and len(items) != len(pin.media.items):
            return False
    return (
        str(candidate.get("board_id") or "") == pin.board_id
        and str(candidate.get("board_section_id") or "") == pin.board_section_id
        and norm_text(candidate.get("title")) == norm_text(pin.title)
        and norm_text(candidate.get("description")) == norm_text(pin.description)
        and norm_link(candidate.get("link")) == norm_link(pin.link)
        and norm_text(candidate.get("alt_text")) == norm_text(pin.alt_text)
    )


def candidates(
    pin: PinSpec,
    items: Iterable[Mapping[str, Any]],
    *,
    submitted_at: datetime,
    owned: set[str],
) -> list[Candidate]:
    """The pins of one listing page that could be *pin*'s (see the module docstring)."""
    since = horizon(submitted_at)
    out = []
    for c in items:
        created = parse_time(c.get("created_at"))
        pin_id = str(c.get("id") or "")
        if not pin_id or created is None or created < since or pin_id in owned:
            continue
        if matches(pin, c):
            out.append(Candidate(pin_id, created))
    return out


def same_content(a: PinSpec, b: PinSpec) -> bool:
    """Whether no listing could tell a pin of *a* from one of *b* (twins)."""
    return (
        a.board_id == b.board_id
        and a.board_section_id == b.board_section_id
        and media_kind(a) == media_kind(b)
        and all(
            norm_text(getattr(a, f)) == norm_text(getattr(b, f))
            for f in ("title", "description", "alt_text")
        )
        and norm_link(a.link) == norm_link(b.link)
    )


def choose(pin: PinSpec, found: Sequence[Candidate], *, rank: int = 0) -> str | Ambiguous | None:
    """The pin id to claim among *found* (all pages), `Ambiguous`, or None (no candidate for
    this job yet). *rank*: how many twins with an unknown outcome were submitted before it."""
    unique = sorted({c.pin_id: c for c in found}.values(), key=lambda c: c.key)
    if not unique:
        return None
    if bare(pin) and len(unique) > 1:
        return Ambiguous(tuple(c.pin_id for c in unique))
    return unique[rank].pin_id if rank < len(unique) else None


def pick(
    pin: PinSpec,
    items: Iterable[Mapping[str, Any]],
    *,
    submitted_at: datetime,
    owned: set[str],
) -> str | Ambiguous | None:
    """`choose` over one page: the id to claim, `Ambiguous`, or None."""
    return choose(pin, candidates(pin, items, submitted_at=submitted_at, owned=owned))


def search_exhausted(items: Sequence[Mapping[str, Any]], submitted_at: datetime) -> bool:
    """True when no later page can hold the pin: this page is newest-first and its oldest pin is
    older than the horizon."""
    since = horizon(submitted_at)
    times = [parse_time(i.get("created_at")) for i in items]
    if not times or any(t is None for t in times):
        return False
    known = [t for t in times if t is not None]
    newest_first = all(a >= b for a, b in pairwise(known))
    return newest_first and known[-1] < since


def _id_key(pin_id: str) -> tuple[int, str]:
    return (int(pin_id), "") if pin_id.isdigit() else (0, pin_id)
