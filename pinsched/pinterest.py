"""Pinterest API v5 client: turns HTTP into domain outcomes, in one place.

Outcomes of a write (`create_pin`, `delete_pin`, `update_pin`):

    Outcome
    ├── Delivered        2xx; carries the pin
    ├── RateLimited      429 (code 8): retry after `retry_after_s` (Retry-After / X-RateLimit-Reset)
    ├── SpamBlocked      code 9 or a "spam" message, any status: a long cool-down for the account
    ├── AuthExpired      401 (codes 2, 1104): refresh the token once
    ├── Rejected         400/403/404/… with Pinterest's code: permanent (1 invalid URL, 29, 40,
    │                    50, 233, 235, 2031 …)
    ├── Unavailable      certainly not applied, worth retrying: connection refused, 408, transient
    │                    codes (2787, "could not fetch the image", "Unable to reach the URL")
    └── OutcomeUnknown   the request may have been applied: timeout or connection lost after
                         sending, 5xx on a write

Every failure keeps `x-pinterest-rid` for support tickets. One long-lived `aiohttp.ClientSession`;
the base URL is injected (production, Pinterest's sandbox and `pinsched sandbox` are just URLs).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from pinsched.jobs import (
    Carousel,
    ErrorCategory,
    ImageBase64,
    ImageUrl,
    JobError,
    PinSpec,
    Video,
)

TRANSIENT_CODES = frozenset({2787})
TRANSIENT_MESSAGES = ("could not fetch the image", "unable to reach the url", "try again later")
AUTH_CODES = frozenset({2, 1104})


@dataclass(frozen=True, slots=True)
class Delivered:
    pin: Mapping[str, Any]

    @property
    def pin_id(self) -> str:
        return str(self.pin.get("id", ""))


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


def classify(
    status: int, body: Any, headers: Mapping[str, str], *, write: bool, now: datetime
) -> Outcome:
    """Map an HTTP answer to an outcome (pure)."""
    rid = headers.get("x-pinterest-rid", "")
    if 200 <= status < 300:
        return Delivered(body if isinstance(body, Mapping) else {})
    code, message = _error_fields(body)
    text = message or f"HTTP {status}"

    def err(category: ErrorCategory, retryable: bool) -> JobError:
        return JobError(
            category=category, message=text, http_status=status, pinterest_code=code,
            retryable=retryable, pinterest_request_id=rid,
        )

    if code == 9 or "spam" in text.lower():
        return SpamBlocked(err(ErrorCategory.SPAM_BLOCKED, True))
    if status == 429:
        return RateLimited(err(ErrorCategory.RATE_LIMITED, True), _retry_after(headers, now))
    if status == 401 or (code in AUTH_CODES and status in (400, 403)):
        return AuthExpired(err(ErrorCategory.AUTH, True))
    if code in TRANSIENT_CODES or any(m in text.lower() for m in TRANSIENT_MESSAGES):
        if status >= 500 and write:
            return OutcomeUnknown(err(ErrorCategory.OUTCOME_UNKNOWN, True))
        return Unavailable(err(ErrorCategory.UNAVAILABLE, True))
    if status == 408:
        return Unavailable(err(ErrorCategory.UNAVAILABLE, True))
    if status >= 500:
        if write:
            return OutcomeUnknown(err(ErrorCategory.OUTCOME_UNKNOWN, True))
        return Unavailable(err(ErrorCategory.UNAVAILABLE, True))
    return Rejected(err(ErrorCategory.REJECTED, False))


def _error_fields(body: Any) -> tuple[int, str]:
    if not isinstance(body, Mapping):
        return 0, ""
    raw = body.get("code", 0)
    try:
        code = int(raw)
    except (TypeError, ValueError):
        code = 0
    message = body.get("message_detail") or body.get("message") or ""
    return code, str(message)


def _retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
            except (TypeError, ValueError):
                pass
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            return None
        # Either seconds until reset or an epoch timestamp.
        return max(0.0, seconds - now.timestamp()) if seconds > 1e9 else max(0.0, seconds)
    return None


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
            media = {"source_type": "image_base64", "content_type": ct,
                     "data": base64.b64encode(data).decode()}
        case Carousel(items=items, index=index):
            media = {
                "source_type": "multiple_image_urls", "index": index,
                "items": [{k: v for k, v in (("url", i.url), ("title", i.title),
                                             ("description", i.description), ("link", i.link))
                           if v} for i in items],
            }
        case Video(media_id=mid, cover_image_url=cover, cover_image_key_frame_time=kft):
            media = {"source_type": "video_id", "media_id": mid}
            if cover:
                media["cover_image_url"] = cover
            if kft is not None:
                media["cover_image_key_frame_time"] = kft
    body["media_source"] = media
    return body


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in_s: int


@dataclass(frozen=True, slots=True)
class RefreshFailed:
    """The refresh-token grant was refused (`permanent`) or could not be tried (transient)."""

    error: JobError
    permanent: bool


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
    """Calls Pinterest API v5 at *base_url* with one long-lived session."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(10.0, timeout_s))
        self._session = session
        self._own_session = session is None

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
        self, method: str, path: str, token: str, *, json_body: Any = None,
        params: Mapping[str, str] | None = None, write: bool,
    ) -> Outcome:
        session = await self._sess()
        now = datetime.now(UTC)
        try:
            async with session.request(
                method, f"{self.base_url}{path}", json=json_body, params=params,
                headers={"authorization": f"Bearer {token}"},
            ) as resp:
                raw = await resp.read()
                body = _parse(raw)
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return classify(resp.status, body, headers, write=write, now=now)
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            return Unavailable(_net_error(ErrorCategory.UNAVAILABLE, f"cannot connect: {exc}"))
        except TimeoutError as exc:
            cat = ErrorCategory.OUTCOME_UNKNOWN if write else ErrorCategory.UNAVAILABLE
            err = _net_error(cat, f"no answer within the timeout ({type(exc).__name__})")
            return OutcomeUnknown(err) if write else Unavailable(err)
        except aiohttp.ClientError as exc:  # lost after sending (disconnect, reset, bad answer)
            cat = ErrorCategory.OUTCOME_UNKNOWN if write else ErrorCategory.UNAVAILABLE
            err = _net_error(cat, f"connection lost: {type(exc).__name__}: {exc}")
            return OutcomeUnknown(err) if write else Unavailable(err)

    async def create_pin(self, token: str, pin: PinSpec) -> Outcome:
        return await self._request("POST", "/pins", token, json_body=pin_body(pin), write=True)

    async def delete_pin(self, token: str, pin_id: str) -> Outcome:
        return await self._request("DELETE", f"/pins/{pin_id}", token, write=True)

    async def update_pin(self, token: str, pin_id: str, changes: Mapping[str, Any]) -> Outcome:
        return await self._request("PATCH", f"/pins/{pin_id}", token, json_body=dict(changes),
                                   write=True)

    async def get_board(self, token: str, board_id: str) -> BoardState:
        out = await self._request("GET", f"/boards/{board_id}", token, write=False)
        if not isinstance(out, Delivered):
            raise ReadFailed(out)
        modified = out.pin.get("board_pins_modified_at")
        return BoardState(int(out.pin.get("pin_count") or 0), parse_time(modified))

    async def board_pins(self, token: str, board_id: str, *, bookmark: str | None = None,
                         page_size: int = 100) -> PinPage:
        params = {"page_size": str(page_size)}
        if bookmark:
            params["bookmark"] = bookmark
        out = await self._request("GET", f"/boards/{board_id}/pins", token, params=params,
                                  write=False)
        if not isinstance(out, Delivered):
            raise ReadFailed(out)
        items = out.pin.get("items") or []
        return PinPage([dict(i) for i in items if isinstance(i, Mapping)], out.pin.get("bookmark"))

    async def refresh_token(
        self, client_id: str, client_secret: str, refresh_token: str
    ) -> TokenGrant | RefreshFailed:
        """The refresh-token grant (`POST {base}/oauth/token`, Basic client auth)."""
        session = await self._sess()
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        try:
            async with session.post(
                f"{self.base_url}/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                      "continuous_refresh": "true"},
                headers={"authorization": f"Basic {basic}"},
            ) as resp:
                body = _parse(await resp.read())
                rid = resp.headers.get("x-pinterest-rid", "")
                if resp.status == 200 and isinstance(body, Mapping) and body.get("access_token"):
                    return TokenGrant(
                        access_token=str(body["access_token"]),
                        refresh_token=str(body.get("refresh_token") or refresh_token),
                        expires_in_s=int(body.get("expires_in") or 30 * 86400),
                    )
                code, message = _error_fields(body)
                err = JobError(
                    category=ErrorCategory.AUTH,
                    message=f"token refresh refused: {message or f'HTTP {resp.status}'}",
                    http_status=resp.status, pinterest_code=code, pinterest_request_id=rid,
                )
                return RefreshFailed(err, permanent=resp.status < 500 and resp.status != 429)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return RefreshFailed(_net_error(ErrorCategory.UNAVAILABLE,
                                            f"token refresh failed: {exc!r}"), permanent=False)


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


def _net_error(category: ErrorCategory, message: str) -> JobError:
    return JobError(category=category, message=message, retryable=True)
