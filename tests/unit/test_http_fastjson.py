"""`pinsched.http.fastjson` gives exactly `json_format`'s results and errors: printed messages
equal `MessageToDict`, parsed messages equal `ParseDict`, and a request `ParseDict` refuses is
refused with the same message."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import empty_pb2, json_format
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from pinsched.http import fastjson
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2, webhook_pb2


def _job() -> job_pb2.Job:
    job = job_pb2.Job(
        id="01JOB",
        account_id="acme",
        state=job_pb2.Job.STATE_FAILED,
        attempts=3,
        version=9,
        request_id="r",
        pinterest_pin_id="p1",
        cancel_requested=True,
        pin=job_pb2.Pin(
            board_id="1",
            title="t",
            media_source=job_pb2.MediaSource(
                image_base64=job_pb2.ImageBase64(content_type="image/png", data=b"\x00\xffpng")
            ),
        ),
        last_error=job_pb2.JobError(
            category=job_pb2.JobError.CATEGORY_AUTH, http_status=401, message="no", retryable=False
        ),
    )
    job.scheduled_at.FromJsonString("2026-03-01T09:00:00.250Z")
    job.delivery_window.FromJsonString("90.5s")
    job.local_time.year, job.local_time.month, job.local_time.day = 2026, 3, 29
    job.local_time.hours, job.local_time.time_zone.id = 2, "Europe/Paris"
    job.remote_update.paths.extend(["title", "link"])
    h = job.history.add(to_state=job_pb2.Job.STATE_PENDING, reason="made")
    h.time.FromJsonString("2026-03-01T08:00:00Z")
    job.history.add(from_state=job_pb2.Job.STATE_PENDING, to_state=99)  # unknown enum value
    return job


MESSAGES: list[Message] = [
    _job(),
    job_pb2.Job(),
    empty_pb2.Empty(),
    scheduler_pb2.ListJobsResponse(jobs=[_job(), job_pb2.Job(id="2")], next_page_token="x"),
    job_pb2.JobEvent(sequence=2**40, job_id="j", to_state=job_pb2.Job.STATE_DELIVERED, job=_job()),
    account_pb2.Account(id="a", pacing=account_pb2.Pacing(max_per_hour=3)),
    scheduler_pb2.WatchJobsRequest(since_sequence=0),
    scheduler_pb2.WatchJobsRequest(),
    webhook_pb2.ListWebhookDeliveriesResponse(deliveries=[webhook_pb2.WebhookDelivery(id=5)]),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_printing_equals_message_to_dict(message: Message) -> None:
    """Every printed message is exactly MessageToDict's form."""
    expected = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert fastjson.to_json(message) == expected


def _outcome(parse: Any, data: Any, cls: type[Message]) -> tuple[str, Any]:
    message = cls()
    try:
        parse(data, message)
    except json_format.ParseError as exc:
        return "error", str(exc)
    return "ok", message


def _same(data: Any, cls: type[Message] = scheduler_pb2.SchedulePinRequest) -> None:
    fast = _outcome(fastjson.parse, data, cls)
    slow = _outcome(
        lambda d, m: json_format.ParseDict(d, m, ignore_unknown_fields=False), data, cls
    )
    assert fast == slow


PIN = {"board_id": "1", "title": "t", "media_source": {"image_url": {"url": "https://x/y.jpg"}}}


@pytest.mark.parametrize(
    "data",
    [
        {"account_id": "a", "pin": PIN, "scheduled_at": "2026-03-01T09:00:00Z"},
        {"accountId": "a", "pin": {"boardId": "1"}, "deliveryWindow": "60s"},
        {"account_id": "a", "nonexistent_time_policy": "NONEXISTENT_TIME_POLICY_SHIFT_FORWARD"},
        {"account_id": "a", "nonexistent_time_policy": 2},
        {"local_time": {"year": "2026", "month": 3, "day": 1, "time_zone": {"id": "UTC"}}},
        {"pin": {"title": "t", "titel": "x"}},
        {"pin": {"title": 5}},
        {"pin": None},
        {"scheduled_at": "yesterday"},
        {"scheduled_at": "2026-03-01T09:00:00Z", "local_time": {"year": 2026}},
        {"account_id": "a", "accountId": "b"},
        {"pin": {"media_source": {"image_base64": {"data": "AAE="}}}},
        {"pin": {"media_source": {"multiple_image_urls": {"items": [{"url": "u"}], "index": "1"}}}},
        {"pin": {"media_source": {"image_url": {"url": "u"}, "video_id": {"media_id": "v"}}}},
        {"delivery_window": 5},
    ],
)
def test_parsing_equals_parse_dict(data: dict[str, Any]) -> None:
    """Valid and invalid requests parse (or fail) exactly as ParseDict does."""
    _same(data)


@pytest.mark.parametrize(
    "data",
    [
        {"page_size": "10", "states": ["STATE_PENDING", "STATE_QUEUED"]},
        {"page_size": 2**40},
        {"page_size": 1.0},
        {"page_size": True},
        {"states": "STATE_PENDING"},
        {"planned_after": "2026-03-01T09:00:00+02:00"},
    ],
)
def test_list_requests(data: dict[str, Any]) -> None:
    """Integers, ranges and repeated enums behave as in ParseDict."""
    _same(data, scheduler_pb2.ListJobsRequest)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.text(max_size=8)
    | st.sampled_from(["STATE_PENDING", "2026-03-01T09:00:00Z", "60s", "12", "-3"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["title", "board_id", "url", "x", "year", "items", "index"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    [
        "account_id",
        "accountId",
        "pin",
        "scheduled_at",
        "local_time",
        "delivery_window",
        "ambiguous_time_policy",
        "request_id",
        "bogus",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=4))
def test_random_requests_match_parse_dict(data: dict[str, Any]) -> None:
    """For random JSON shapes, the fast parser's result or error is ParseDict's."""
    _same(data)


TIMESTAMPS = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: (
        f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"
    ),
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 61),
    st.sampled_from(["", ".5", ".123", ".123456", ".123456789", ".1234567890"]),
    st.sampled_from(["Z", "z", "+02:00", "-05:30", "+14:00", "-23:59", "+24:00", ""]),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(TIMESTAMPS, st.text(max_size=30)))
def test_timestamps_match_parse_dict(text: str) -> None:
    """RFC 3339 instants (edge dates, offsets, fractions, out-of-range years) parse or fail as
    ParseDict's Timestamp does."""
    _same({"planned_after": text}, scheduler_pb2.ListJobsRequest)
