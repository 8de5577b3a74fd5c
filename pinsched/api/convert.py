"""Proto ↔ domain conversion for the API. Pure: no I/O, no clock reads.

Owns the shape of the wire: jobs, pins, errors, transitions, events and slots to proto; states,
timestamps and durations both ways. Conversions *from* proto here check only what a conversion
cannot do without (enum values, timestamp/duration ranges); the request rules (lengths, URLs,
ids, times) live in `pinsched.api.validation`, which calls `api.pin_input.pin_from_proto` once a
pin has passed them. Accounts and their pacing are `api.account_convert`. Timestamps are always
aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from google.protobuf import duration_pb2, timestamp_pb2
from google.type import datetime_pb2  # type: ignore[import-untyped, unused-ignore]

from pinsched.api import video_convert
from pinsched.core.errors import InvalidArgument
from pinsched.core.jobs import (
    Carousel,
    ErrorCategory,
    ImageBase64,
    ImageUrl,
    Job,
    JobError,
    JobState,
    LocalTime,
    PinSpec,
    RemoteUpdate,
    Transition,
)
from pinsched.core.retry import retry_deadline
from pinsched.core.video import VideoAsset, VideoUrl
from pinsched.store import codec
from pinsched.v1 import job_pb2

# Protobuf's ranges: Timestamp 0001-01-01..9999-12-31; Duration ±10,000 years.
TIMESTAMP_SECONDS_MIN: Final = -62_135_596_800
TIMESTAMP_SECONDS_MAX: Final = 253_402_300_799
DURATION_SECONDS_MAX: Final = 315_576_000_000


# --- timestamps and durations ------------------------------------------------------------------


def timestamp_to_proto(at: datetime) -> timestamp_pb2.Timestamp:
    """*at* (aware) as a Timestamp; a naive datetime is a programming error (`ValueError`)."""
    ts = timestamp_pb2.Timestamp()
    set_timestamp(ts, at)
    return ts


def set_timestamp(ts: timestamp_pb2.Timestamp, at: datetime) -> None:
    """Fill *ts* (a message's field, set in place: no Timestamp built and copied, about half
    the cost) with *at* (aware; a naive datetime is a programming error, `ValueError`)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} cannot become a Timestamp")
    # Integer arithmetic: Timestamp.FromDatetime is pure Python and ~3x slower (hot path of
    # every Job and JobEvent on the wire).
    us = codec.to_us(at)
    ts.seconds = us // 1_000_000
    ts.nanos = us % 1_000_000 * 1000


def timestamp_problem(ts: timestamp_pb2.Timestamp) -> str | None:
    """Why *ts* is not a valid Timestamp, or None."""
    if not TIMESTAMP_SECONDS_MIN <= ts.seconds <= TIMESTAMP_SECONDS_MAX:
        return "out of range: a timestamp is between 0001-01-01 and 9999-12-31 UTC"
    if not 0 <= ts.nanos <= 999_999_999:
        return "out of range: nanos must be 0 to 999999999"
    return None


def timestamp_from_proto(ts: timestamp_pb2.Timestamp, *, field: str) -> datetime:
    """*ts* as an aware-UTC datetime (µs precision); `InvalidArgument` on *field* if invalid."""
    problem = timestamp_problem(ts)
    if problem is not None:
        raise InvalidArgument.one(field, problem)
    return ts.ToDatetime(tzinfo=UTC)


def duration_to_proto(delta: timedelta) -> duration_pb2.Duration:
    """*delta* as a Duration (integer arithmetic, like `Duration.FromTimedelta`, which is pure
    Python and slower: every Job on the wire carries one or more)."""
    d = duration_pb2.Duration()
    set_duration(d, delta)
    return d


def set_duration(d: duration_pb2.Duration, delta: timedelta) -> None:
    """Fill *d* (a message's field, set in place) with *delta*."""
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    seconds, rest = divmod(us, 1_000_000)
    if seconds < 0 and rest:  # seconds and nanos share the sign, towards zero
        seconds, rest = seconds + 1, rest - 1_000_000
    d.seconds = seconds
    d.nanos = rest * 1000


def duration_problem(d: duration_pb2.Duration) -> str | None:
    """Why *d* is not a valid Duration (range, mixed signs), or None."""
    if abs(d.seconds) > DURATION_SECONDS_MAX or abs(d.nanos) > 999_999_999:
        return "out of range: a duration is at most ±10,000 years"
    if d.seconds > 0 > d.nanos or d.seconds < 0 < d.nanos:
        return "seconds and nanos must have the same sign"
    return None


def duration_from_proto(d: duration_pb2.Duration, *, field: str) -> timedelta:
    """*d* as a timedelta (µs precision, towards zero); `InvalidArgument` on *field* if invalid."""
    problem = duration_problem(d)
    if problem is not None:
        raise InvalidArgument.one(field, problem)
    return timedelta(seconds=d.seconds, microseconds=int(d.nanos / 1000))


# --- enums -------------------------------------------------------------------------------------


def state_to_proto(state: JobState | None) -> job_pb2.Job.State.ValueType:
    """`Job.State` of *state*; None (the `from_state` of a job's creation) is STATE_UNSPECIFIED."""
    if state is None:
        return job_pb2.Job.STATE_UNSPECIFIED
    return _STATES[state]


_STATES: Final[dict[JobState, job_pb2.Job.State.ValueType]] = {
    s: job_pb2.Job.State.Value(f"STATE_{s.value}") for s in JobState
}


def state_from_proto(value: int, field: str = "state") -> JobState:
    """The `JobState` of a `Job.State`; `InvalidArgument` on *field* for UNSPECIFIED/unknown."""
    try:
        name = job_pb2.Job.State.Name(value)  # type: ignore[arg-type]
    except ValueError:
        name = ""
    if not name.startswith("STATE_") or name == "STATE_UNSPECIFIED":
        names = ", ".join(f"STATE_{s.value}" for s in JobState)
        raise InvalidArgument.one(field, f"not a job state: {value}; one of {names}")
    return JobState(name.removeprefix("STATE_"))


def category_to_proto(category: ErrorCategory) -> job_pb2.JobError.Category.ValueType:
    return job_pb2.JobError.Category.Value(f"CATEGORY_{category.value}")


# --- pins and local times ----------------------------------------------------------------------


def pin_to_proto(pin: PinSpec, *, with_media: bool = False) -> job_pb2.Pin:
    """*pin* on the wire: an inline image as its reference (`sha256`, `size_bytes`), and its
    bytes too only *with_media* (and only if they were loaded)."""
    msg = job_pb2.Pin(
        board_id=pin.board_id,
        board_section_id=pin.board_section_id,
        title=pin.title,
        description=pin.description,
        link=pin.link,
        alt_text=pin.alt_text,
        dominant_color=pin.dominant_color,
    )
    source = msg.media_source
    media = pin.media
    # SetInParent marks the oneof variant even when every value in it is a default.
    if isinstance(media, ImageUrl):
        source.image_url.SetInParent()
        source.image_url.url = media.url
    elif isinstance(media, ImageBase64):
        source.image_base64.SetInParent()
        source.image_base64.content_type = media.content_type
        source.image_base64.sha256 = media.sha256
        source.image_base64.size_bytes = media.size
        if with_media:
            source.image_base64.data = media.data
    elif isinstance(media, Carousel):
        source.multiple_image_urls.SetInParent()
        source.multiple_image_urls.index = media.index
        source.multiple_image_urls.items.extend(
            job_pb2.CarouselItem(
                url=item.url, title=item.title, description=item.description, link=item.link
            )
            for item in media.items
        )
    elif isinstance(media, VideoUrl | VideoAsset):
        video_convert.set_source(source, media)
    else:
        source.video_id.SetInParent()
        source.video_id.media_id = media.media_id
        if media.cover_image_key_frame_time is not None:
            source.video_id.cover_image_key_frame_time = media.cover_image_key_frame_time
        else:
            source.video_id.cover_image_url = media.cover_image_url
    return msg


def local_time_to_proto(lt: LocalTime) -> datetime_pb2.DateTime:
    msg = datetime_pb2.DateTime(
        year=lt.year,
        month=lt.month,
        day=lt.day,
        hours=lt.hours,
        minutes=lt.minutes,
        seconds=lt.seconds,
        nanos=lt.nanos,
    )
    if lt.utc_offset_s is not None:
        msg.utc_offset.SetInParent()
        msg.utc_offset.seconds = lt.utc_offset_s
    else:
        msg.time_zone.SetInParent()
        msg.time_zone.id = lt.time_zone
    return msg


# --- jobs and events ---------------------------------------------------------------------------


def error_to_proto(error: JobError) -> job_pb2.JobError:
    return job_pb2.JobError(
        category=category_to_proto(error.category),
        http_status=error.http_status,
        pinterest_code=error.pinterest_code,
        message=error.message,
        retryable=error.retryable,
        pinterest_request_id=error.pinterest_request_id,
    )


def transition_to_proto(entry: Transition) -> job_pb2.Transition:
    msg = job_pb2.Transition(
        from_state=state_to_proto(entry.from_state),
        to_state=state_to_proto(entry.to_state),
        time=timestamp_to_proto(entry.time),
        reason=entry.reason,
        attempt=entry.attempt,
        sequence=entry.sequence,
    )
    if entry.error is not None:
        msg.error.CopyFrom(error_to_proto(entry.error))
    return msg


def remote_update_to_proto(update: RemoteUpdate) -> job_pb2.RemoteUpdate:
    """The progress of a PATCH of a delivered pin; an unknown state string is UNSPECIFIED."""
    try:
        state = job_pb2.RemoteUpdate.State.Value(f"STATE_{update.state}")
    except ValueError:
        state = job_pb2.RemoteUpdate.STATE_UNSPECIFIED
    msg = job_pb2.RemoteUpdate(state=state, paths=update.paths, attempts=update.attempts)
    if update.error is not None:
        msg.error.CopyFrom(error_to_proto(update.error))
    return msg


def job_to_proto(job: Job, *, with_history: bool = False, with_media: bool = False) -> job_pb2.Job:
    """*job* on the wire; `history` only when *with_history* (GetJob), as the API promises;
    inline image bytes only *with_media* (GetJob's full view)."""
    # Times and durations are filled in place (`set_timestamp`): a hot path (every Job of a
    # batch answer, every watch event).
    msg = job_pb2.Job(
        id=job.id,
        account_id=job.account_id,
        pin=pin_to_proto(job.pin, with_media=with_media),
        state=state_to_proto(job.state),
        attempts=job.attempts,
        pinterest_pin_id=job.pinterest_pin_id,
        version=job.version,
        request_id=job.request_id,
        cancel_requested=job.cancel_requested,
    )
    window_end = job.window_end
    set_timestamp(msg.scheduled_at, job.scheduled_at)
    set_duration(msg.delivery_window, job.window)
    set_timestamp(msg.window_end, window_end)
    set_timestamp(msg.planned_at, job.planned_at)
    set_timestamp(msg.create_time, job.created_at)
    set_timestamp(msg.update_time, job.updated_at)
    if job.local_time is not None:
        msg.local_time.CopyFrom(local_time_to_proto(job.local_time))
    if job.next_attempt_at is not None:
        set_timestamp(msg.next_attempt_at, job.next_attempt_at)
    if job.last_error is not None:
        msg.last_error.CopyFrom(error_to_proto(job.last_error))
    if job.late_by is not None:
        set_duration(msg.late_by, job.late_by)
    if job.delivered_at is not None:
        set_timestamp(msg.delivered_time, job.delivered_at)
    if job.remote_update is not None:
        msg.remote_update.CopyFrom(remote_update_to_proto(job.remote_update))
    if job.retry_for is not None:
        set_duration(msg.retry_for, job.retry_for)
    set_timestamp(
        msg.retry_until,
        retry_deadline(planned_at=job.planned_at, window_end=window_end, retry_for=job.retry_for),
    )
    if job.slot is not None:
        msg.slot.CopyFrom(slot_to_proto(job.slot.local, job.slot.time_zone, job.slot.at))
    msg.group_id = job.group_id
    if job.media is not None:
        msg.media.CopyFrom(video_convert.stage_to_proto(job.media))
    if with_history:
        msg.history.extend(transition_to_proto(entry) for entry in job.history)
    return msg


def slot_to_proto(local: datetime, time_zone: str, at: datetime) -> job_pb2.JobSlot:
    """A posting slot: its listed wall-clock time, zone and instant."""
    return job_pb2.JobSlot(
        local_time=datetime_pb2.DateTime(
            year=local.year,
            month=local.month,
            day=local.day,
            hours=local.hour,
            minutes=local.minute,
            seconds=local.second,
        ),
        time_zone=time_zone,
        start_time=timestamp_to_proto(at),
    )


def event_to_proto(
    seq: int,
    job_id: str,
    account_id: str,
    from_state: JobState | None,
    to_state: JobState,
    time: datetime,
    reason: str,
    job: Job | None,
) -> job_pb2.JobEvent:
    """One watch-stream event; *job* (the job right after it) goes without its history."""
    msg = job_pb2.JobEvent(
        sequence=seq,
        job_id=job_id,
        account_id=account_id,
        from_state=state_to_proto(from_state),
        to_state=state_to_proto(to_state),
        time=timestamp_to_proto(time),
        reason=reason,
    )
    if job is not None:
        msg.job.CopyFrom(job_to_proto(job, with_history=False))
    return msg


class StoredEvent(Protocol):
    """What `stored_event_to_proto` reads: an event-log row (the store's `Event`)."""

    @property
    def sequence(self) -> int: ...
    @property
    def job_id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def transition(self) -> Transition: ...
    @property
    def job(self) -> Job | None: ...


def stored_event_to_proto(event: StoredEvent) -> job_pb2.JobEvent:
    """`event_to_proto` of an event-log row."""
    t = event.transition
    return event_to_proto(
        event.sequence,
        event.job_id,
        event.account_id,
        t.from_state,
        t.to_state,
        t.time,
        t.reason,
        event.job,
    )
