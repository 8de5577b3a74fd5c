"""Tests of `pinsched.api.convert`: every field crosses the wire, and tokens never do."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from pinsched.api import account_convert as acv
from pinsched.api import convert as cv
from pinsched.api import pin_input
from pinsched.core.accounts import Account, Pacing
from pinsched.core.errors import InvalidArgument
from pinsched.core.jobs import (
    Carousel,
    CarouselItem,
    ErrorCategory,
    ImageBase64,
    ImageUrl,
    Job,
    JobError,
    JobState,
    LocalTime,
    PinSpec,
    RemoteState,
    RemoteUpdate,
    SlotRef,
    Transition,
    Video,
)
from pinsched.core.video import READY, MediaStage
from pinsched.v1 import account_pb2, job_pb2

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ERROR = JobError(
    category=ErrorCategory.RATE_LIMITED,
    message="Too many requests",
    http_status=429,
    pinterest_code=8,
    retryable=True,
    pinterest_request_id="rid-1",
)


def full_job() -> Job:
    """A job with every field set to a non-default value."""
    history = (
        Transition(from_state=None, to_state=JobState.PENDING, time=T0, reason="scheduled"),
        Transition(
            from_state=JobState.SUBMITTED,
            to_state=JobState.RETRYING,
            time=T0 + timedelta(minutes=5),
            reason="429",
            attempt=1,
            error=ERROR,
            sequence=7,
        ),
    )
    return Job(
        id="job-1",
        account_id="acme",
        pin=PinSpec(
            board_id="123456789",
            board_section_id="987",
            title="Title ✨",
            description="A description",
            link="https://example.com/p",
            alt_text="alt",
            dominant_color="#6E7874",
            media=ImageUrl(url="https://example.com/a.jpg"),
        ),
        state=JobState.DELIVERED,
        scheduled_at=T0,
        planned_at=T0 + timedelta(minutes=30),
        window=timedelta(hours=2),
        local_time=LocalTime(year=2026, month=3, day=1, hours=7, time_zone="America/New_York"),
        request_id="req-1",
        request_hash="ab" * 32,
        attempts=2,
        next_attempt_at=T0 + timedelta(minutes=40),
        pinterest_pin_id="813744226420795884",
        last_error=ERROR,
        version=5,
        created_at=T0 - timedelta(days=1),
        updated_at=T0 + timedelta(minutes=41),
        submitted_at=T0 + timedelta(minutes=40),
        delivered_at=T0 + timedelta(minutes=41),
        late_by=timedelta(milliseconds=12),
        cancel_requested=True,
        remote_update=RemoteUpdate(paths=("pin.title", "pin.link"), attempts=2, error=ERROR),
        retry_for=timedelta(hours=6),
        slot=SlotRef(
            at=T0,
            local=datetime(2026, 3, 1, 7),  # noqa: DTZ001
            time_zone="America/New_York",
            not_before=T0 - timedelta(hours=1),
        ),
        group_id="job-1",
        media=MediaStage(
            state=READY,
            source="url:https://e.com/v.mp4",
            started_at=T0,
            pinterest_media_id="77",
            detail="processed",
        ),
        history=history,
    )


def ts(at: datetime) -> timestamp_pb2.Timestamp:
    return cv.timestamp_to_proto(at)


# --- jobs --------------------------------------------------------------------------------------


def test_job_to_proto_sets_every_field_of_the_message() -> None:
    """A fully populated job fills every field of `Job`, so no proto field is forgotten."""
    msg = cv.job_to_proto(full_job(), with_history=True)
    assert {f.name for f, _ in msg.ListFields()} == {f.name for f in msg.DESCRIPTOR.fields}


def test_job_round_trips_field_by_field() -> None:
    """Every job field on the wire reads back to the domain value it came from."""
    job = full_job()
    msg = cv.job_to_proto(job, with_history=True)
    assert msg.id == job.id
    assert msg.account_id == job.account_id
    assert pin_input.pin_from_proto(msg.pin) == job.pin
    assert cv.state_from_proto(msg.state) is job.state
    assert cv.timestamp_from_proto(msg.scheduled_at, field="") == job.scheduled_at
    assert pin_input.local_time_from_proto(msg.local_time) == job.local_time
    assert cv.duration_from_proto(msg.delivery_window, field="") == job.window
    assert cv.timestamp_from_proto(msg.window_end, field="") == job.window_end
    assert cv.timestamp_from_proto(msg.planned_at, field="") == job.planned_at
    assert msg.attempts == job.attempts
    assert cv.timestamp_from_proto(msg.next_attempt_at, field="") == job.next_attempt_at
    assert msg.pinterest_pin_id == job.pinterest_pin_id
    assert msg.last_error == cv.error_to_proto(ERROR)
    assert msg.version == job.version
    assert cv.timestamp_from_proto(msg.create_time, field="") == job.created_at
    assert cv.timestamp_from_proto(msg.update_time, field="") == job.updated_at
    assert msg.request_id == job.request_id
    assert cv.duration_from_proto(msg.late_by, field="") == job.late_by
    assert msg.cancel_requested is True
    assert cv.timestamp_from_proto(msg.delivered_time, field="") == job.delivered_at
    assert list(msg.history) == [cv.transition_to_proto(t) for t in job.history]
    assert msg.remote_update == job_pb2.RemoteUpdate(
        state=job_pb2.RemoteUpdate.STATE_PENDING,
        paths=["pin.title", "pin.link"],
        attempts=2,
        error=cv.error_to_proto(ERROR),
    )
    assert (msg.slot.local_time.day, msg.slot.local_time.hours) == (1, 7)
    assert not msg.slot.local_time.HasField("time_zone")
    assert msg.slot.time_zone == "America/New_York"
    assert cv.timestamp_from_proto(msg.slot.start_time, field="") == T0
    assert msg.group_id == "job-1"
    assert msg.media == job_pb2.JobMedia(
        state=job_pb2.JobMedia.STATE_READY,
        pinterest_media_id="77",
        detail="processed",
        start_time=cv.timestamp_to_proto(T0),
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (RemoteState.PENDING, job_pb2.RemoteUpdate.STATE_PENDING),
        (RemoteState.APPLIED, job_pb2.RemoteUpdate.STATE_APPLIED),
        (RemoteState.FAILED, job_pb2.RemoteUpdate.STATE_FAILED),
    ],
)
def test_remote_update_states(state: RemoteState, expected: int) -> None:
    """A remote update's state maps to its proto enum value."""
    msg = cv.remote_update_to_proto(RemoteUpdate(paths=("pin.title",), state=state))
    assert msg.state == expected
    assert not msg.HasField("error")


def test_job_without_history_and_optionals() -> None:
    """Lists omit history; unset optional times and errors stay unset on the wire."""
    job = full_job()
    bare = Job(
        id=job.id,
        account_id=job.account_id,
        pin=job.pin,
        state=JobState.PENDING,
        scheduled_at=T0,
        planned_at=T0,
        created_at=T0,
        updated_at=T0,
        history=job.history,
    )
    msg = cv.job_to_proto(bare)
    assert not msg.history
    for name in (
        "local_time", "next_attempt_at", "last_error", "late_by", "delivered_time", "remote_update",
    ):  # fmt: skip
        assert not msg.HasField(name), name
    assert msg.HasField("delivery_window")
    assert msg.window_end == msg.scheduled_at


def test_job_json_uses_the_contract_names() -> None:
    """In proto JSON the job reads as DESIGN §2 shows: STATE_* names and history entries."""
    data = json_format.MessageToDict(
        cv.job_to_proto(full_job(), with_history=True), preserving_proto_field_name=True
    )
    assert data["state"] == "STATE_DELIVERED"
    assert data["planned_at"] == "2026-03-01T12:30:00Z"
    assert data["delivery_window"] == "7200s"
    assert data["history"][1]["from_state"] == "STATE_SUBMITTED"
    assert data["history"][1]["to_state"] == "STATE_RETRYING"
    assert data["history"][1]["error"]["category"] == "CATEGORY_RATE_LIMITED"
    assert "from_state" not in data["history"][0]  # the creation entry has no previous state
    assert data["local_time"]["time_zone"]["id"] == "America/New_York"


@pytest.mark.parametrize("state", list(JobState))
def test_states_round_trip(state: JobState) -> None:
    """Every job state has a proto value and comes back from it."""
    value = cv.state_to_proto(state)
    assert job_pb2.Job.State.Name(value) == f"STATE_{state.value}"
    assert cv.state_from_proto(value) is state


@pytest.mark.parametrize("value", [0, 42, -1])
def test_unspecified_or_unknown_state_is_invalid(value: int) -> None:
    """STATE_UNSPECIFIED and numbers outside the enum are INVALID_ARGUMENT on the named field."""
    with pytest.raises(InvalidArgument) as info:
        cv.state_from_proto(value, field="states[2]")
    assert [v.field for v in info.value.violations] == ["states[2]"]


@pytest.mark.parametrize("category", list(ErrorCategory))
def test_error_categories_map(category: ErrorCategory) -> None:
    """Every error category maps to its CATEGORY_* value, other fields copied."""
    msg = cv.error_to_proto(JobError(category=category, message="m", http_status=500))
    assert job_pb2.JobError.Category.Name(msg.category) == f"CATEGORY_{category.value}"
    assert (msg.message, msg.http_status) == ("m", 500)


def test_transition_to_proto() -> None:
    """A transition keeps its states, time, reason, attempt, error and sequence."""
    entry = full_job().history[1]
    msg = cv.transition_to_proto(entry)
    assert (msg.from_state, msg.to_state) == (
        job_pb2.Job.STATE_SUBMITTED,
        job_pb2.Job.STATE_RETRYING,
    )
    assert msg.time == ts(entry.time)
    assert (msg.reason, msg.attempt, msg.sequence) == ("429", 1, 7)
    assert msg.error == cv.error_to_proto(ERROR)
    assert cv.state_to_proto(None) == job_pb2.Job.STATE_UNSPECIFIED


def test_event_to_proto_carries_the_job_without_history() -> None:
    """A watch event names the move and carries the job as it is now, without its history."""
    job = full_job()
    msg = cv.event_to_proto(
        9, job.id, job.account_id, JobState.SUBMITTED, JobState.DELIVERED, T0, "delivered", job
    )
    assert (msg.sequence, msg.job_id, msg.account_id, msg.reason) == (
        9,
        "job-1",
        "acme",
        "delivered",
    )
    assert (msg.from_state, msg.to_state) == (
        job_pb2.Job.STATE_SUBMITTED,
        job_pb2.Job.STATE_DELIVERED,
    )
    assert msg.time == ts(T0)
    assert msg.job.id == "job-1"
    assert not msg.job.history
    no_job = cv.event_to_proto(1, "j", "a", None, JobState.PENDING, T0, "scheduled", None)
    assert not no_job.HasField("job")
    assert no_job.from_state == job_pb2.Job.STATE_UNSPECIFIED


def test_stored_event_to_proto_reads_an_event_row() -> None:
    """An event-log row (sequence, ids, transition, job) converts like `event_to_proto`."""

    @dataclass(frozen=True)
    class Row:
        sequence: int
        job_id: str
        account_id: str
        transition: Transition
        job: Job | None

    entry = full_job().history[1]
    msg = cv.stored_event_to_proto(Row(3, "j", "a", entry, None))
    assert msg == cv.event_to_proto(
        3, "j", "a", entry.from_state, entry.to_state, entry.time, entry.reason, None
    )


# --- pins and local times ----------------------------------------------------------------------

TEXT = st.text(max_size=20)
IDS = st.integers(0, 10**19 - 1).map(str)
URLS = st.sampled_from(["https://example.com/a.jpg", "http://cdn.example.org/x.png?s=1", ""])
MEDIA = st.one_of(
    st.builds(ImageUrl, url=URLS),
    st.builds(
        ImageBase64, content_type=st.sampled_from(["image/jpeg", "image/png"]), data=st.binary()
    ),
    st.builds(
        Carousel,
        items=st.lists(
            st.builds(CarouselItem, url=URLS, title=TEXT, description=TEXT, link=URLS),
            max_size=5,
        ).map(tuple),
        index=st.integers(0, 4),
    ),
    st.builds(Video, media_id=IDS, cover_image_url=URLS),
    st.builds(
        Video,
        media_id=IDS,
        cover_image_key_frame_time=st.integers(0, 3600),
    ),
)


@settings(max_examples=150, database=None)
@given(
    pin=st.builds(
        PinSpec,
        board_id=IDS,
        media=MEDIA,
        board_section_id=TEXT,
        title=TEXT,
        description=TEXT,
        link=TEXT,
        alt_text=TEXT,
        dominant_color=TEXT,
    )
)
def test_pin_round_trips(pin: PinSpec) -> None:
    """Any pin, whatever its media variant, comes back from the wire unchanged (inline image
    bytes included when they are sent)."""
    msg = cv.pin_to_proto(pin, with_media=True)
    assert pin_input.pin_from_proto(msg) == pin
    again = job_pb2.Pin.FromString(msg.SerializeToString())
    assert pin_input.pin_from_proto(again) == pin


def test_inline_image_goes_out_as_a_reference_unless_asked() -> None:
    """An inline image is sent as its sha256, size and content type; the bytes only with
    `with_media`."""
    data = b"\x89PNG" + bytes(range(256)) * 4
    pin = PinSpec(board_id="1", media=ImageBase64(content_type="image/png", data=data))
    image = cv.pin_to_proto(pin).media_source.image_base64
    assert image.data == b""
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.size_bytes == len(data)
    assert image.content_type == "image/png"
    assert cv.pin_to_proto(pin, with_media=True).media_source.image_base64.data == data


def test_video_key_frame_zero_is_kept() -> None:
    """A key-frame time of 0 is a real cover choice, not an absent one."""
    pin = PinSpec(board_id="1", media=Video(media_id="5", cover_image_key_frame_time=0))
    msg = cv.pin_to_proto(pin)
    assert msg.media_source.video_id.WhichOneof("cover") == "cover_image_key_frame_time"
    assert pin_input.pin_from_proto(msg) == pin


def test_pin_from_proto_without_media_names_the_field() -> None:
    """A pin with no media source cannot be built; the error names media_source under the path."""
    with pytest.raises(InvalidArgument) as info:
        pin_input.pin_from_proto(job_pb2.Pin(board_id="1"), field="requests[1].pin")
    assert info.value.violations[0].field == "requests[1].pin.media_source"


@pytest.mark.parametrize(
    "local",
    [
        LocalTime(year=2026, month=3, day=8, hours=2, minutes=30, time_zone="America/New_York"),
        LocalTime(year=2026, month=1, day=2, seconds=5, nanos=7, utc_offset_s=-3 * 3600 - 1800),
        LocalTime(year=2026, month=1, day=2, utc_offset_s=0),
    ],
)
def test_local_time_round_trips(local: LocalTime) -> None:
    """A local time with a zone or an offset (even +00:00) survives the wire unchanged."""
    msg = cv.local_time_to_proto(local)
    again = type(msg).FromString(msg.SerializeToString())
    assert pin_input.local_time_from_proto(again) == local


# --- timestamps and durations ------------------------------------------------------------------


def test_timestamps_are_aware_utc() -> None:
    """Timestamps convert from any aware datetime and come back as aware UTC."""
    at = datetime(2026, 3, 1, 17, 0, 0, 250, tzinfo=timezone(timedelta(hours=5)))
    back = cv.timestamp_from_proto(cv.timestamp_to_proto(at), field="t")
    assert back == at
    assert back.tzinfo is UTC


def test_naive_datetime_cannot_become_a_timestamp() -> None:
    """A naive datetime reaching the converter is a bug: ValueError, not a guess."""
    with pytest.raises(ValueError, match="naive"):
        cv.timestamp_to_proto(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    "msg",
    [
        timestamp_pb2.Timestamp(seconds=253_402_300_800),
        timestamp_pb2.Timestamp(seconds=-62_135_596_801),
        timestamp_pb2.Timestamp(seconds=0, nanos=-1),
        timestamp_pb2.Timestamp(seconds=0, nanos=1_000_000_000),
    ],
)
def test_out_of_range_timestamps_are_invalid(msg: timestamp_pb2.Timestamp) -> None:
    """Timestamps outside protobuf's range are INVALID_ARGUMENT on the named field."""
    with pytest.raises(InvalidArgument) as info:
        cv.timestamp_from_proto(msg, field="planned_after")
    assert info.value.violations[0].field == "planned_after"


def test_durations() -> None:
    """Durations keep sign and microseconds; mixed signs and huge values are invalid."""
    d = duration_pb2.Duration(seconds=-1, nanos=-500_000_000)
    assert cv.duration_from_proto(d, field="d") == timedelta(seconds=-1.5)
    assert cv.duration_from_proto(cv.duration_to_proto(timedelta(hours=2)), field="d") == (
        timedelta(hours=2)
    )
    for bad in (
        duration_pb2.Duration(seconds=1, nanos=-1),
        duration_pb2.Duration(seconds=10**12),
    ):
        with pytest.raises(InvalidArgument):
            cv.duration_from_proto(bad, field="d")


# --- accounts and pacing -----------------------------------------------------------------------


def account(**changes: object) -> Account:
    values: dict[str, object] = {
        "id": "acme",
        "display_name": "Acme",
        "access_token": "pina_SECRET_ACCESS",
        "refresh_token": "pinr_SECRET_REFRESH",
        "access_expires_at": T0 + timedelta(days=30),
        "pacing": Pacing(min_spacing=timedelta(minutes=5), max_per_hour=4, max_per_day=20),
        "created_at": T0,
        "updated_at": T0 + timedelta(hours=1),
        **changes,
    }
    return Account(**values)  # type: ignore[arg-type]


def test_account_to_proto_never_leaks_tokens() -> None:
    """No token or token expiry reaches the message, its bytes or its JSON."""
    msg = acv.account_to_proto(account())
    assert msg.access_token == ""
    assert msg.refresh_token == ""
    assert not msg.HasField("access_token_expire_time")
    assert msg.has_refresh_token is True
    wire = msg.SerializeToString()
    text = json_format.MessageToJson(msg)
    for secret in ("pina_SECRET_ACCESS", "pinr_SECRET_REFRESH"):
        assert secret.encode() not in wire
        assert secret not in text
        assert secret not in repr(msg)


def test_account_to_proto_fields() -> None:
    """Id, name, pacing, state, pause flag, reason and times are copied."""
    msg = acv.account_to_proto(account(paused=True, state_reason="paused by ops"))
    assert (msg.id, msg.display_name, msg.paused, msg.state_reason) == (
        "acme", "Acme", True, "paused by ops",
    )  # fmt: skip
    assert msg.state == account_pb2.Account.STATE_PAUSED
    assert acv.pacing_from_proto(msg.pacing, "pacing") == account().pacing
    assert msg.create_time == ts(T0)
    assert msg.update_time == ts(T0 + timedelta(hours=1))


@pytest.mark.parametrize(
    ("changes", "state", "has_refresh"),
    [
        ({}, account_pb2.Account.STATE_ACTIVE, True),
        ({"needs_reauth": True, "paused": True}, account_pb2.Account.STATE_NEEDS_REAUTH, True),
        ({"refresh_token": ""}, account_pb2.Account.STATE_ACTIVE, False),
    ],
)
def test_account_state_and_refresh_flag(
    changes: dict[str, object], state: int, has_refresh: bool
) -> None:
    """The account state and `has_refresh_token` follow the stored account."""
    acct = account(**changes)
    msg = acv.account_to_proto(acct)
    assert msg.state == state
    assert msg.has_refresh_token is has_refresh
    assert acv.account_state_to_proto(acct.state) == state


def test_pacing_round_trips() -> None:
    """A pacing policy comes back from the wire unchanged; 0 means no cap."""
    pacing = Pacing(min_spacing=timedelta(seconds=90), max_per_hour=0, max_per_day=50)
    assert acv.pacing_from_proto(acv.pacing_to_proto(pacing), "account.pacing") == pacing
    assert acv.pacing_from_proto(account_pb2.Pacing(), "p") == Pacing(writes_per_minute=0)


@pytest.mark.parametrize(
    ("msg", "path"),
    [
        (account_pb2.Pacing(min_spacing=duration_pb2.Duration(seconds=-1)), "min_spacing"),
        (account_pb2.Pacing(min_spacing=duration_pb2.Duration(seconds=86401)), "min_spacing"),
        (account_pb2.Pacing(min_spacing=duration_pb2.Duration(seconds=1, nanos=-1)), "min_spacing"),
        (account_pb2.Pacing(max_per_hour=-1), "max_per_hour"),
        (account_pb2.Pacing(max_per_day=-5), "max_per_day"),
        (account_pb2.Pacing(writes_per_minute=-1), "writes_per_minute"),
        (account_pb2.Pacing(writes_per_minute=100_001), "writes_per_minute"),
    ],
)
def test_bad_pacing_is_named(msg: account_pb2.Pacing, path: str) -> None:
    """Each bad pacing value is INVALID_ARGUMENT on its field under the prefix."""
    with pytest.raises(InvalidArgument) as info:
        acv.pacing_from_proto(msg, "account.pacing")
    assert [v.field for v in info.value.violations] == [f"account.pacing.{path}"]


def test_all_pacing_violations_at_once() -> None:
    """Several bad pacing values are all reported together."""
    msg = account_pb2.Pacing(
        min_spacing=duration_pb2.Duration(seconds=-5), max_per_hour=-1, writes_per_minute=10**6
    )
    fields = {v.field for v in acv.pacing_violations(msg, "pacing")}
    assert fields == {"pacing.min_spacing", "pacing.max_per_hour", "pacing.writes_per_minute"}
