"""Pinterest's answers as domain outcomes, and a pin as Pinterest's JSON. Pure: no I/O, no clock
reads (`now` is a parameter).

Outcomes of a write (`create_pin`, `delete_pin`, `update_pin`), decided by `classify`:

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

`pin_body` is the `PinCreate` JSON of a pin; `parse_time` reads Pinterest's times. The HTTP
calls themselves are `pinterest.client`'s.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pinsched.core.jobs import (
    Carousel,
    ErrorCategory,
    ImageBase64,
    ImageUrl,
    JobError,
    PinSpec,
    Video,
)
from pinsched.core.ratehints import retry_after_s

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
    code, message, detail = error_fields(body)
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


def error_fields(body: Any) -> tuple[int, str, str]:
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


def parse_time(value: Any) -> datetime | None:
    """Pinterest's `created_at`-style times; a value without an offset is read as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
