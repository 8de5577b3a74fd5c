"""Tests of `pinsched.api.validation`: each rule names its field, and all are reported at once."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from pinsched.api import fields
from pinsched.api import validation as va
from pinsched.core.errors import InvalidArgument
from pinsched.core.jobs import Carousel, CarouselItem, ImageUrl, LocalTime, PinSpec, Video
from pinsched.v1 import job_pb2, scheduler_pb2

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMITS: dict[str, Any] = {
    "now": NOW,
    "skew_tolerance": timedelta(seconds=60),
    "horizon": timedelta(days=400),
}
Body = dict[str, Any]


def body() -> Body:
    """A valid SchedulePin body in the proto-JSON shape of DESIGN §2."""
    return {
        "request_id": "b7c1e0a4-0d6f-4a8e-9a61-3b0c2f6b9f10",
        "account_id": "acme",
        "pin": {
            "board_id": "123456789",
            "title": "Title",
            "description": "Description",
            "link": "https://example.com/post",
            "alt_text": "Alt",
            "media_source": {"image_url": {"url": "https://example.com/a.jpg"}},
        },
        "scheduled_at": "2026-12-01T14:00:00Z",
        "delivery_window": "7200s",
    }


def request(data: Body) -> scheduler_pb2.SchedulePinRequest:
    return json_format.ParseDict(data, scheduler_pb2.SchedulePinRequest())


def violations(data: Body | scheduler_pb2.SchedulePinRequest, **kw: Any) -> dict[str, str]:
    """field path → description of every violation of *data* (which must be invalid)."""
    req = data if isinstance(data, scheduler_pb2.SchedulePinRequest) else request(data)
    with pytest.raises(InvalidArgument) as info:
        va.schedule_spec_from_proto(req, **{**LIMITS, **kw})
    found = {v.field: v.description for v in info.value.violations}
    assert len(found) == len(info.value.violations), "a field is reported twice"
    return found


def edit(fn: Callable[[Body], object]) -> Body:
    data = body()
    fn(data)
    return data


def media(data: Body, source: Body) -> None:
    data["pin"]["media_source"] = source


def carousel(n: int, **changes: Any) -> Body:
    items = [{"url": f"https://example.com/{i}.jpg"} for i in range(n)]
    return {"multiple_image_urls": {"items": items, **changes}}


def local(**fields: Any) -> Body:
    return {"year": 2026, "month": 12, "day": 1, "hours": 9, **fields}


def use_local(data: Body, value: Body, **policies: str) -> None:
    del data["scheduled_at"]
    data["local_time"] = value
    data.update(policies)


NY = {"time_zone": {"id": "America/New_York"}}

# --- a valid request ---------------------------------------------------------------------------


def test_valid_request_converts() -> None:
    """A valid request becomes a ScheduleSpec with UTC times and the pin as given."""
    spec = va.schedule_spec_from_proto(request(body()), **LIMITS)
    assert spec.account_id == "acme"
    assert spec.scheduled_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert spec.scheduled_at.tzinfo is UTC
    assert spec.window == timedelta(hours=2)
    assert spec.window_end == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert spec.local_time is None
    assert spec.request_id == body()["request_id"]
    assert len(spec.request_hash) == 64
    assert spec.pin == PinSpec(
        board_id="123456789",
        title="Title",
        description="Description",
        link="https://example.com/post",
        alt_text="Alt",
        media=ImageUrl(url="https://example.com/a.jpg"),
    )


def test_minimal_request_converts() -> None:
    """Only account, board, media and time are required; the window defaults to zero."""
    data = {
        "account_id": "a",
        "pin": {"board_id": "1", "media_source": {"image_url": {"url": "http://x.example"}}},
        "scheduled_at": "2026-03-02T00:00:00Z",
    }
    spec = va.schedule_spec_from_proto(request(data), **LIMITS)
    assert spec.window == timedelta(0)
    assert spec.request_id == ""


def test_local_time_is_resolved_and_kept() -> None:
    """A local time with a zone resolves to its UTC instant, and the local time is kept."""
    spec = va.schedule_spec_from_proto(request(edit(lambda d: use_local(d, local(**NY)))), **LIMITS)
    assert spec.scheduled_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert spec.local_time == LocalTime(
        year=2026, month=12, day=1, hours=9, time_zone="America/New_York"
    )


def test_local_time_with_utc_offset() -> None:
    """A local time with a utc_offset resolves with that offset."""
    data = edit(lambda d: use_local(d, local(utc_offset="-18000s")))
    spec = va.schedule_spec_from_proto(request(data), **LIMITS)
    assert spec.scheduled_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert spec.local_time is not None
    assert spec.local_time.utc_offset_s == -18000


def test_shift_forward_policy() -> None:
    """NONEXISTENT_TIME_POLICY_SHIFT_FORWARD moves a gap time forward by the gap."""
    gap = {"year": 2026, "month": 3, "day": 8, "hours": 2, "minutes": 30, **NY}
    policy = {"nonexistent_time_policy": "NONEXISTENT_TIME_POLICY_SHIFT_FORWARD"}
    data = edit(lambda d: use_local(d, gap, **policy))
    spec = va.schedule_spec_from_proto(request(data), **LIMITS)
    assert spec.scheduled_at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "hour"),
    [("AMBIGUOUS_TIME_POLICY_EARLIER", 5), ("AMBIGUOUS_TIME_POLICY_LATER", 6)],
)
def test_ambiguous_policies(policy: str, hour: int) -> None:
    """EARLIER and LATER pick the first or second 01:30 of the New York fall-back night."""
    fold = {"year": 2026, "month": 11, "day": 1, "hours": 1, "minutes": 30, **NY}
    data = edit(lambda d: use_local(d, fold, ambiguous_time_policy=policy))
    spec = va.schedule_spec_from_proto(request(data), **LIMITS)
    assert spec.scheduled_at == datetime(2026, 11, 1, hour, 30, tzinfo=UTC)


def test_time_within_skew_means_now() -> None:
    """A time 30 s in the past (within the 60 s tolerance) is scheduled for now."""
    data = edit(lambda d: d.update(scheduled_at="2026-03-01T11:59:30Z"))
    assert va.schedule_spec_from_proto(request(data), **LIMITS).scheduled_at == NOW


def test_text_is_kept_exactly_and_counted_in_characters() -> None:
    """Spaces and emoji are kept as given; 100 emoji are 100 characters, not 400 bytes."""
    title = "  " + "🎉" * 98
    description = "line 1\nline 2\t "
    data = edit(lambda d: d["pin"].update(title=title, description=description))
    pin = va.schedule_spec_from_proto(request(data), **LIMITS).pin
    assert (pin.title, pin.description) == (title, description)
    assert violations(edit(lambda d: d["pin"].update(title="🎉" * 101))) == {
        "pin.title": "at most 100 characters, got 101"
    }


def test_media_variants_convert() -> None:
    """Carousel and video sources become their domain variants, keeping a key frame of 0."""
    data = edit(lambda d: media(d, carousel(3, index=2)))
    data["pin"]["media_source"]["multiple_image_urls"]["items"][0]["title"] = "first"
    pin = va.schedule_spec_from_proto(request(data), **LIMITS).pin
    assert isinstance(pin.media, Carousel)
    assert pin.media.index == 2
    assert pin.media.items[0] == CarouselItem(url="https://example.com/0.jpg", title="first")
    data = edit(
        lambda d: media(d, {"video_id": {"media_id": "42", "cover_image_key_frame_time": 0}})
    )
    pin = va.schedule_spec_from_proto(request(data), **LIMITS).pin
    assert pin.media == Video(media_id="42", cover_image_key_frame_time=0)


# --- one rule, one path ------------------------------------------------------------------------

CASES: list[tuple[str, Callable[[Body], object], str]] = [
    ("request_id too long", lambda d: d.update(request_id="r" * 129), "request_id"),
    ("request_id not ASCII", lambda d: d.update(request_id="réq"), "request_id"),
    ("request_id control", lambda d: d.update(request_id="a\nb"), "request_id"),
    ("account missing", lambda d: d.pop("account_id"), "account_id"),
    ("account upper", lambda d: d.update(account_id="Acme"), "account_id"),
    ("account dash first", lambda d: d.update(account_id="-acme"), "account_id"),
    ("account too long", lambda d: d.update(account_id="a" * 64), "account_id"),
    ("pin missing", lambda d: d.pop("pin"), "pin"),
    ("board missing", lambda d: d["pin"].pop("board_id"), "pin.board_id"),
    ("board letters", lambda d: d["pin"].update(board_id="12a"), "pin.board_id"),
    ("board unicode digits", lambda d: d["pin"].update(board_id="١٢٣"), "pin.board_id"),
    ("board newline", lambda d: d["pin"].update(board_id="123\n"), "pin.board_id"),
    ("board 20 digits", lambda d: d["pin"].update(board_id="1" * 20), "pin.board_id"),
    ("section letters", lambda d: d["pin"].update(board_section_id="s1"), "pin.board_section_id"),
    ("title", lambda d: d["pin"].update(title="t" * 101), "pin.title"),
    ("description", lambda d: d["pin"].update(description="d" * 801), "pin.description"),
    ("link long", lambda d: d["pin"].update(link="https://e.com/" + "x" * 2035), "pin.link"),
    ("link ftp", lambda d: d["pin"].update(link="ftp://example.com/x"), "pin.link"),
    ("link relative", lambda d: d["pin"].update(link="/post/1"), "pin.link"),
    ("link no host", lambda d: d["pin"].update(link="https:///path"), "pin.link"),
    ("link space", lambda d: d["pin"].update(link="https://e.com/a b"), "pin.link"),
    ("link bad ipv6", lambda d: d["pin"].update(link="http://[::1/x"), "pin.link"),
    ("link bad port", lambda d: d["pin"].update(link="http://e.com:99999/"), "pin.link"),
    ("alt text", lambda d: d["pin"].update(alt_text="a" * 501), "pin.alt_text"),
    ("color name", lambda d: d["pin"].update(dominant_color="red"), "pin.dominant_color"),
    ("color short", lambda d: d["pin"].update(dominant_color="#12345"), "pin.dominant_color"),
    ("color no hash", lambda d: d["pin"].update(dominant_color="6E7874"), "pin.dominant_color"),
    ("media missing", lambda d: d["pin"].pop("media_source"), "pin.media_source"),
    ("media empty", lambda d: media(d, {}), "pin.media_source"),
    (
        "image url empty",
        lambda d: media(d, {"image_url": {}}),
        "pin.media_source.image_url.url",
    ),
    (
        "image url js",
        lambda d: media(d, {"image_url": {"url": "javascript:alert(1)"}}),
        "pin.media_source.image_url.url",
    ),
    (
        "base64 gif",
        lambda d: media(d, {"image_base64": {"content_type": "image/gif", "data": "AAAA"}}),
        "pin.media_source.image_base64.content_type",
    ),
    (
        "base64 empty",
        lambda d: media(d, {"image_base64": {"content_type": "image/png"}}),
        "pin.media_source.image_base64.data",
    ),
    (
        "carousel of 1",
        lambda d: media(d, carousel(1)),
        "pin.media_source.multiple_image_urls.items",
    ),
    (
        "carousel of 6",
        lambda d: media(d, carousel(6)),
        "pin.media_source.multiple_image_urls.items",
    ),
    (
        "carousel index past end",
        lambda d: media(d, carousel(2, index=2)),
        "pin.media_source.multiple_image_urls.index",
    ),
    (
        "carousel index negative",
        lambda d: media(d, carousel(3, index=-1)),
        "pin.media_source.multiple_image_urls.index",
    ),
    (
        "video media id",
        lambda d: media(d, {"video_id": {"media_id": "v1", "cover_image_key_frame_time": 1}}),
        "pin.media_source.video_id.media_id",
    ),
    (
        "video media id missing",
        lambda d: media(d, {"video_id": {"cover_image_key_frame_time": 1}}),
        "pin.media_source.video_id.media_id",
    ),
    (
        "video no cover",
        lambda d: media(d, {"video_id": {"media_id": "1"}}),
        "pin.media_source.video_id.cover_image_url",
    ),
    (
        "video cover url",
        lambda d: media(d, {"video_id": {"media_id": "1", "cover_image_url": "nope"}}),
        "pin.media_source.video_id.cover_image_url",
    ),
    (
        "video key frame",
        lambda d: media(d, {"video_id": {"media_id": "1", "cover_image_key_frame_time": -1}}),
        "pin.media_source.video_id.cover_image_key_frame_time",
    ),
    ("no time", lambda d: d.pop("scheduled_at"), "scheduled_at"),
    ("past", lambda d: d.update(scheduled_at="2026-03-01T10:00:00Z"), "scheduled_at"),
    ("beyond horizon", lambda d: d.update(scheduled_at="2027-06-01T00:00:00Z"), "scheduled_at"),
    ("local no zone", lambda d: use_local(d, local()), "local_time"),
    (
        "local unknown zone",
        lambda d: use_local(d, local(time_zone={"id": "Mars/Base"})),
        "local_time.time_zone",
    ),
    (
        "local empty zone",
        lambda d: use_local(d, local(time_zone={})),
        "local_time.time_zone",
    ),
    ("local month", lambda d: use_local(d, local(month=13, **NY)), "local_time.month"),
    ("local day", lambda d: use_local(d, local(month=2, day=30, **NY)), "local_time.day"),
    ("local hours", lambda d: use_local(d, local(hours=24, **NY)), "local_time.hours"),
    ("local minutes", lambda d: use_local(d, local(minutes=60, **NY)), "local_time.minutes"),
    ("local seconds", lambda d: use_local(d, local(seconds=60, **NY)), "local_time.seconds"),
    ("local nanos", lambda d: use_local(d, local(nanos=10**9, **NY)), "local_time.nanos"),
    (
        "local offset nanos",
        lambda d: use_local(d, local(utc_offset="3600.5s")),
        "local_time.utc_offset",
    ),
    (
        "local offset huge",
        lambda d: use_local(d, local(utc_offset="86400s")),
        "local_time.utc_offset",
    ),
    ("local in the past", lambda d: use_local(d, local(year=2025, **NY)), "local_time"),
    (
        "local gap",
        lambda d: use_local(d, local(month=3, day=8, hours=2, minutes=30, **NY)),
        "local_time",
    ),
    (
        "local fold",
        lambda d: use_local(d, local(month=11, day=1, hours=1, minutes=30, **NY)),
        "local_time",
    ),
    ("window negative", lambda d: d.update(delivery_window="-1s"), "delivery_window"),
    ("window too long", lambda d: d.update(delivery_window=f"{32 * 86400}s"), "delivery_window"),
    ("retry_for zero", lambda d: d.update(retry_for="0s"), "retry_for"),
    ("retry_for negative", lambda d: d.update(retry_for="-60s"), "retry_for"),
    ("retry_for too long", lambda d: d.update(retry_for=f"{31 * 86400}s"), "retry_for"),
]


@pytest.mark.parametrize(("name", "change", "path"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_names_its_field(name: str, change: Callable[[Body], object], path: str) -> None:
    """Breaking one rule yields exactly one violation, on that rule's field path."""
    found = violations(edit(change))
    assert list(found) == [path], found


def test_missing_time_message() -> None:
    """With no time the violation is on scheduled_at, naming the three ways to say when."""
    found = violations(edit(lambda d: d.pop("scheduled_at")))
    assert found == {
        "scheduled_at": "a time is required: scheduled_at, local_time or next_free_slot"
    }


def test_missing_offset_message() -> None:
    """A local time without zone or offset says so with the contract's message."""
    found = violations(edit(lambda d: use_local(d, local())))
    assert found == {"local_time": "local_time needs time_zone or utc_offset"}


def test_gap_message_names_both_instants() -> None:
    """A local time in the spring-forward gap is refused naming both candidate instants."""
    gap = local(month=3, day=8, hours=2, minutes=30, **NY)
    found = violations(edit(lambda d: use_local(d, gap)))
    assert "2026-03-08T07:30:00Z" in found["local_time"]
    assert "2026-03-08T06:30:00Z" in found["local_time"]


def test_past_message_gives_amounts() -> None:
    """A time two hours old says how old and what the tolerance is."""
    found = violations(edit(lambda d: d.update(scheduled_at="2026-03-01T10:00:00Z")))
    assert "is 2h in the past; the clock-skew tolerance is 60s" in found["scheduled_at"]


def test_unknown_zone_is_named() -> None:
    """An unknown zone id is quoted in the violation."""
    found = violations(edit(lambda d: use_local(d, local(time_zone={"id": "Mars/Base"}))))
    assert "'Mars/Base'" in found["local_time.time_zone"]


def test_large_image_is_refused() -> None:
    """Inline image data over 10 MB is refused on the data field."""
    req = request(body())
    req.pin.media_source.image_base64.content_type = "image/png"
    req.pin.media_source.image_base64.data = b"\0" * (va.IMAGE_MAX_BYTES + 1)
    assert list(violations(req)) == ["pin.media_source.image_base64.data"]


def test_out_of_range_timestamp_is_refused() -> None:
    """A Timestamp outside protobuf's range is a violation, not a crash."""
    req = request(body())
    req.scheduled_at.seconds = 10**12
    assert list(violations(req)) == ["scheduled_at"]


def test_mixed_sign_window_is_refused() -> None:
    """A Duration with seconds and nanos of opposite signs is refused on delivery_window."""
    req = request(body())
    req.delivery_window.seconds, req.delivery_window.nanos = 5, -1
    assert list(violations(req)) == ["delivery_window"]


def test_retry_for_is_kept_and_its_limits_are_explained() -> None:
    """A valid retry_for reaches the spec; zero and too long are refused with messages that
    say what to do, and a mixed-sign Duration is refused on retry_for."""
    spec = va.schedule_spec_from_proto(
        request(edit(lambda d: d.update(retry_for="7200s"))),
        now=NOW,
        skew_tolerance=timedelta(seconds=60),
        horizon=timedelta(days=400),
    )
    assert spec.retry_for == timedelta(hours=2)
    assert (
        "leave it unset for the default"
        in violations(edit(lambda d: d.update(retry_for="0s")))["retry_for"]
    )
    assert violations(edit(lambda d: d.update(retry_for=f"{31 * 86400}s"))) == {
        "retry_for": "must be at most 30 days"
    }
    req = request(body())
    req.retry_for.seconds, req.retry_for.nanos = 5, -1
    assert list(violations(req)) == ["retry_for"]


def test_unknown_policy_value_is_refused() -> None:
    """A policy number outside the enum is refused when a local time needs it."""
    req = request(edit(lambda d: use_local(d, local(**NY))))
    req.nonexistent_time_policy = 99  # type: ignore[assignment]
    assert list(violations(req)) == ["nonexistent_time_policy"]


def test_max_window_is_a_parameter() -> None:
    """The window bound comes from the caller."""
    found = violations(body(), max_window=timedelta(hours=1))
    assert list(found) == ["delivery_window"]


# --- many at once, prefixes --------------------------------------------------------------------


def bad_body() -> Body:
    return {
        "request_id": "x" * 200,
        "account_id": "Bad Account",
        "pin": {
            "board_id": "abc",
            "board_section_id": "x",
            "title": "t" * 101,
            "description": "d" * 801,
            "link": "mailto:a@b.c",
            "alt_text": "a" * 501,
            "dominant_color": "blue",
            "media_source": {
                "multiple_image_urls": {
                    "items": [{"url": "https://e.com/1.jpg"}, {"url": "bad", "title": "t" * 101}],
                    "index": 7,
                }
            },
        },
        "local_time": local(month=13, **NY),
        "delivery_window": "-5s",
    }


BAD_PATHS = {
    "request_id",
    "account_id",
    "pin.board_id",
    "pin.board_section_id",
    "pin.title",
    "pin.description",
    "pin.link",
    "pin.alt_text",
    "pin.dominant_color",
    "pin.media_source.multiple_image_urls.items[1].url",
    "pin.media_source.multiple_image_urls.items[1].title",
    "pin.media_source.multiple_image_urls.index",
    "local_time.month",
    "delivery_window",
}


def test_every_violation_is_reported_at_once() -> None:
    """A request breaking many rules gets one error naming every bad field."""
    assert set(violations(bad_body())) == BAD_PATHS


def test_prefix_names_the_batch_item() -> None:
    """With a prefix every path is under it, as a batch needs (`requests[3].pin.title`)."""
    found = violations(bad_body(), prefix="requests[3]")
    assert set(found) == {f"requests[3].{p}" for p in BAD_PATHS}
    assert "requests[3].pin.title" in found


def test_preview_ignores_request_id_but_checks_the_rest() -> None:
    """PreviewSchedule is validated like SchedulePin except its ignored request_id."""
    data = bad_body()
    req = json_format.ParseDict(data, scheduler_pb2.PreviewScheduleRequest())
    with pytest.raises(InvalidArgument) as info:
        va.schedule_spec_from_proto(req, **LIMITS)
    assert {v.field for v in info.value.violations} == BAD_PATHS - {"request_id"}


# --- idempotency hash --------------------------------------------------------------------------


def test_hash_ignores_request_id_and_is_stable() -> None:
    """The hash depends on content only: another request_id gives the same hash, every time."""
    first = request(body())
    second = request(edit(lambda d: d.update(request_id="other")))
    assert va.request_hash(first) == va.request_hash(second) == va.request_hash(request(body()))
    preview = json_format.ParseDict(body(), scheduler_pb2.PreviewScheduleRequest())
    assert va.request_hash(preview) == va.request_hash(first)
    assert first.request_id  # hashing does not clear the caller's request_id


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["pin"].update(title="Other"),
        lambda d: d.update(scheduled_at="2026-12-01T14:00:01Z"),
        lambda d: d.update(delivery_window="7201s"),
        lambda d: d.update(account_id="acme2"),
        lambda d: d.update(ambiguous_time_policy="AMBIGUOUS_TIME_POLICY_LATER"),
    ],
)
def test_hash_changes_with_content(change: Callable[[Body], object]) -> None:
    """Any change of content changes the hash."""
    assert va.request_hash(request(edit(change))) != va.request_hash(request(body()))


# --- helpers used by other handlers -----------------------------------------------------------


def test_validate_account_id() -> None:
    """Account ids are 1-63 of a-z0-9-_ starting with a letter or digit; others name the field."""
    assert fields.validate_account_id("acme_2-x", "account_id") == "acme_2-x"
    assert fields.validate_account_id("0" + "a" * 62, "account_id")
    for bad in ("", "Acme", "_a", "a" * 64, "a b", "acme\n", "açme"):
        with pytest.raises(InvalidArgument) as info:
            fields.validate_account_id(bad, "account.id")
        assert info.value.violations[0].field == "account.id"


def test_validate_pin_uses_the_given_path() -> None:
    """`validate_pin` reports under the path it is given (as UpdateJob's `job.pin`)."""
    pin = job_pb2.Pin(board_id="x")
    with pytest.raises(InvalidArgument) as info:
        va.validate_pin(pin, path="job.pin")
    assert {v.field for v in info.value.violations} == {"job.pin.board_id", "job.pin.media_source"}
    good = request(body()).pin
    assert va.validate_pin(good) == va.schedule_spec_from_proto(request(body()), **LIMITS).pin


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com", True),
        ("HTTP://EXAMPLE.COM/A?b=c#d", True),
        ("https://例え.jp/パス", True),
        ("https://user:pw@example.com:8443/x", True),
        ("http://[::1]:8080/", True),
        ("file:///etc/passwd", False),
        ("data:image/png;base64,AAAA", False),
        ("//example.com/x", False),
        ("https://exa mple.com", False),
        ("https://example.com/\x00", False),
    ],
)
def test_url_problem(url: str, ok: bool) -> None:
    """Only absolute http(s) URLs with a host and no spaces or control characters pass."""
    assert (fields.url_problem(url) is None) is ok


@settings(max_examples=200, database=None)
@given(title=st.text(max_size=120), board_id=st.text(alphabet="0123456789a٣ \n", max_size=21))
def test_title_and_board_rules_hold_for_any_text(title: str, board_id: str) -> None:
    """A title is refused exactly when over 100 characters; a board id exactly when not 1-19 ASCII
    digits."""
    data = body()
    data["pin"].update(title=title, board_id=board_id)
    req = request(data)
    try:
        va.schedule_spec_from_proto(req, **LIMITS)
        found: set[str] = set()
    except InvalidArgument as e:
        found = {v.field for v in e.violations}
    assert ("pin.title" in found) is (len(title) > 100)
    board_ok = board_id.isascii() and board_id.isdigit() and 1 <= len(board_id) <= 19
    assert ("pin.board_id" in found) is (not board_ok)


def test_input_request_is_not_modified() -> None:
    """Validation and hashing leave the caller's message untouched."""
    req = request(body())
    before = copy.deepcopy(req)
    va.schedule_spec_from_proto(req, **LIMITS)
    assert req == before
