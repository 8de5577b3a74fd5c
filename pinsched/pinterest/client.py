"""Pinterest API v5 client: turns HTTP into domain outcomes, in one place.

Outcomes of a write (`create_pin`, `delete_pin`, `update_pin`) are `pinterest.outcomes`
(re-exported here: callers use `pt.Delivered`, `pt.classify`, ...).

Per-account API base and `ad_account_id` follow the bearer token (`routes`, see `pinterest.oauth`);
rate-limit headers, when an answer has them, go to `on_quota` (account id, remaining, reset s).

Every failure keeps `x-pinterest-rid` (in `JobError.pinterest_request_id` and the
`pinterest_error` log line) for support tickets. One long-lived `aiohttp.ClientSession`; the base
URL is injected (production, Pinterest's sandbox and `pinsched sandbox` are just URLs). Reads
(`get_board`, `board_pins`) raise `ReadFailed`; the token grant answers `TokenGrant` or
`RefreshFailed`. Nothing here retries: the dispatcher decides.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import structlog

from pinsched.core.answers import AuthExpired as AuthExpired
from pinsched.core.answers import Delivered as Delivered
from pinsched.core.answers import Outcome as Outcome
from pinsched.core.answers import OutcomeUnknown as OutcomeUnknown
from pinsched.core.answers import RateLimited as RateLimited
from pinsched.core.answers import Rejected as Rejected
from pinsched.core.answers import SpamBlocked as SpamBlocked
from pinsched.core.answers import Unavailable as Unavailable
from pinsched.core.answers import classify as classify
from pinsched.core.answers import error_fields
from pinsched.core.answers import parse_time as parse_time
from pinsched.core.answers import pin_body as pin_body
from pinsched.core.jobs import (
    ErrorCategory,
    JobError,
    PinSpec,
)
from pinsched.core.ratehints import retry_after_s as retry_after_s
from pinsched.pinterest.oauth import RefreshFailed as RefreshFailed  # re-exported: callers use pt.*
from pinsched.pinterest.oauth import Routes, parse_scopes, quota_headers, refresh_lifetime_s
from pinsched.pinterest.oauth import TokenGrant as TokenGrant

log = structlog.get_logger("pinsched.pinterest")

#: Access-token lifetime assumed when a grant does not say (Pinterest: 30 days).
DEFAULT_ACCESS_TTL_S: Final = 30 * 86400


@dataclass(frozen=True, slots=True)
class BoardState:
    pin_count: int
    pins_modified_at: datetime | None


@dataclass(frozen=True, slots=True)
class PinPage:
    items: list[dict[str, Any]] = field(default_factory=list)
    bookmark: str | None = None


class ReadFailed(Exception):
    """A read (board, board pins) failed; the caller retries later."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(getattr(outcome, "error", outcome))


class PinterestClient:
    """Calls Pinterest API v5 at *base_url* with one long-lived session.

    `timeout_s` bounds a whole request; a write with no answer by then is `OutcomeUnknown`, and
    the dispatcher treats the same interval as the time a lost request may still be in flight.
    *now* is only used to read HTTP-date `Retry-After` headers.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(10.0, timeout_s))
        self._session = session
        self._own_session = session is None
        self._now = now or _utc_now
        self.routes = Routes()
        self.on_quota: Callable[[str, float, float], None] | None = None

    async def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=0),
                headers={"user-agent": "pinsched/0.1"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def _request(
        self,
        method: str,
        path: str,
        token: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        write: bool,
        timeout_s: float | None = None,
    ) -> Outcome:
        session = await self._sess()
        outcome: Outcome
        if not _HEADER_SAFE.fullmatch(token):  # unsendable: refresh or NEEDS_REAUTH, not stuck
            return AuthExpired(
                _net_error(
                    ErrorCategory.AUTH,
                    "the stored access token has spaces"
                    " or control characters; replace it (UpdateAccount)",
                )
            )
        url, params, account_id = self.routes.target(self.base_url, token, path, params)
        timeout = self._timeout if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with session.request(
                method,
                url,
                json=json_body,
                params=params,
                timeout=timeout,
                headers={"authorization": f"Bearer {token}"},
                allow_redirects=not write,
            ) as resp:
                body = _parse(await resp.read())
                headers = {k.lower(): v for k, v in resp.headers.items()}
                now = self._now()
                outcome = classify(resp.status, body, headers, write=write, now=now)
                quota = quota_headers(headers, now)
                if quota is not None and account_id and self.on_quota is not None:
                    self.on_quota(account_id, *quota)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Never connected, so nothing was sent: certainly not applied.
            outcome = Unavailable(_net_error(ErrorCategory.UNAVAILABLE, f"cannot connect: {exc}"))
        except TimeoutError as exc:
            outcome = _lost(
                write, f"no answer within {timeout_s or self.timeout_s:g} s ({type(exc).__name__})"
            )
        except aiohttp.ClientError as exc:  # lost after sending (disconnect, reset, bad answer)
            outcome = _lost(write, f"connection lost: {type(exc).__name__}: {exc}")
        if not isinstance(outcome, Delivered):
            e = outcome.error
            log.warning(
                "pinterest_error",
                method=method,
                path=path,
                outcome=type(outcome).__name__,
                http_status=e.http_status,
                pinterest_code=e.pinterest_code,
                message=e.message,
                pinterest_rid=e.pinterest_request_id,
            )
        return outcome

    async def create_pin(self, token: str, pin: PinSpec) -> Outcome:
        """`POST /pins`."""
        return await self._request("POST", "/pins", token, json_body=pin_body(pin), write=True)

    async def delete_pin(self, token: str, pin_id: str) -> Outcome:
        """`DELETE /pins/{id}` (a 404 means the pin is already gone)."""
        return await self._request("DELETE", f"/pins/{pin_id}", token, write=True)

    async def update_pin(self, token: str, pin_id: str, changes: Mapping[str, Any]) -> Outcome:
        """`PATCH /pins/{id}` with the `PinUpdate` fields in *changes*."""
        return await self._request(
            "PATCH", f"/pins/{pin_id}", token, json_body=dict(changes), write=True
        )

    async def get_board(self, token: str, board_id: str) -> BoardState:
        """`GET /boards/{id}`: its pin count and when its pins last changed."""
        out = await self._request("GET", f"/boards/{board_id}", token, write=False)
        if not isinstance(out, Delivered):
            raise ReadFailed(out)
        modified = out.pin.get("board_pins_modified_at")
        try:
            count = int(out.pin.get("pin_count") or 0)
        except (TypeError, ValueError):
            count = 0
        return BoardState(count, parse_time(modified))

    async def board_pins(
        self, token: str, board_id: str, *, bookmark: str | None = None, page_size: int = 100
    ) -> PinPage:
        """One page of `GET /boards/{id}/pins` (sections included)."""
        params = {"page_size": str(page_size)}
        if bookmark:
            params["bookmark"] = bookmark
        out = await self._request(
            "GET", f"/boards/{board_id}/pins", token, params=params, write=False
        )
        if not isinstance(out, Delivered):
            raise ReadFailed(out)
        items = out.pin.get("items") or []
        next_page = out.pin.get("bookmark")
        return PinPage(
            [dict(i) for i in items if isinstance(i, Mapping)],
            str(next_page) if next_page else None,
        )

    async def read(
        self,
        token: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Outcome:
        """A GET of *path* (`/boards/1`); `Delivered.pin` holds the JSON body."""
        return await self._request(
            "GET", path, token, params=params, write=False, timeout_s=timeout_s
        )

    async def user_account(self, token: str, *, timeout_s: float | None = None) -> Outcome:
        """`GET /user_account`: who the token belongs to (`username`, `account_type`)."""
        return await self._request("GET", "/user_account", token, write=False, timeout_s=timeout_s)

    async def refresh_token(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        base: str = "",
    ) -> TokenGrant | RefreshFailed:
        """The refresh-token grant (`POST {base}/oauth/token`, Basic client auth).

        A refusal (4xx but 408/429) is permanent: the user must authorise again — unless it is
        a 401, which refuses the app's client credentials (`client_refused`). A 5xx, 408, 429 or
        network failure is transient.
        """
        session = await self._sess()
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        try:
            async with session.post(
                f"{base.rstrip('/') if base else self.base_url}/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "continuous_refresh": "true",
                },
                headers={"authorization": f"Basic {basic}"},
            ) as resp:
                body = _parse(await resp.read())
                rid = resp.headers.get("x-pinterest-rid", "")
                if resp.status == 200 and isinstance(body, Mapping) and body.get("access_token"):
                    try:
                        expires_in = int(body.get("expires_in") or DEFAULT_ACCESS_TTL_S)
                    except (TypeError, ValueError):
                        expires_in = DEFAULT_ACCESS_TTL_S
                    return TokenGrant(
                        access_token=str(body["access_token"]),
                        refresh_token=str(body.get("refresh_token") or refresh_token),
                        expires_in_s=expires_in,
                        refresh_expires_in_s=refresh_lifetime_s(body, self._now()),
                        scopes=parse_scopes(body.get("scope")),
                    )
                code, message, _ = error_fields(body)
                permanent = 400 <= resp.status < 500 and resp.status not in (408, 429)
                err = JobError(
                    category=ErrorCategory.AUTH if permanent else ErrorCategory.UNAVAILABLE,
                    message=f"token refresh refused: {message or f'HTTP {resp.status}'}",
                    http_status=resp.status,
                    pinterest_code=code,
                    pinterest_request_id=rid,
                    retryable=not permanent,
                )
                log.warning(
                    "token_refresh_refused",
                    http_status=resp.status,
                    pinterest_code=code,
                    message=message,
                    pinterest_rid=rid,
                )
                return RefreshFailed(err, permanent=permanent, client_refused=resp.status == 401)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return RefreshFailed(
                _net_error(
                    ErrorCategory.UNAVAILABLE, f"token refresh failed: {type(exc).__name__}: {exc}"
                ),
                permanent=False,
            )


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"message": raw[:200].decode(errors="replace")}


_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e]+")


def _net_error(category: ErrorCategory, message: str) -> JobError:
    return JobError(category=category, message=message, retryable=True)


def _lost(write: bool, message: str) -> OutcomeUnknown | Unavailable:
    """No (usable) answer after the request was sent: unknown for a write, transient for a read."""
    if write:
        return OutcomeUnknown(_net_error(ErrorCategory.OUTCOME_UNKNOWN, message))
    return Unavailable(_net_error(ErrorCategory.UNAVAILABLE, message))


def _utc_now() -> datetime:
    return datetime.now(UTC)
