"""Small pure pieces of talking to Pinterest on behalf of one account: the token grant's
outcomes (`TokenGrant`, `RefreshFailed`, re-exported by `pinterest.client`), where its calls go
(`Route`: its own API base, its business-access `ad_account_id`), what a token response says
about the refresh token's lifetime and the token's scopes, and what rate-limit headers say
about the remaining quota.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pinsched.core.jobs import JobError


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in_s: int
    #: The new refresh token's lifetime in seconds (None when the answer did not say).
    refresh_expires_in_s: int | None = None
    #: The scopes Pinterest says the token has (None when the answer did not say).
    scopes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class RefreshFailed:
    """The refresh-token grant was refused (`permanent`) or could not be tried (transient).
    `client_refused`: Pinterest refused the app's own client credentials (HTTP 401 at the token
    endpoint), which is no fault of the account."""

    error: JobError
    permanent: bool
    client_refused: bool = False


#: An epoch timestamp is larger than this; a smaller X-RateLimit-Reset is seconds from now.
_EPOCH_THRESHOLD: Final = 1e9


@dataclass(frozen=True, slots=True)
class Route:
    """Where one account's calls go: its id (for `on_quota`), API base ("" = the client's) and
    business-access `ad_account_id` ("" = none)."""

    account_id: str
    base: str = ""
    ad_account_id: str = ""


def refresh_lifetime_s(body: Mapping[str, Any], now: datetime) -> int | None:
    """The refresh token's lifetime from a token response: `refresh_token_expires_in`, else
    `refresh_token_expires_at` (epoch seconds) minus *now*; None when neither is usable."""
    raw = body.get("refresh_token_expires_in")
    try:
        if raw is not None:
            return max(0, int(raw))
        at = body.get("refresh_token_expires_at")
        if at is not None:
            return max(0, int(float(at) - now.timestamp()))
    except (TypeError, ValueError):
        return None
    return None


def parse_scopes(raw: object) -> tuple[str, ...] | None:
    """The scopes of a token response's `scope` (comma- or space-separated, as Pinterest and
    OAuth write it), sorted; None when the answer has no `scope` string."""
    if not isinstance(raw, str):
        return None
    return tuple(sorted({s for s in re.split(r"[,\s]+", raw) if s}))


def quota_headers(headers: Mapping[str, str], now: datetime) -> tuple[float, float] | None:
    """`(remaining, seconds to reset)` when the answer carries both `x-ratelimit-remaining` and
    `x-ratelimit-reset` (lower-case names; the reset in seconds from now or as an epoch
    timestamp), else None: without a reset there is nothing to spread the rest over. Pure."""
    try:
        remaining = float(headers.get("x-ratelimit-remaining", "").strip())
        reset = float(headers.get("x-ratelimit-reset", "").strip())
    except ValueError:
        return None
    if reset > _EPOCH_THRESHOLD:
        reset -= now.timestamp()
    return max(0.0, remaining), max(0.0, reset)


class Routes:
    """The `Route` of each account, by the bearer token its calls carry."""

    def __init__(self) -> None:
        self._by_token: dict[str, Route] = {}

    def set(self, token: str, route: Route | None) -> None:
        """Send calls made with *token* along *route* (None: forget the token)."""
        if route is None:
            self._by_token.pop(token, None)
        else:
            self._by_token[token] = route

    def target(
        self, base_url: str, token: str, path: str, params: Mapping[str, str] | None
    ) -> tuple[str, Mapping[str, str] | None, str]:
        """`(url, query parameters, account id)` of a call to *path* made with *token*."""
        route = self._by_token.get(token)
        if route is None:
            return f"{base_url}{path}", params, ""
        base = route.base.rstrip("/") if route.base else base_url
        if route.ad_account_id:
            params = {**(params or {}), "ad_account_id": route.ad_account_id}
        return f"{base}{path}", params, route.account_id
