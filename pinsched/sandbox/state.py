"""The sandbox's in-memory world: users, OAuth clients and tokens, boards, sections, pins.

Pure: no I/O and no clock reads; every time-dependent operation takes `now` (aware UTC).
Operations raise `errors.ApiError` exactly where the real API answers with an error.

Token rules (documented behaviour of this sandbox):
- an access token is valid while ``now < expires_at``; `expire_access_token` sets
  ``expires_at = now``;
- a refresh rotates: the response carries a NEW refresh token and the old one stops working at
  once; access tokens issued earlier stay valid until their own expiry;
- refresh tokens last 60 days from issue ("continuous refresh");
- both lifetimes are settings (`access_ttl_s`, `refresh_ttl_s`; short ones for tests) and every
  token response says them (`expires_in`, `refresh_token_expires_in`, `…_expires_at`);
- `trial_app`: the app has Trial access, so pin writes answer 403 code 29 (use the API sandbox).

Paging: board pins are listed newest first (highest id first) with a keyset bookmark, so
concurrent creates never shift a page; boards and sections page by offset. Bookmarks are opaque
URL-safe base64 strings.

Eventual consistency (documented behaviour of this sandbox): a pin may land later than its create
request (`land_after_s`, the `late_create` fault): its `created_at` is the landing time. Reads
(`GET /pins/{id}`, board pin listings) see a pin only `read_lag_s` after it landed; writes
(PATCH, DELETE) and the admin API see every pin at once. Text fields are stored trimmed and links
with a lower-case scheme and host (`rewrite.py`), as Pinterest may do.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from pinsched.sandbox import errors
from pinsched.sandbox.errors import ApiError
from pinsched.sandbox.media import MediaBook
from pinsched.sandbox.render import Board, Pin, Section, digest
from pinsched.sandbox.rewrite import stored_link, stored_text
from pinsched.sandbox.validation import (
    BoardCreateInput,
    MediaInput,
    PinCreateInput,
    PinUpdateInput,
    SlideInput,
)

ACCESS_TOKEN_TTL_S: Final = 30 * 86400
REFRESH_TOKEN_TTL_S: Final = 60 * 86400
DEFAULT_SCOPE: Final = "boards:read,boards:write,pins:read,pins:write,user_accounts:read"
FIRST_PIN_ID: Final = 813000000000000001
FIRST_BOARD_ID: Final = 549755813000000001

T = TypeVar("T")


@dataclass(slots=True, kw_only=True)
class AccessToken:
    """A bearer token and the user it authenticates."""

    token: str
    username: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshToken:
    """A refresh token; deleted from the state when rotated or revoked."""

    token: str
    username: str
    expires_at: datetime
    scope: str = DEFAULT_SCOPE


def encode_bookmark(*parts: str) -> str:
    """Return an opaque bookmark for *parts*."""
    return base64.urlsafe_b64encode(":".join(parts).encode()).decode().rstrip("=")


def decode_bookmark(raw: str, kind: str, scope: str) -> str:
    """Return the position stored in *raw*, checking it was issued for *kind*/*scope*."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != kind or parts[1] != scope or not parts[2].isdigit():
        raise errors.invalid(f"{raw!r} is not a valid bookmark", "bookmark")
    return parts[2]


def _offset_page(
    items: Sequence[T], page_size: int, bookmark: str | None, kind: str, scope: str
) -> tuple[list[T], str | None]:
    start = int(decode_bookmark(bookmark, kind, scope)) if bookmark else 0
    page = list(items[start : start + page_size])
    end = start + len(page)
    return page, (encode_bookmark(kind, scope, str(end)) if end < len(items) else None)


def check_media(media: MediaInput) -> None:
    """Emulate Pinterest fetching the images: magic words in a URL trigger media errors."""
    for url in media.fetch_urls:
        if "sandbox-too-small" in url:
            raise errors.image_too_small()
        if "sandbox-broken" in url:
            raise errors.image_broken()
        if "sandbox-unfetchable" in url:
            raise errors.image_unfetchable()


class SandboxState:
    """Everything the sandbox knows. Not thread-safe; used from one event loop."""

    def __init__(self, *, seed: int = 0, read_lag_s: float = 0.0) -> None:
        self._seed = seed
        self.read_lag_s = read_lag_s
        self.access_ttl_s = ACCESS_TOKEN_TTL_S
        self.refresh_ttl_s = REFRESH_TOKEN_TTL_S
        self.trial_app = False
        self.media = MediaBook()
        self.reset()

    def reset(self) -> None:
        """Forget every user, client, token, board, section and pin."""
        self._rng = random.Random(self._seed)
        self.users: set[str] = set()
        self.clients: dict[str, str] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.boards: dict[str, Board] = {}
        self.sections: dict[str, Section] = {}
        self.pins: dict[str, Pin] = {}  # insertion order == creation order
        self._next_pin = FIRST_PIN_ID
        self._next_board = FIRST_BOARD_ID
        self.media.reset()

    # ----------------------------------------------------------------- seeding (no API errors)

    def add_user(
        self,
        username: str,
        *,
        access_token: str,
        now: datetime,
        refresh_token: str | None = None,
        access_expires_in_s: int | None = None,
    ) -> None:
        """Add (or extend) a user with a bearer token and optionally a refresh token."""
        self.users.add(username)
        ttl = self.access_ttl_s if access_expires_in_s is None else access_expires_in_s
        expires_at = now + timedelta(seconds=ttl)
        self.access_tokens[access_token] = AccessToken(
            token=access_token, username=username, expires_at=expires_at
        )
        if refresh_token is not None:
            self.refresh_tokens[refresh_token] = RefreshToken(
                token=refresh_token,
                username=username,
                expires_at=now + timedelta(seconds=self.refresh_ttl_s),
            )

    def add_board(self, username: str, board_id: str, name: str, *, now: datetime) -> Board:
        """Add a board owned by *username*; re-adding the same board renames it."""
        if username not in self.users:
            raise ValueError(f"unknown user {username!r}")
        if not board_id.isdigit():
            raise ValueError(f"board id must be digits: {board_id!r}")
        existing = self.boards.get(board_id)
        if existing is not None:
            if existing.owner != username:
                raise ValueError(f"board {board_id} belongs to {existing.owner!r}")
            existing.name = name or existing.name
            return existing
        board = Board(
            id=board_id,
            owner=username,
            name=name or f"Board {board_id}",
            created_at=now,
            pins_modified_at=now,
        )
        self.boards[board_id] = board
        return board

    def add_section(self, board_id: str, section_id: str, name: str = "") -> Section:
        """Add a section to an existing board."""
        board = self.boards.get(board_id)
        if board is None:
            raise ValueError(f"unknown board {board_id!r}")
        if not section_id.isdigit():
            raise ValueError(f"section id must be digits: {section_id!r}")
        section = Section(id=section_id, board_id=board_id, name=name or f"Section {section_id}")
        self.sections[section_id] = section
        if section_id not in board.section_ids:
            board.section_ids.append(section_id)
        return section

    def set_client(self, client_id: str, client_secret: str) -> None:
        """Register OAuth app credentials accepted by /oauth/token."""
        self.clients[client_id] = client_secret

    # --------------------------------------------------------------------------- tokens

    def authenticate(self, token: str | None, now: datetime) -> str | None:
        """Return the username for a valid, unexpired bearer *token*, else None."""
        record = self.access_tokens.get(token) if token else None
        if record is None or now >= record.expires_at:
            return None
        return record.username

    def expire_access_token(self, token: str, now: datetime) -> None:
        """Make *token* expired from *now* on (KeyError if unknown)."""
        record = self.access_tokens[token]
        record.expires_at = min(record.expires_at, now)

    def revoke_refresh_token(self, token: str) -> None:
        """Make *token* unusable (KeyError if unknown)."""
        del self.refresh_tokens[token]

    def check_client(self, client_id: str, client_secret: str) -> bool:
        """Return whether the Basic credentials belong to a registered client."""
        return client_id in self.clients and self.clients[client_id] == client_secret

    def _token(self, prefix: str) -> str:
        return f"{prefix}{self._rng.getrandbits(160):040x}"

    def refresh(self, refresh_token: str, now: datetime) -> dict[str, Any]:
        """Rotate *refresh_token*; return an `OauthAccessTokenResponseRefresh` body."""
        old = self.refresh_tokens.get(refresh_token)
        if old is None or now >= old.expires_at:
            raise errors.invalid_refresh_token()
        del self.refresh_tokens[refresh_token]
        access = self._token("pina_")
        new = RefreshToken(
            token=self._token("pinr_"),
            username=old.username,
            expires_at=now + timedelta(seconds=self.refresh_ttl_s),
            scope=old.scope,
        )
        self.refresh_tokens[new.token] = new
        self.access_tokens[access] = AccessToken(
            token=access,
            username=old.username,
            expires_at=now + timedelta(seconds=self.access_ttl_s),
        )
        return {
            "access_token": access,
            "refresh_token": new.token,
            "response_type": "refresh_token",
            "token_type": "bearer",
            "expires_in": self.access_ttl_s,
            "refresh_token_expires_in": self.refresh_ttl_s,
            "refresh_token_expires_at": int(new.expires_at.timestamp()),
            "scope": new.scope,
        }

    # --------------------------------------------------------------------------- boards

    def owned_board(self, username: str, board_id: str) -> Board:
        """Return *board_id* if *username* owns it, else raise 404 code 40."""
        board = self.boards.get(board_id)
        if board is None or board.owner != username:
            raise errors.board_not_found()
        return board

    def _check_section(self, board: Board, section_id: str | None) -> None:
        if section_id is not None and section_id not in board.section_ids:
            raise errors.section_not_found()

    def create_board(self, username: str, body: BoardCreateInput, now: datetime) -> Board:
        """Create a board with a fresh id for *username*."""
        while str(self._next_board) in self.boards:
            self._next_board += 1
        board = self.add_board(username, str(self._next_board), body.name, now=now)
        board.description = body.description
        board.privacy = body.privacy
        return board

    def boards_page(
        self, username: str, page_size: int, bookmark: str | None
    ) -> tuple[list[Board], str | None]:
        """Return one page of *username*'s boards in creation order."""
        mine = [b for b in self.boards.values() if b.owner == username]
        return _offset_page(mine, page_size, bookmark, "boards", username)

    def sections_page(
        self, username: str, board_id: str, page_size: int, bookmark: str | None
    ) -> tuple[list[Section], str | None]:
        """Return one page of a board's sections."""
        board = self.owned_board(username, board_id)
        sections = [self.sections[s] for s in board.section_ids]
        return _offset_page(sections, page_size, bookmark, "sections", board_id)

    def visible(self, pin: Pin, now: datetime) -> bool:
        """Whether reads at *now* see *pin* (landed at least `read_lag_s` ago)."""
        return now >= pin.created_at + timedelta(seconds=self.read_lag_s)

    def newest_pins(self, board_id: str, now: datetime | None = None) -> list[Pin]:
        """Return the pins on *board_id* (sections included), newest first; with *now*, only
        those reads see at that time."""
        on_board = [
            p
            for p in self.pins.values()
            if p.board_id == board_id and (now is None or self.visible(p, now))
        ]
        return sorted(on_board, key=lambda p: int(p.id), reverse=True)

    def board_pins_page(
        self,
        username: str,
        board_id: str,
        page_size: int,
        bookmark: str | None,
        now: datetime | None = None,
    ) -> tuple[list[Pin], str | None]:
        """Return one page of a board's pins, newest first, keyset-paged by pin id (with
        *now*: as reads see them then)."""
        self.owned_board(username, board_id)
        pins = self.newest_pins(board_id, now)
        if bookmark:
            before = int(decode_bookmark(bookmark, "pins", board_id))
            pins = [p for p in pins if int(p.id) < before]
        page = pins[:page_size]
        more = len(pins) > page_size
        return page, (encode_bookmark("pins", board_id, page[-1].id) if more else None)

    # ----------------------------------------------------------------------------- pins

    def _touch(self, board_id: str, delta: int, now: datetime) -> None:
        board = self.boards[board_id]
        board.pin_count += delta
        board.pins_modified_at = now

    def create_pin(
        self, username: str, body: PinCreateInput, now: datetime, land_after_s: float = 0.0
    ) -> Pin:
        """Create a pin (board, then section, then media checks, like the real API); it lands
        (`created_at`) *land_after_s* after *now*."""
        board = self.owned_board(username, body.board_id)
        self._check_section(board, body.board_section_id)
        check_media(body.media)
        if body.media.kind == "video":
            self.media.check_ready(username, body.media.sources[0], now)
        pin_id = str(self._next_pin)
        self._next_pin += 1
        pin = Pin(
            id=pin_id,
            owner=username,
            board_id=board.id,
            board_section_id=body.board_section_id,
            created_at=now + timedelta(seconds=land_after_s),
            media_kind=body.media.kind,
            is_standard=body.media.is_standard,
            sources=body.media.sources,
            slides=body.media.slides,
            cover_image_url=body.media.cover_image_url,
            title=stored_text(body.title),
            description=stored_text(body.description),
            link=stored_link(body.link),
            alt_text=stored_text(body.alt_text),
            dominant_color=body.dominant_color or f"#{digest(pin_id, 'color')[:6].upper()}",
            parent_pin_id=body.parent_pin_id,
        )
        self.pins[pin_id] = pin
        self._touch(board.id, +1, now)
        return pin

    def get_pin(
        self, username: str, pin_id: str, *, update: bool = False, now: datetime | None = None
    ) -> Pin:
        """Return *pin_id*: 404 code 50 if missing (or, for a read at *now*, not visible yet),
        403 code 29 if another user's."""
        pin = self.pins.get(pin_id)
        if pin is None or (now is not None and not self.visible(pin, now)):
            raise errors.pin_not_found()
        if pin.owner != username:
            raise errors.pin_forbidden(update=update)
        return pin

    def update_pin(self, username: str, pin_id: str, body: PinUpdateInput, now: datetime) -> Pin:
        """Apply a PinUpdate; moving boards clears the section unless one is given."""
        pin = self.get_pin(username, pin_id, update=True)
        fields = dict(body.fields)
        target_id = fields.pop("board_id", None) or pin.board_id
        target = self.owned_board(username, target_id)
        moved = target.id != pin.board_id
        section = pin.board_section_id if not moved else None
        if "board_section_id" in fields:
            section = fields.pop("board_section_id")
        self._check_section(target, section)
        slides = pin.slides
        if body.carousel_slots is not None:
            slides = self._apply_slots(pin, body.carousel_slots)
        for key, value in fields.items():
            setattr(pin, key, value)
        pin.slides = slides
        pin.board_section_id = section
        if moved:
            self._touch(pin.board_id, -1, now)
            pin.board_id = target.id
            self._touch(target.id, +1, now)
        return pin

    @staticmethod
    def _apply_slots(pin: Pin, slots: Sequence[SlideInput]) -> tuple[SlideInput, ...]:
        if pin.media_kind != "carousel":
            raise errors.invalid(
                "carousel_slots can only be set on a carousel Pin", "carousel_slots"
            )
        if len(slots) > len(pin.slides):
            raise errors.invalid(
                f"{len(slots)} slots given but the Pin has {len(pin.slides)} images",
                "carousel_slots",
            )
        merged = list(pin.slides)
        for i, slot in enumerate(slots):
            merged[i] = dataclasses.replace(
                merged[i], title=slot.title, description=slot.description, link=slot.link
            )
        return tuple(merged)

    def delete_pin(self, username: str, pin_id: str, now: datetime) -> None:
        """Delete *pin_id* (same errors as get)."""
        pin = self.get_pin(username, pin_id)
        del self.pins[pin_id]
        self._touch(pin.board_id, -1, now)

    def pins_of(self, *, board_id: str | None = None) -> list[Pin]:
        """Return all pins (optionally of one board) in creation order."""
        return [p for p in self.pins.values() if board_id is None or p.board_id == board_id]

    def user_pin_count(self, username: str) -> int:
        """Return how many pins *username* owns."""
        return sum(1 for p in self.pins.values() if p.owner == username)


__all__ = ["AccessToken", "ApiError", "Board", "Pin", "RefreshToken", "SandboxState", "Section"]
