"""What an UpdateAccount does to the account as read (pausing and resuming are such updates):
the fields its mask names, a new token clearing what the old one's trouble left, a new route
(`api_base`, `ad_account_id`) lifting a hold. Pure; the servicer converts the request's fields
to domain values first."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from pinsched.core.accounts import Account, Pacing

#: How long a new access token given without its expiry is assumed to live.
ASSUMED_ACCESS_LIFETIME: Final = timedelta(days=30)
_PACING_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Pacing))


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUpdate:
    """A validated UpdateAccount: the mask and, per field, its new domain value (`pacing` for
    every `pacing` path, `access_expires_at` for `access_token_expire_time`)."""

    paths: Sequence[str]
    values: Mapping[str, Any]


def update_account(old: Account, update: AccountUpdate, *, now: datetime) -> Account:
    """*old* with *update* applied, one version later."""
    changes: dict[str, Any] = {}
    for p in update.paths:
        if p == "pacing":
            changes["pacing"] = update.values["pacing"]
        elif p.startswith("pacing."):
            name = p.split(".", 1)[1]
            base = changes.get("pacing", old.pacing)
            changes["pacing"] = Pacing(
                **{
                    **{f: getattr(base, f) for f in _PACING_FIELDS},
                    name: getattr(update.values["pacing"], name),
                }
            )
        elif p == "access_token_expire_time":
            changes["access_expires_at"] = update.values["access_expires_at"]
        else:
            changes[p] = update.values[p]
    if "access_token" in changes and "access_token_expire_time" not in update.paths:
        changes["access_expires_at"] = now + ASSUMED_ACCESS_LIFETIME
    if "access_token" in changes or "refresh_token" in changes:
        changes.update(
            needs_reauth=False,
            state_reason="",
            hold_reason="",
            access_ttl_s=0,
            refresh_ttl_s=0,
            refresh_expires_at=None,
            reauth_warned_at=None,
            verified_at=None,
        )
    elif ("api_base" in changes or "ad_account_id" in changes) and old.hold_reason:
        changes.update(hold_reason="", state_reason="")
    return old.replace(**changes, version=old.version + 1, updated_at=now)
