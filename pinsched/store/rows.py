"""Row mapping for the store: the dataclasses its API speaks and the SQL rows behind them,
plus the statements every transaction shares (CAS; the event log's appends are
`store.eventlog`). Used only by the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from pinsched.core.accounts import Account, Pacing
from pinsched.core.jobs import (
    ACTIVE_STATES,
    ImageBase64,
    Job,
    JobError,
    JobState,
    PinSpec,
    RemoteUpdate,
    SlotRef,
    Transition,
)
from pinsched.core.slots import PostingSchedule
from pinsched.core.video import MediaStage
from pinsched.store import codec
from pinsched.store.driver import Tx

_JOB_COLUMNS: Final = (
    "id, account_id, state, board_id, pin, scheduled_at, window_us, planned_at, local_time, "
    "request_id, request_hash, attempts, next_attempt_at, pinterest_pin_id, last_error, version, "
    "created_at, updated_at, submitted_at, delivered_at, late_by_us, cancel_requested, "
    "remote_update, remote_pending, retry_for_us, slot, slot_at, group_id, media_stage"
)
_JOB_COLUMN_COUNT: Final = _JOB_COLUMNS.count(",") + 1
_ACTIVE_SQL: Final = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES))


@dataclass(frozen=True, slots=True)
class Event:
    """A committed event-log row (plus, for live events, the job right after it)."""

    sequence: int
    job_id: str
    account_id: str
    transition: Transition
    job: Job | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFilter:
    account_id: str = ""
    states: frozenset[JobState] = frozenset()
    board_id: str = ""
    planned_after: datetime | None = None
    planned_before: datetime | None = None
    group_id: str = ""  # the jobs of one also_boards request


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A webhook delivery to enqueue with an event: the endpoint, ids and the JSON body."""

    endpoint: str
    message_id: str
    order_key: str
    event_type: str
    payload: str


#: Renders the webhook deliveries of one event; pure, runs inside the writing transaction.
OutboxRenderer = Callable[[Event], Sequence[OutboxRow]]
#: Renders the webhook deliveries of an account change (old, new), e.g. NEEDS_REAUTH.
AccountOutboxRenderer = Callable[[Account, Account], Sequence[OutboxRow]]


@dataclass(frozen=True, slots=True)
class Outbox:
    """What `Store.open` takes to enqueue webhook deliveries: a renderer for every event, one
    for account changes, and *on_written*, called after each commit that enqueued any."""

    render_event: OutboxRenderer
    render_account: AccountOutboxRenderer | None = None
    on_written: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A row of the webhook outbox."""

    id: int
    endpoint: str
    event_seq: int
    message_id: str
    order_key: str
    event_type: str
    payload: str
    state: str  # PENDING | DELIVERED | DEAD
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class TokenCipher(Protocol):
    """Encrypts account tokens at rest (see `pinsched.ops.crypto`)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, stored: str) -> str: ...


class StaleJob(Exception):
    """A compare-and-set lost: the job changed since it was read. Re-read and decide again."""


_DELIVERY_COLUMNS: Final = (
    "id, endpoint, event_seq, message_id, order_key, event_type, payload, state, attempts, "
    "next_attempt_at, last_status, last_error, created_at, updated_at"
)


def _delivery_from_row(r: tuple[Any, ...]) -> Delivery:
    return Delivery(
        id=int(r[0]),
        endpoint=r[1],
        event_seq=int(r[2]),
        message_id=r[3],
        order_key=r[4],
        event_type=r[5],
        payload=r[6],
        state=r[7],
        attempts=int(r[8]),
        next_attempt_at=codec.from_us(r[9]),
        last_status=r[10],
        last_error=r[11],
        created_at=codec.from_us(r[12]),
        updated_at=codec.from_us(r[13]),
    )


async def _store_media(db: Tx, pin: PinSpec) -> None:
    """Keep an inline image's bytes in the media table (once per content hash)."""
    media = pin.media
    if isinstance(media, ImageBase64) and media.data:
        await db.execute(
            "INSERT INTO media (sha256, size, data) VALUES (?,?,?) ON CONFLICT DO NOTHING",
            (media.sha256, media.size, media.data),
        )


#: The columns `_cas` writes, in `_job_row` order (with the pin: `board_id, pin` after `state`).
_CAS_SET: Final = (
    "scheduled_at=?, window_us=?, planned_at=?, local_time=?, attempts=?, next_attempt_at=?, "
    "pinterest_pin_id=?, last_error=?, version=?, updated_at=?, submitted_at=?, delivered_at=?, "
    "late_by_us=?, cancel_requested=?, remote_update=?, remote_pending=?, retry_for_us=?, "
    "slot=?, slot_at=?, media_stage=? WHERE id=? AND version=?"
)
_CAS_WITH_PIN: Final = "UPDATE jobs SET state=?, board_id=?, pin=?, " + _CAS_SET
_CAS_SAME_PIN: Final = "UPDATE jobs SET state=?, " + _CAS_SET


async def _cas(db: Tx, old: Job, new: Job) -> None:
    """Compare-and-set the stored job from *old* (its version) to *new*. The pin is encoded
    and written only when it changed: a state change keeps the pin object (`core.decision`
    applies changes with `dataclasses.replace`), and the stored row at *old*'s version holds
    *old*'s pin already — unless that row still carries an inline image's bytes (written by a
    pinsched before the media table), which move to the media table at the job's next change."""
    legacy = isinstance(new.pin.media, ImageBase64) and bool(new.pin.media.data)
    if new.pin is old.pin and not legacy:
        sql = _CAS_SAME_PIN
        args: tuple[Any, ...] = (new.state.value, *_job_tail(new), new.id, old.version)
    else:
        await _store_media(db, new.pin)
        sql = _CAS_WITH_PIN
        args = (
            new.state.value,
            new.pin.board_id,
            codec.pin_to_json(new.pin),
            *_job_tail(new),
            new.id,
            old.version,
        )
    if await db.execute(sql, args) == 0:
        raise StaleJob(old.id)


def _job_tail(job: Job) -> tuple[Any, ...]:
    """The values of `_CAS_SET`'s columns (all but the ids) for *job*."""
    row = _job_row(job, pin_json="")
    return (*row[5:9], *row[11:16], *row[17:27], row[28])


# -------------------------------------------------------------------- row mapping


def _fields(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in Job.__dataclass_fields__}


def _job_row(job: Job, pin_json: str | None = None) -> tuple[Any, ...]:
    """The row of *job* (`_JOB_COLUMNS` order); *pin_json* stands for the pin's encoding when
    the caller has it, or does not need it."""
    return (
        job.id,
        job.account_id,
        job.state.value,
        job.pin.board_id,
        codec.pin_to_json(job.pin) if pin_json is None else pin_json,
        codec.to_us(job.scheduled_at),
        codec.td_us(job.window),
        codec.to_us(job.planned_at),
        codec.local_time_to_json(job.local_time),
        job.request_id or None,
        job.request_hash,
        job.attempts,
        codec.opt_us(job.next_attempt_at),
        job.pinterest_pin_id or None,
        json.dumps(job.last_error.to_dict()) if job.last_error else None,
        job.version,
        codec.to_us(job.created_at),
        codec.to_us(job.updated_at),
        codec.opt_us(job.submitted_at),
        codec.opt_us(job.delivered_at),
        None if job.late_by is None else codec.td_us(job.late_by),
        int(job.cancel_requested),
        json.dumps(job.remote_update.to_dict()) if job.remote_update else None,
        int(job.remote_update is not None and job.remote_update.pending),
        None if job.retry_for is None else codec.td_us(job.retry_for),
        json.dumps(job.slot.to_dict()) if job.slot else None,
        codec.to_us(job.slot.at) if job.slot else None,
        job.group_id or None,
        json.dumps(job.media.to_dict()) if job.media else None,
    )


def _job_from_row(r: tuple[Any, ...]) -> Job:
    return Job(
        id=r[0],
        account_id=r[1],
        state=JobState(r[2]),
        pin=codec.pin_from_json(r[4]),
        scheduled_at=codec.from_us(r[5]),
        window=timedelta(microseconds=r[6]),
        planned_at=codec.from_us(r[7]),
        local_time=codec.local_time_from_json(r[8]),
        request_id=r[9] or "",
        request_hash=r[10],
        attempts=r[11],
        next_attempt_at=codec.opt_dt(r[12]),
        pinterest_pin_id=r[13] or "",
        last_error=JobError.from_dict(json.loads(r[14])) if r[14] else None,
        version=r[15],
        created_at=codec.from_us(r[16]),
        updated_at=codec.from_us(r[17]),
        submitted_at=codec.opt_dt(r[18]),
        delivered_at=codec.opt_dt(r[19]),
        late_by=None if r[20] is None else timedelta(microseconds=r[20]),
        cancel_requested=bool(r[21]),
        remote_update=RemoteUpdate.from_dict(json.loads(r[22])) if r[22] else None,
        retry_for=None if r[24] is None else timedelta(microseconds=r[24]),
        slot=SlotRef.from_dict(json.loads(r[25])) if r[25] else None,
        group_id=r[27] or "",
        media=MediaStage.from_dict(json.loads(r[28])) if r[28] else None,
    )


def _transition_from_row(r: tuple[Any, ...]) -> Transition:
    return Transition(
        sequence=int(r[0]),
        from_state=JobState(r[1]) if r[1] else None,
        to_state=JobState(r[2]),
        time=codec.from_us(r[3]),
        reason=r[4],
        attempt=int(r[5]),
        error=JobError.from_dict(json.loads(r[6])) if r[6] else None,
    )


def _account_row(a: Account) -> tuple[Any, ...]:
    return (
        a.id,
        a.display_name,
        a.access_token,
        a.refresh_token,
        codec.opt_us(a.access_expires_at),
        json.dumps(a.pacing.to_dict()),
        int(a.paused),
        int(a.needs_reauth),
        a.state_reason,
        a.version,
        codec.to_us(a.created_at),
        codec.to_us(a.updated_at),
        codec.opt_us(a.refresh_expires_at),
        a.access_ttl_s,
        a.refresh_ttl_s,
        a.username,
        a.account_type,
        codec.opt_us(a.verified_at),
        a.ad_account_id,
        a.api_base,
        a.hold_reason,
        codec.opt_us(a.reauth_warned_at),
        None if a.scopes is None else ",".join(a.scopes),
    )


#: The account columns after the first twelve, in `_account_row` order.
ACCOUNT_EXTRA_COLUMNS = (
    "refresh_expires_at",
    "access_ttl_s",
    "refresh_ttl_s",
    "username",
    "account_type",
    "verified_at",
    "ad_account_id",
    "api_base",
    "hold_reason",
    "reauth_warned_at",
    "scopes",
)


def _account_from_row(r: tuple[Any, ...]) -> Account:
    """An account from `SELECT *, posting_schedule FROM accounts` (the schedule comes last;
    r[22] is its own column, r[23] the scopes)."""
    return Account(
        posting_schedule=schedule_from_json(r[-1]),
        id=r[0],
        display_name=r[1],
        access_token=r[2],
        refresh_token=r[3],
        access_expires_at=codec.opt_dt(r[4]),
        pacing=Pacing.from_dict(json.loads(r[5])),
        paused=bool(r[6]),
        needs_reauth=bool(r[7]),
        state_reason=r[8],
        version=int(r[9]),
        created_at=codec.from_us(r[10]),
        updated_at=codec.from_us(r[11]),
        refresh_expires_at=codec.opt_dt(r[12]),
        access_ttl_s=int(r[13]),
        refresh_ttl_s=int(r[14]),
        username=r[15],
        account_type=r[16],
        verified_at=codec.opt_dt(r[17]),
        ad_account_id=r[18],
        api_base=r[19],
        hold_reason=r[20],
        reauth_warned_at=codec.opt_dt(r[21]),
        scopes=None if r[23] is None else tuple(s for s in r[23].split(",") if s),
    )


def schedule_from_json(text: str | None) -> PostingSchedule | None:
    """An account's posting schedule from its column."""
    return None if not text else PostingSchedule.from_dict(json.loads(text))


async def _jobs_by_request_id(db: Tx, request_ids: Sequence[str]) -> dict[str, Job]:
    """The stored jobs of *request_ids*, by request id: one lookup per 500 ids."""
    found: dict[str, Job] = {}
    unique = list(dict.fromkeys(request_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        for row in await db.fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE request_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            job = _job_from_row(tuple(row))
            found[job.request_id] = job
    return found


async def _insert_jobs(db: Tx, rows: list[tuple[Any, ...]]) -> None:
    """Insert the job *rows* in one statement (and forget them)."""
    if rows:
        await db.executemany(
            f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * _JOB_COLUMN_COUNT)})", rows
        )
        rows.clear()
