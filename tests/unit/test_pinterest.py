"""The outcome classifier (`pinterest.classify`) and the pure helpers around it, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from pinsched.core.jobs import (
    Carousel,
    CarouselItem,
    ErrorCategory,
    ImageBase64,
    ImageUrl,
    PinSpec,
    Video,
)
from pinsched.pinterest import client as pt

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
RID = {"x-pinterest-rid": "8123456789"}
SPAM = "Sorry! You've hit a block (Pins) we have in place to combat spam. Please try again later!"
C = ErrorCategory

# status, body, headers, write → outcome type, category, retryable
TABLE: list[tuple[str, int, Any, dict[str, str], bool, type, ErrorCategory | None, bool]] = [
    ("201 created", 201, {"id": "813"}, {}, True, pt.Delivered, None, False),
    ("200 ok", 200, {"id": "813"}, {}, True, pt.Delivered, None, False),
    ("204 deleted", 204, None, {}, True, pt.Delivered, None, False),
    (
        "429 code 8",
        429,
        {"code": 8, "message": "This request exceeded a rate limit."},
        {},
        True,
        pt.RateLimited,
        C.RATE_LIMITED,
        True,
    ),
    ("429 no body", 429, None, {}, True, pt.RateLimited, C.RATE_LIMITED, True),
    (
        "code 8 on a 400",
        400,
        {"code": 8, "message": "too many writes to this object"},
        {},
        True,
        pt.RateLimited,
        C.RATE_LIMITED,
        True,
    ),
    (
        "429 code 9 spam",
        429,
        {"code": 9, "message": SPAM},
        {},
        True,
        pt.SpamBlocked,
        C.SPAM_BLOCKED,
        True,
    ),
    (
        "403 code 9 spam",
        403,
        {"code": 9, "message": SPAM},
        {},
        True,
        pt.SpamBlocked,
        C.SPAM_BLOCKED,
        True,
    ),
    (
        "429 spam in message_detail",
        429,
        {"code": 8, "message": "Rate limited", "message_detail": SPAM},
        {},
        True,
        pt.SpamBlocked,
        C.SPAM_BLOCKED,
        True,
    ),
    (
        "400 mentions spam (not a block)",
        400,
        {"code": 1, "message": "Invalid parameters: link looks like spam"},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "401 code 2",
        401,
        {"code": 2, "message": "Authentication failed."},
        {},
        True,
        pt.AuthExpired,
        C.AUTH,
        True,
    ),
    ("401 no body", 401, None, {}, True, pt.AuthExpired, C.AUTH, True),
    (
        "401 code 1104",
        401,
        {"code": 1104, "message": "The token you provided is not valid or has expired."},
        {},
        True,
        pt.AuthExpired,
        C.AUTH,
        True,
    ),
    (
        "403 code 1104",
        403,
        {"code": 1104, "message": "The token you provided is not valid or has expired."},
        {},
        True,
        pt.AuthExpired,
        C.AUTH,
        True,
    ),
    (
        "403 code 2 authentication",
        403,
        {"code": 2, "message": "Authentication failed."},
        {},
        True,
        pt.AuthExpired,
        C.AUTH,
        True,
    ),
    (
        "400 code 2 not auth",
        400,
        {"code": 2, "message": "AdAccount not found."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "400 code 1 invalid URL",
        400,
        {"code": 1, "message": "Whoops! It looks like you entered an invalid URL."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "400 code 1 invalid parameters",
        400,
        {"code": 1, "message": "Invalid parameters."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "400 code 1 could not fetch",
        400,
        {"code": 1, "message": "Sorry we could not fetch the image."},
        {},
        True,
        pt.Unavailable,
        C.UNAVAILABLE,
        True,
    ),
    (
        "400 unable to reach the URL",
        400,
        {"code": 1, "message": "Unable to reach the URL"},
        {},
        True,
        pt.Unavailable,
        C.UNAVAILABLE,
        True,
    ),
    (
        "403 code 3 scope",
        403,
        {"code": 3, "message": "Your token does not have sufficient permissions."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "403 code 7",
        403,
        {"code": 7, "message": "Not authorized to access board or Pin."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "403 code 29 trial app",
        403,
        {"code": 29, "message": "Apps with Trial access may not create Pins in production"},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "404 code 30",
        404,
        {"code": 30, "message": "User not found."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "404 code 40",
        404,
        {"code": 40, "message": "Board not found."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "404 code 50",
        404,
        {"code": 50, "message": "Pin not found."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "403 code 233",
        403,
        {
            "code": 233,
            "message": "Your image is too small. Please choose a larger image and try again.",
        },
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "403 code 235",
        403,
        {"code": 235, "message": "Sorry, this image is broken."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "404 code 2031",
        404,
        {"code": 2031, "message": "Sorry! We couldn't find this board section."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    (
        "409 conflict",
        409,
        {"code": 409, "message": "Conflict."},
        {},
        True,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
    ("408 request timeout", 408, None, {}, True, pt.Unavailable, C.UNAVAILABLE, True),
    (
        "500 code 2787 on a write",
        500,
        {"code": 2787, "message": "Sorry! Something went wrong on our end."},
        {},
        True,
        pt.OutcomeUnknown,
        C.OUTCOME_UNKNOWN,
        True,
    ),
    (
        "503 code 2787 on a write",
        503,
        {"code": 2787, "message": "Sorry! Something went wrong on our end."},
        {},
        True,
        pt.OutcomeUnknown,
        C.OUTCOME_UNKNOWN,
        True,
    ),
    (
        "400 code 2787",
        400,
        {"code": 2787, "message": "Sorry! Something went wrong on our end."},
        {},
        True,
        pt.Unavailable,
        C.UNAVAILABLE,
        True,
    ),
    (
        "502 html on a write",
        502,
        {"message": "<html>Bad Gateway</html>"},
        {},
        True,
        pt.OutcomeUnknown,
        C.OUTCOME_UNKNOWN,
        True,
    ),
    ("504 on a write", 504, None, {}, True, pt.OutcomeUnknown, C.OUTCOME_UNKNOWN, True),
    ("302 on a write", 302, None, {}, True, pt.OutcomeUnknown, C.OUTCOME_UNKNOWN, True),
    (
        "503 on a read",
        503,
        {"code": 2787, "message": "Sorry! Something went wrong on our end."},
        {},
        False,
        pt.Unavailable,
        C.UNAVAILABLE,
        True,
    ),
    (
        "404 on a read",
        404,
        {"code": 40, "message": "Board not found."},
        {},
        False,
        pt.Rejected,
        C.REJECTED,
        False,
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "write", "kind", "category", "retryable"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_classify_table(
    status: int,
    body: Any,
    headers: dict[str, str],
    write: bool,
    kind: type,
    category: ErrorCategory | None,
    retryable: bool,
) -> None:
    """Each HTTP status / Pinterest code / message maps to the documented outcome, keeping the
    status, code, message and request id."""
    out = pt.classify(status, body, {**headers, **RID}, write=write, now=NOW)
    assert type(out) is kind
    if isinstance(out, pt.Delivered):
        return
    err = out.error
    assert err.category is category
    assert err.retryable is retryable
    assert err.http_status == status
    fields = body if isinstance(body, dict) else {}
    assert err.pinterest_code == fields.get("code", 0)
    assert err.pinterest_request_id == "8123456789"
    assert err.message.startswith(fields.get("message") or f"HTTP {status}")


def test_every_listed_pinterest_code_is_classified() -> None:
    """The codes named by the issue (1, 2, 8, 9, 29, 40, 50, 233, 235, 1104, 2031, 2787) all
    appear in the table."""
    codes = {row[2].get("code") for row in TABLE if isinstance(row[2], dict)}
    assert {1, 2, 8, 9, 29, 40, 50, 233, 235, 1104, 2031, 2787} <= codes


def test_delivered_carries_the_pin_id() -> None:
    """A 201 keeps the pin; a body without an id gives an empty pin id."""
    out = pt.classify(201, {"id": "813000000000000001", "title": "t"}, {}, write=True, now=NOW)
    assert isinstance(out, pt.Delivered)
    assert out.pin_id == "813000000000000001"
    empty = pt.classify(201, ["not", "a", "mapping"], {}, write=True, now=NOW)
    assert isinstance(empty, pt.Delivered)
    assert empty.pin_id == ""


def test_message_detail_is_kept_beside_the_message() -> None:
    """`message_detail` is appended to the message so nothing Pinterest said is lost."""
    out = pt.classify(
        400,
        {
            "code": 1,
            "message": "Invalid parameters.",
            "message_detail": "board_id: does not match '^\\d+$'",
        },
        {},
        write=True,
        now=NOW,
    )
    assert isinstance(out, pt.Rejected)
    assert out.error.message == "Invalid parameters. (board_id: does not match '^\\d+$')"


def test_non_numeric_code_counts_as_absent() -> None:
    """A code that is not a number is treated as 0, and the status decides."""
    out = pt.classify(404, {"code": "x", "message": "Not found."}, {}, write=True, now=NOW)
    assert isinstance(out, pt.Rejected)
    assert out.error.pinterest_code == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": format_datetime(NOW + timedelta(seconds=30), usegmt=True)}, 30.0),
        ({"retry-after": format_datetime(NOW - timedelta(seconds=30), usegmt=True)}, 0.0),
        ({"x-ratelimit-reset": "12"}, 12.0),
        ({"x-ratelimit-reset": str(int(NOW.timestamp()) + 40)}, 40.0),
        ({"retry-after": "4", "x-ratelimit-reset": "99"}, 4.0),
        ({"retry-after": "soon", "x-ratelimit-reset": "9"}, 9.0),
        ({"x-ratelimit-reset": "later"}, None),
        ({}, None),
    ],
    ids=[
        "seconds",
        "fraction",
        "negative",
        "http-date",
        "past-date",
        "reset-delta",
        "reset-epoch",
        "retry-after-wins",
        "bad-retry-after",
        "bad-reset",
        "none",
    ],
)
def test_rate_limit_hint(headers: dict[str, str], expected: float | None) -> None:
    """Retry-After (seconds or HTTP date) wins over X-RateLimit-Reset (delta or epoch); garbage
    gives no hint."""
    got = pt.retry_after_s(headers, NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)
    out = pt.classify(429, {"code": 8, "message": "rate"}, headers, write=True, now=NOW)
    assert isinstance(out, pt.RateLimited)
    assert out.retry_after_s == got


def test_pin_body_leaves_out_empty_fields_and_renders_each_media_source() -> None:
    """The PinCreate JSON carries set fields only and the right `media_source` variant."""
    pin = PinSpec(board_id="1001", media=ImageUrl(url="https://x.test/a.jpg"), title="t")
    assert pt.pin_body(pin) == {
        "board_id": "1001",
        "title": "t",
        "media_source": {"source_type": "image_url", "url": "https://x.test/a.jpg"},
    }
    b64 = pt.pin_body(
        PinSpec(board_id="1", media=ImageBase64(content_type="image/png", data=b"\x89PNG"))
    )
    assert b64["media_source"] == {
        "source_type": "image_base64",
        "content_type": "image/png",
        "data": "iVBORw==",
    }
    carousel = pt.pin_body(
        PinSpec(
            board_id="1",
            board_section_id="7",
            media=Carousel(
                items=(
                    CarouselItem(url="https://x.test/1.jpg", title="one"),
                    CarouselItem(url="https://x.test/2.jpg"),
                ),
                index=1,
            ),
        )
    )
    assert carousel["board_section_id"] == "7"
    assert carousel["media_source"] == {
        "source_type": "multiple_image_urls",
        "index": 1,
        "items": [{"url": "https://x.test/1.jpg", "title": "one"}, {"url": "https://x.test/2.jpg"}],
    }
    video = pt.pin_body(
        PinSpec(board_id="1", media=Video(media_id="55", cover_image_key_frame_time=0))
    )
    assert video["media_source"] == {
        "source_type": "video_id",
        "media_id": "55",
        "cover_image_key_frame_time": 0,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-01T12:00:03", datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)),
        ("2026-03-01T12:00:03Z", datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)),
        ("2026-03-01T13:00:03+01:00", datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (17, None),
    ],
)
def test_parse_time_reads_pinterest_times_as_utc(raw: object, expected: datetime | None) -> None:
    """Times without an offset are UTC (as Pinterest sends them); junk is None."""
    assert pt.parse_time(raw) == expected
