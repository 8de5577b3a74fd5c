"""Pinterest API v5 client: turns HTTP into domain outcomes, in one place.

Outcomes of a write (`create_pin`, `delete_pin`, `update_pin`), decided by `classify` (pure):

    Outcome
    ├── Delivered        2xx; carries the pin (an empty mapping for 204)
    ├── RateLimited      429, or code 8 (also "too many writes to one object"): retry after
    │                    `retry_after_s` (Retry-After, else X-RateLimit-Reset; None if neither)
    ├── SpamBlocked      code 9, or a 429 whose message mentions spam: cool the account down
    ├── AuthExpired      401; code 1104 on any 4xx; code 2 "Authentication failed" on 400/403:
    │                    refresh the token once
    ├── Unavailable      certainly not applied, worth retrying: cannot connect, 408, a transient
    │                    code or message (2787, "could not fetch the image", "Unable to reach the
    │                    URL", "try again later") on a non-5xx answer, any failed read
    ├── OutcomeUnknown   the write may have been applied: no answer within the timeout, the
    │                    connection lost after sending, any 5xx (or other unexpected status)
    └── Rejected         every other 4xx, permanent: 1 invalid URL / parameters, 2 (not auth),
                         3, 7, 29 not permitted / Trial app in production, 30, 40 board not
                         found, 50 pin not found, 233 image too small, 235 image broken, 2031
                         section not found, …

Per-account API base and `ad_account_id` follow the bearer token (`routes`, see `oauth.py`);
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

from pinsched.jobs import (
    Carousel,
    ErrorCategory,
    ImageBase64,
    ImageUrl,
    JobError,
    PinSpec,
    Video,
)
from pinsched.oauth import RefreshFailed as RefreshFailed  # re-exported: callers use pt.*
from pinsched.oauth import Routes, parse_scopes, quota_headers, refresh_lifetime_s
from pinsched.oauth import TokenGrant as TokenGrant
from pinsched.ratehints import retry_after_s as retry_after_s

log = structlog.get_logger("pinsched.pinterest")

#: Pinterest codes that mean "try again later" whatever the HTTP status.
TRANSIENT_CODES: Final = frozenset({2787})
#: Messages Pinterest sends for failures that go away by themselves (lower case).
TRANSIENT_MESSAGES: Final = (
    "could not fetch the image",
    "unable to reach the url",
    "try again later",
)
RATE_LIMIT_CODE: Final = 8
SPAM_CODE: Final = 9
#: Codes that mean the access token is not (or no longer) valid.
TOKEN_INVALID_CODES: Final = frozenset({1104})
AUTH_FAILED_CODE: Final = 2


@dataclass(frozen=True, slots=True)
class Delivered:
    pin: Mapping[str, Any]

    @property
    def pin_id(self) -> str:
        return str(self.pin.get("id") or "")


@dataclass(frozen=True, slots=True)
class RateLimited:
    error: JobError
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class SpamBlocked:
    error: JobError


@dataclass(frozen=True, slots=True)
class AuthExpired:
    error: JobError


@dataclass(frozen=True, slots=True)
class Rejected:
    error: JobError


@dataclass(frozen=True, slots=True)
class Unavailable:
    error: JobError


@dataclass(frozen=True, slots=True)
class OutcomeUnknown:
    error: JobError


Outcome = (
    Delivered | RateLimited | SpamBlocked | AuthExpired | Rejected | Unavailable | OutcomeUnknown
)
Failure = RateLimited | SpamBlocked | AuthExpired | Rejected | Unavailable | OutcomeUnknown


def classify(
    status: int, body: Any, headers: Mapping[str, str], *, write: bool, now: datetime
) -> Outcome:
    """Map an HTTP answer to an outcome (pure). *headers* have lower-case names; *write* says
    whether the request could have changed something (a 5xx on a write is `OutcomeUnknown`)."""
    if 200 <= status < 300:
        return Delivered(body if isinstance(body, Mapping) else {})
    code, message, detail = _error_fields(body)
    text = message or f"HTTP {status}"
    if detail and detail != message:
        text = f"{text} ({detail})"
    lowered = text.lower()

    def err(category: ErrorCategory, retryable: bool) -> JobError:
        return JobError(
            category=category,
            message=text,
            http_status=status,
            pinterest_code=code,
            retryable=retryable,
            pinterest_request_id=headers.get("x-pinterest-rid", ""),
        )

    if code == SPAM_CODE or (status == 429 and "spam" in lowered):
        return SpamBlocked(err(ErrorCategory.SPAM_BLOCKED, True))
    if status == 429 or code == RATE_LIMIT_CODE:
        return RateLimited(err(ErrorCategory.RATE_LIMITED, True), retry_after_s(headers, now))
    if (
        status == 401
        or (400 <= status < 500 and code in TOKEN_INVALID_CODES)
        or (status in (400, 403) and code == AUTH_FAILED_CODE and "authentication" in lowered)
    ):
        return AuthExpired(err(ErrorCategory.AUTH, True))
    unknown = write and not 400 <= status < 500
    if code in TRANSIENT_CODES or any(m in lowered for m in TRANSIENT_MESSAGES):
        if unknown:
            return OutcomeUnknown(err(ErrorCategory.OUTCOME_UNKNOWN, True))
        return Unavailable(err(ErrorCategory.UNAVAILABLE, True))
    if status == 408:
        return Unavailable(err(ErrorCategory.UNAVAILABLE, True))
    if 400 <= status < 500:
        return Rejected(err(ErrorCategory.REJECTED, False))
    if unknown:  # 5xx, or a status we do not expect (1xx/3xx): the write may have happened
        return OutcomeUnknown(err(ErrorCategory.OUTCOME_UNKNOWN, True))
    return Unavailable(err(ErrorCategory.UNAVAILABLE, True))


def _error_fields(body: Any) -> tuple[int, str, str]:
    """`(code, message, message_detail)` of a `Pinterest.Lib.Error` body (0/"" when absent)."""
    if not isinstance(body, Mapping):
        return 0, "", ""
    raw = body.get("code", 0)
    try:
        code = int(raw)
    except (TypeError, ValueError):
        code = 0
    message = str(body.get("message") or "")
    detail = str(body.get("message_detail") or "")
    return code, message or detail, detail


def pin_body(pin: PinSpec) -> dict[str, Any]:
    """The `PinCreate` JSON for *pin* (empty optional fields left out)."""
    body: dict[str, Any] = {"board_id": pin.board_id}
    for name in ("board_section_id", "title", "description", "link", "alt_text", "dominant_color"):
        value = getattr(pin, name)
        if value:
            body[name] = value
    media: dict[str, Any]
    match pin.media:
        case ImageUrl(url=url):
            media = {"source_type": "image_url", "url": url}
        case ImageBase64(content_type=ct, data=data):
            media = {
                "source_type": "image_base64",
                "content_type": ct,
                "data": base64.b64encode(data).decode(),
            }
        case Carousel(items=items, index=index):
            media = {
                "source_type": "multiple_image_urls",
                "index": index,
                "items": [
                    {
                        k: v
                        for k, v in (
                            ("url", i.url),
                            ("title", i.title),
                            ("description", i.description),
                            ("link", i.link),
                        )
                        if v
                    }
                    for i in items
                ],
            }
        case Video(media_id=mid, cover_image_url=cover, cover_image_key_frame_time=kft):
            media = {"source_type": "video_id", "media_id": mid}
            if cover:
                media["cover_image_url"] = cover
            if kft is not None:
                media["cover_image_key_frame_time"] = kft
        case _:  # VideoUrl / VideoAsset: `staging.pin_to_send` makes them a Video first
            raise ValueError(f"{type(pin.media).__name__} is sent as the video_id it was staged as")
    body["media_source"] = media
    return body


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
                code, message, _ = _error_fields(body)
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


def parse_time(value: Any) -> datetime | None:
    """Pinterest's `created_at`-style times; a value without an offset is read as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
