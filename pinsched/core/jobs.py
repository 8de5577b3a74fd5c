"""The job model and its one transition table. Pure: no I/O, no clock reads.

A `Job` is a frozen value; it changes only through `transition` (a state change) or `touch` (a
change that keeps the state), both of which bump `version` and stamp `updated_at`. Every other
module asks this one whether a state change is allowed.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from pinsched.core.errors import IllegalTransition
from pinsched.core.replacing import replacer
from pinsched.core.video import MediaStage, VideoAsset, VideoUrl


class JobState(enum.StrEnum):
    """Where a job is in its life (DESIGN §3)."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    DELIVERED = "DELIVERED"
    RETRYING = "RETRYING"
    FAILED = "FAILED"
    PERMANENTLY_FAILED = "PERMANENTLY_FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"


S = JobState

TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = {
    # → PERMANENTLY_FAILED before any send: the job's video failed staging
    # (`pinsched.media.staging`).
    S.PENDING: frozenset({S.QUEUED, S.CANCELLED, S.PERMANENTLY_FAILED}),
    S.QUEUED: frozenset({S.SUBMITTED, S.CANCELLED, S.PENDING, S.PERMANENTLY_FAILED}),
    S.SUBMITTED: frozenset(
        {S.DELIVERED, S.RETRYING, S.PERMANENTLY_FAILED, S.FAILED, S.CANCELLING, S.CANCELLED}
    ),
    S.RETRYING: frozenset({S.QUEUED, S.CANCELLED, S.PENDING, S.PERMANENTLY_FAILED}),
    S.DELIVERED: frozenset({S.CANCELLING}),
    # A delete Pinterest refuses for good leaves the pin live: back to DELIVERED, with the error.
    S.CANCELLING: frozenset({S.CANCELLED, S.DELIVERED}),
    S.FAILED: frozenset({S.CANCELLED, S.PENDING}),
    S.PERMANENTLY_FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset(),
}  # a state mapped to the empty set is terminal

#: States in which pinsched still has automatic work to do for the job.
ACTIVE_STATES: Final = frozenset({S.PENDING, S.QUEUED, S.SUBMITTED, S.RETRYING, S.CANCELLING})
#: States in which nothing more happens without the user.
SETTLED_STATES: Final = frozenset(JobState) - ACTIVE_STATES
#: States whose pin has never been sent (safe to change or drop without asking Pinterest).
UNSENT_STATES: Final = frozenset({S.PENDING, S.QUEUED, S.RETRYING, S.FAILED})


def can_transition(src: JobState, dst: JobState) -> bool:
    """Whether the table allows *src* → *dst*."""
    return dst in TRANSITIONS[src]


class ErrorCategory(enum.StrEnum):
    """Kinds of delivery failure; mirrors `JobError.Category` of the API."""

    RATE_LIMITED = "RATE_LIMITED"
    AUTH = "AUTH"
    REJECTED = "REJECTED"
    UNAVAILABLE = "UNAVAILABLE"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    SPAM_BLOCKED = "SPAM_BLOCKED"
    EXHAUSTED = "EXHAUSTED"
    MEDIA = "MEDIA"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobError:
    """Why an attempt failed."""

    category: ErrorCategory
    message: str
    http_status: int = 0
    pinterest_code: int = 0
    retryable: bool = False
    pinterest_request_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "category": self.category.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobError:
        return cls(**{**data, "category": ErrorCategory(data["category"])})


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageUrl:
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageBase64:
    """An inline image. Given its bytes, it names itself by `sha256` and `size`; read back from
    the store it is that reference alone (`data` empty) until the bytes are asked for. Two
    images are equal when their references are, with or without the bytes."""

    content_type: str
    data: bytes = field(default=b"", compare=False, repr=False)
    sha256: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        if self.data and not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())
            object.__setattr__(self, "size", len(self.data))

    @property
    def loaded(self) -> bool:
        """Whether the bytes are here (not only the reference)."""
        return bool(self.data) or not self.size

    def reference(self) -> ImageBase64:
        """This image without its bytes."""
        if not self.data:
            return self
        return ImageBase64(content_type=self.content_type, sha256=self.sha256, size=self.size)


@dataclass(frozen=True, slots=True, kw_only=True)
class CarouselItem:
    url: str
    title: str = ""
    description: str = ""
    link: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Carousel:
    items: tuple[CarouselItem, ...]
    index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Video:
    media_id: str
    cover_image_url: str = ""
    cover_image_key_frame_time: int | None = None


MediaSource = ImageUrl | ImageBase64 | Carousel | Video | VideoUrl | VideoAsset


@dataclass(frozen=True, slots=True, kw_only=True)
class PinSpec:
    """The pin to create; validated before it becomes a job."""

    board_id: str
    media: MediaSource
    board_section_id: str = ""
    title: str = ""
    description: str = ""
    link: str = ""
    alt_text: str = ""
    dominant_color: str = ""


def pin_reference(pin: PinSpec) -> PinSpec:
    """*pin* with an inline image reduced to its reference (the bytes stay in the store)."""
    if isinstance(pin.media, ImageBase64) and pin.media.data:
        return dataclasses.replace(pin, media=pin.media.reference())
    return pin


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalTime:
    """A wall-clock time as the client gave it, with its IANA zone or fixed UTC offset."""

    year: int
    month: int
    day: int
    hours: int = 0
    minutes: int = 0
    seconds: int = 0
    nanos: int = 0
    time_zone: str = ""
    utc_offset_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One entry of a job's history (and one row of the event log)."""

    from_state: JobState | None  # None for the creation of the job
    to_state: JobState
    time: datetime
    reason: str
    attempt: int = 0
    error: JobError | None = None
    sequence: int = 0


class RemoteState(enum.StrEnum):
    """Where a delivered pin's change stands on Pinterest (stored as its name)."""

    PENDING = "PENDING"
    APPLIED = "APPLIED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteUpdate:
    """A change of a delivered pin's mutable fields being applied on Pinterest (PATCH).

    `revision` grows with every UpdateJob; the dispatcher marks the change APPLIED only when the
    revision it sent is still the latest, so no update is lost.
    """

    paths: tuple[str, ...]
    state: RemoteState = RemoteState.PENDING
    revision: int = 1
    attempts: int = 0
    error: JobError | None = None
    #: When the first PATCH of this change failed: retries give up a bounded time after it.
    failing_since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "paths": list(self.paths),
            "state": self.state.value,
            "revision": self.revision,
            "attempts": self.attempts,
            "error": self.error.to_dict() if self.error else None,
            "failing_since": self.failing_since.isoformat() if self.failing_since else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemoteUpdate:
        error = data.get("error")
        since = data.get("failing_since")
        return cls(
            paths=tuple(data["paths"]),
            state=RemoteState(data["state"]),
            revision=data["revision"],
            attempts=data["attempts"],
            error=JobError.from_dict(error) if error else None,
            failing_since=datetime.fromisoformat(since) if since else None,
        )

    @property
    def pending(self) -> bool:
        return self.state is RemoteState.PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotRef:
    """The posting-schedule slot a job occupies (see `pinsched.core.slots`)."""

    at: datetime  # the slot's instant (UTC); planned_at is this or later (spacing in the slot)
    local: datetime  # naive wall-clock time of the slot as the schedule lists it
    time_zone: str
    not_before: datetime  # what the job asked for: a re-plan never moves it earlier
    interval: timedelta = timedelta(0)  # board group: kept after the previous job of the group

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "local": self.local.isoformat(),
            "time_zone": self.time_zone,
            "not_before": self.not_before.isoformat(),
            "interval_s": self.interval.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlotRef:
        return cls(
            at=datetime.fromisoformat(data["at"]),
            local=datetime.fromisoformat(data["local"]),
            time_zone=data["time_zone"],
            not_before=datetime.fromisoformat(data["not_before"]),
            interval=timedelta(seconds=data["interval_s"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A scheduled pin. Datetimes are aware UTC."""

    id: str
    account_id: str
    pin: PinSpec
    state: JobState
    scheduled_at: datetime
    planned_at: datetime
    window: timedelta = timedelta(0)
    local_time: LocalTime | None = None
    request_id: str = ""
    request_hash: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = None
    pinterest_pin_id: str = ""
    last_error: JobError | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    delivered_at: datetime | None = None
    late_by: timedelta | None = None
    cancel_requested: bool = False
    remote_update: RemoteUpdate | None = None
    #: How long transient failures are retried after `planned_at`; None: the default (the end
    #: of the delivery window, else 24 h; see `retry.retry_deadline`).
    retry_for: timedelta | None = None
    slot: SlotRef | None = None  # placed by next_free_slot
    group_id: str = ""  # jobs of one request with also_boards share it
    media: MediaStage | None = None  # staging of a video_url / video_asset (pinsched.media.staging)
    history: tuple[Transition, ...] = field(default=(), compare=False)

    @property
    def window_end(self) -> datetime:
        return self.scheduled_at + self.window

    @property
    def due_at(self) -> datetime | None:
        """When the scheduler must act on this job next, or None if it waits for nothing timed.
        The same rule as the stored `due_us` column (store/schema.py, pg_schema.py), which the
        due-time index and the heap's refill read: the two must never disagree."""
        if self.state is S.PENDING:
            return self.planned_at
        if self.state is S.RETRYING:
            return self.next_attempt_at or self.planned_at
        return None

    @property
    def send_at(self) -> datetime:
        """The instant this job may be sent: its retry's time after a failure, else its planned
        time. The scheduler queues a job up to `scheduler.LEAD_US` ahead of it; the dispatcher
        waits for it. A retry is always after the planned time (the failure came after it): a
        retry time left from before a move back to PENDING and a later plan does not count."""
        retry = self.next_attempt_at
        return retry if retry is not None and retry > self.planned_at else self.planned_at


def transition(
    job: Job, to: JobState, *, now: datetime, reason: str, **changes: Any
) -> tuple[Job, Transition]:
    """Return *job* moved to *to* (with *changes* applied) and the history entry recording it.

    Raises `IllegalTransition` if the table forbids the move.
    """
    if not can_transition(job.state, to):
        raise IllegalTransition(job.id, job.state.value, to.value)
    return _change(job, to, now=now, reason=reason, changes=changes)


def touch(job: Job, *, now: datetime, reason: str, **changes: Any) -> tuple[Job, Transition]:
    """Return *job* changed in place of its state (an update, a re-plan) and its history entry."""
    return _change(job, job.state, now=now, reason=reason, changes=changes)


def _change(
    job: Job, to: JobState, *, now: datetime, reason: str, changes: Mapping[str, Any]
) -> tuple[Job, Transition]:
    if {"state", "version", "updated_at"} & changes.keys():
        raise ValueError("state, version and updated_at change only through transition()/touch()")
    new = _replace_job(job, {**changes, "state": to, "version": job.version + 1, "updated_at": now})
    entry = Transition(
        from_state=job.state,
        to_state=to,
        time=now,
        reason=reason,
        attempt=new.attempts,
        error=changes.get("last_error") if to is not S.DELIVERED else None,
    )
    return new, entry


#: `dataclasses.replace` for `Job`, generated once (`core.replacing`): every state change.
_replace_job = replacer(Job)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSpec:
    """A validated SchedulePin request, times resolved to UTC; what the store turns into a job."""

    account_id: str
    pin: PinSpec
    scheduled_at: datetime
    window: timedelta = timedelta(0)
    local_time: LocalTime | None = None
    request_id: str = ""
    request_hash: str = ""
    retry_for: timedelta | None = None
    #: Set: place the job in the first free posting slot at or after this instant
    #: (`scheduled_at` then holds the same instant until the store picks the slot).
    next_free_slot: datetime | None = None
    #: More boards: one job each, `board_interval` apart, linked by a group id.
    also_boards: tuple[str, ...] = ()
    board_interval: timedelta = timedelta(0)

    @property
    def window_end(self) -> datetime:
        return self.scheduled_at + self.window


def job_reference(job: Job) -> Job:
    """*job* without inline image bytes (what events, caches and lists carry)."""
    pin = pin_reference(job.pin)
    return job if pin is job.pin else dataclasses.replace(job, pin=pin)
