"""The account model: credentials, pacing policy and state. Pure: no I/O.

Tokens live here and in the store only; `__repr__` never shows them, and the API never returns
them.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinsched.core.slots import PostingSchedule


class AccountState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    NEEDS_REAUTH = "NEEDS_REAUTH"
    HELD = "HELD"


DEFAULT_WRITES_PER_MINUTE = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Pacing:
    """How fast an account publishes; 0 means no cap."""

    min_spacing: timedelta = timedelta(0)
    max_per_hour: int = 0
    max_per_day: int = 0
    writes_per_minute: int = DEFAULT_WRITES_PER_MINUTE

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_spacing_s": self.min_spacing.total_seconds(),
            "max_per_hour": self.max_per_hour,
            "max_per_day": self.max_per_day,
            "writes_per_minute": self.writes_per_minute,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pacing:
        return cls(
            min_spacing=timedelta(seconds=float(data.get("min_spacing_s", 0))),
            max_per_hour=int(data.get("max_per_hour", 0)),
            max_per_day=int(data.get("max_per_day", 0)),
            writes_per_minute=int(data.get("writes_per_minute", DEFAULT_WRITES_PER_MINUTE)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A Pinterest account pins are published with."""

    id: str
    display_name: str = ""
    access_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    access_expires_at: datetime | None = None
    pacing: Pacing = Pacing()
    paused: bool = False
    needs_reauth: bool = False
    state_reason: str = ""
    created_at: datetime
    updated_at: datetime
    version: int = 1
    #: When the refresh token lapses (from the last token response), if known.
    refresh_expires_at: datetime | None = None
    #: The lifetimes Pinterest gave the current tokens (seconds; 0 = not known yet).
    access_ttl_s: int = 0
    refresh_ttl_s: int = 0
    #: What Pinterest said about the account at the last verification.
    username: str = ""
    account_type: str = ""
    verified_at: datetime | None = None
    #: Business access: the ad account acting on the boards (Pinterest's `ad_account_id`).
    ad_account_id: str = ""
    #: Per-account Pinterest API base (e.g. Pinterest's API sandbox); "" = the daemon's.
    api_base: str = ""
    #: Why Pinterest refuses the whole account (e.g. code 29): publishing is held until cleared.
    hold_reason: str = ""
    #: When `account.reauth_soon` was announced for the current refresh token.
    reauth_warned_at: datetime | None = None
    #: The weekly posting slots `next_free_slot` fills (`pinsched.core.slots`).
    posting_schedule: PostingSchedule | None = None
    #: The scopes Pinterest granted the current tokens (its last token response); None while
    #: Pinterest has not said (tokens given by hand and never refreshed).
    scopes: tuple[str, ...] | None = None

    @property
    def state(self) -> AccountState:
        if self.needs_reauth:
            return AccountState.NEEDS_REAUTH
        if self.hold_reason:
            return AccountState.HELD
        if self.paused:
            return AccountState.PAUSED
        return AccountState.ACTIVE

    @property
    def can_publish(self) -> bool:
        return (
            not self.paused
            and not self.needs_reauth
            and not self.hold_reason
            and bool(self.access_token)
        )

    def replace(self, **changes: Any) -> Account:
        return dataclasses.replace(self, **changes)
