"""When an account's tokens need attention. Pure: no I/O, no clock reads (`now` is a parameter).

Pinterest's access tokens last 30 days and its refresh tokens 60 days; every refresh rotates both
("continuous refresh"). The keeper (`pinsched.accounts.keeper`) asks `next_action` what to do for an
account and when:

    VERIFY      the tokens are of unknown age (a new account, new credentials): ask Pinterest
                (`GET /v5/user_account`, and a refresh when client credentials are set)
    REFRESH     less than half of either token's lifetime, as Pinterest gave it, remains; the
                instant is moved earlier by a jitter of up to a tenth of the remaining half
                (at most `MAX_JITTER_S`), fixed per account, so accounts created together do not
                all refresh in the same second
    WARN        the token that keeps the account alive lapses within `REAUTH_WARNING` and cannot
                be refreshed: announce `account.reauth_soon` once
    LAPSED      that token has lapsed and cannot be refreshed: the account needs re-authorisation

An account that can be refreshed lives as long as its refresh token; one that cannot (no refresh
token, no client credentials, or Pinterest refused the refresh) lives as long as its access token.
An access token's expiry that nobody told us is taken as 30 days from when it was given (an
upper bound: it cannot have been issued later), so its end can be announced too.

Also here: which Pinterest error codes refuse a whole account rather than one pin
(`account_refusal`).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pinsched.core.accounts import Account
from pinsched.core.jobs import JobError

#: `account.reauth_soon` goes out this long before an unrefreshable token lapses.
REAUTH_WARNING: Final = timedelta(days=7)
#: The largest jitter applied to a refresh instant.
MAX_JITTER_S: Final = 6 * 3600.0
#: Pinterest codes on a create that mean "this app or account cannot publish", not "this pin":
#: 29 (not permitted; a Trial app outside the API sandbox), 3 (the token lacks the scopes).
ACCOUNT_REFUSAL_CODES: Final = frozenset({3, 29})


class Action(enum.Enum):
    VERIFY = "verify"
    REFRESH = "refresh"
    WARN = "warn"
    LAPSED = "lapsed"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Plan:
    """Do *action* at *at* (None: nothing is ever due, e.g. no expiry is known)."""

    action: Action
    at: datetime | None


def jitter_fraction(account_id: str) -> float:
    """A number in [0, 1), uniform over account ids and fixed for one."""
    digest = hashlib.sha256(f"refresh\x00{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def refresh_at(account: Account) -> datetime | None:
    """When *account* should be refreshed: when less than half of the access or the refresh
    token's lifetime remains (only lifetimes Pinterest told us count), minus the jitter."""
    candidates: list[datetime] = []
    for expires, ttl in (
        (account.access_expires_at, account.access_ttl_s),
        (account.refresh_expires_at, account.refresh_ttl_s),
    ):
        if expires is not None and ttl > 0:
            half = ttl / 2.0
            jitter = min(MAX_JITTER_S, half / 10.0) * jitter_fraction(account.id)
            candidates.append(expires - timedelta(seconds=half + jitter))
    return min(candidates) if candidates else None


def lapses_at(account: Account, *, refreshable: bool) -> datetime | None:
    """When the token that keeps *account* alive lapses (None: unknown)."""
    return account.refresh_expires_at if refreshable else account.access_expires_at


def next_action(
    account: Account, now: datetime, *, can_refresh: bool, refresh_refused: bool = False
) -> Plan:
    """What the keeper should do for *account* next, and when.

    *can_refresh*: a refresh token and the app's client credentials are there; *refresh_refused*:
    the last refresh was refused (Pinterest will not refresh this account any more)."""
    if not account.access_token or account.needs_reauth:
        return Plan(Action.NONE, None)
    refreshable = can_refresh and not refresh_refused
    if account.verified_at is None or (refreshable and account.access_ttl_s <= 0):
        return Plan(Action.VERIFY, now)
    if refreshable:
        at = refresh_at(account)
        if at is not None:
            return Plan(Action.REFRESH, at)
    lapse = lapses_at(account, refreshable=refreshable)
    if lapse is None:
        return Plan(Action.NONE, None)
    if now >= lapse:
        return Plan(Action.LAPSED, now)
    warn_at = lapse - REAUTH_WARNING
    if account.reauth_warned_at is None:
        return Plan(Action.WARN, max(now, warn_at))
    return Plan(Action.LAPSED, lapse)


def account_refusal(error: JobError) -> bool:
    """Whether Pinterest's answer to a create refuses the whole account (hold it) rather than
    this pin (fail the job)."""
    return error.http_status in (401, 403) and error.pinterest_code in ACCOUNT_REFUSAL_CODES
