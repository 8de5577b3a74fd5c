"""Webhook messages: endpoints, event types, the JSON body and its Standard Webhooks signature.
Pure: no I/O, no clock reads (timestamps are parameters).

Owns the outbox renderers handed to `Store.open`: they run inside the writer transaction
of each job change (or account change) and return one `OutboxRow` per endpoint that wants the
event, so the delivery is committed atomically with the event. The body is rendered once per
event and is the same for every endpoint and every attempt:

    {"type": "job.delivered", "id": "msg_42_01JH...", "timestamp": "<event time, ISO UTC>",
     "data": {"sequence": 42, "job_id", "account_id", "from_state", "to_state", "time", "reason",
              "job": <the Job in proto JSON with proto field names; an inline image as its
                      reference: content_type, sha256, size_bytes>}}

Signing (https://www.standardwebhooks.com): headers `webhook-id` (the message id),
`webhook-timestamp` (unix seconds of the attempt) and `webhook-signature`, one
`v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` per configured secret, separated by
spaces (two during a rotation). A secret is written `whsec_<base64 of the key>`.

The job and account JSON comes from an injected `JsonRenderer` (the API's proto JSON); turning
configured endpoints into `Endpoint`s is `webhooks.endpoints`. It does not send anything or
decide retries (`webhooks.sender`, `webhooks.policy`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from google.protobuf import timestamp_pb2

from pinsched.core import notes
from pinsched.core.accounts import Account
from pinsched.core.jobs import Job, JobState, Transition
from pinsched.store import Event, OutboxRow, codec

SECRET_PREFIX: Final = "whsec_"
MIN_KEY_BYTES: Final = 16
USER_AGENT: Final = "pinsched-webhooks/1"

#: The event type of a transition into each state (`job.scheduled` also names the creation).
STATE_EVENT_TYPES: Final[Mapping[JobState, str]] = {
    JobState.PENDING: "job.scheduled",
    JobState.QUEUED: "job.queued",
    JobState.SUBMITTED: "job.submitted",
    JobState.DELIVERED: "job.delivered",
    JobState.RETRYING: "job.retrying",
    JobState.FAILED: "job.failed",
    JobState.PERMANENTLY_FAILED: "job.permanently_failed",
    JobState.CANCELLING: "job.cancelling",
    JobState.CANCELLED: "job.cancelled",
}
JOB_UPDATED: Final = "job.updated"
ACCOUNT_NEEDS_REAUTH: Final = "account.needs_reauth"
ACCOUNT_REAUTH_SOON: Final = "account.reauth_soon"
ACCOUNT_HELD: Final = "account.held"
APP_CREDENTIALS_REFUSED: Final = "app.credentials_refused"
#: Changes of a job's video staging that keep its state, typed by their reason's prefix
#: (`pinsched.media.staging`); the failure's state change follows as `job.permanently_failed`.
MEDIA_EVENT_TYPES: Final[Mapping[str, str]] = {
    "media staging:": "job.media_staging",
    "media ready:": "job.media_ready",
    "media failed:": "job.media_failed",
}
EVENT_TYPES: Final = frozenset(
    {
        *STATE_EVENT_TYPES.values(),
        JOB_UPDATED,
        ACCOUNT_NEEDS_REAUTH,
        ACCOUNT_REAUTH_SOON,
        ACCOUNT_HELD,
        APP_CREDENTIALS_REFUSED,
        notes.AT_RISK_TYPE,
        notes.AT_RISK_CLEARED_TYPE,
        *MEDIA_EVENT_TYPES.values(),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """A configured webhook receiver, ready to sign for. `name` keys its outbox rows."""

    name: str
    url: str
    keys: tuple[bytes, ...] = field(repr=False)
    event_types: tuple[str, ...] = ()  # exact types, `job.*` / `account.*`, or `*`; empty: all
    account_ids: frozenset[str] = frozenset()  # empty: every account
    timeout_s: float = 10.0

    @property
    def label(self) -> str:
        """The URL for logs and errors: without userinfo, query or fragment (credentials)."""
        return redacted_url(self.url)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def wants(self, event_type: str, account_id: str) -> bool:
        """Whether this endpoint subscribes to *event_type* events of *account_id* (an app-wide
        event, with no account, goes to every endpoint that subscribes to its type)."""
        if self.account_ids and account_id and account_id not in self.account_ids:
            return False
        return not self.event_types or any(type_matches(p, event_type) for p in self.event_types)


def redacted_url(url: str) -> str:
    """*url* without userinfo, query or fragment, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def type_matches(pattern: str, event_type: str) -> bool:
    """`*` matches everything, `job.*` every job event, anything else itself."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def pattern_problem(pattern: str) -> str | None:
    """Why *pattern* cannot be an event-type filter, or None."""
    if pattern == "*" or pattern in EVENT_TYPES:
        return None
    if pattern.endswith(".*") and any(t.startswith(pattern[:-1]) for t in EVENT_TYPES):
        return None
    return f"unknown event type {pattern!r} (known: {', '.join(sorted(EVENT_TYPES))}, job.*)"


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError (never quoting it) if malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a secret must be written {SECRET_PREFIX}<base64>")
    text = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX} is not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key is {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes")
    return key


# --- signing -----------------------------------------------------------------------------------


def sign(key: bytes, message_id: str, timestamp: int, body: str) -> str:
    """One `v1,<base64 HMAC-SHA256>` signature of *body* for *message_id* at *timestamp*."""
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    keys: Iterable[bytes], message_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The HTTP headers of one attempt: ids, timestamp, a signature per key, content type."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(k, message_id, timestamp, body) for k in keys),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


# --- bodies ------------------------------------------------------------------------------------


def iso_utc(at: datetime) -> str:
    """*at* (aware) as RFC 3339 in UTC with a `Z`, formatted like proto JSON timestamps."""
    us = codec.to_us(at)  # as the API's Timestamps (`api.convert.timestamp_to_proto`)
    return timestamp_pb2.Timestamp(
        seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000
    ).ToJsonString()


def event_type(transition: Transition) -> str:
    """The webhook event type of a job transition."""
    if transition.from_state is not None and transition.from_state is transition.to_state:
        for prefix, kind in MEDIA_EVENT_TYPES.items():
            if transition.reason.startswith(prefix):
                return kind
        return notes.note_type(transition) or JOB_UPDATED
    return STATE_EVENT_TYPES[transition.to_state]


def _body(kind: str, message_id: str, at: datetime, data: Mapping[str, Any]) -> str:
    envelope = {"type": kind, "id": message_id, "timestamp": iso_utc(at), "data": data}
    return json.dumps(envelope, separators=(",", ":"), sort_keys=False)


class JsonRenderer(Protocol):
    """How a job, an account and a state look in a body: the API's proto JSON, injected by the
    composition root (`pinsched.api.proto_json.PROTO_JSON`) so webhooks never import the API."""

    def job(self, job: Job) -> dict[str, Any]:
        """*job* in proto JSON with proto field names."""
        ...

    def account(self, account: Account) -> dict[str, Any]:
        """*account* in proto JSON with proto field names."""
        ...

    def state(self, state: JobState | None) -> str:
        """The proto enum name of *state* (`STATE_UNSPECIFIED` for None)."""
        ...


def job_event_message(event: Event, render: JsonRenderer) -> tuple[str, str, str]:
    """(message id, event type, body) of a job event. The id is unique across databases (it
    carries the job's random id), the same for every endpoint and every attempt."""
    t = event.transition
    kind = event_type(t)
    message_id = f"msg_{event.sequence}_{event.job_id.lower()}"
    job: dict[str, Any] | None = None
    if event.job is not None:
        # Inline image bytes stay out of webhooks (they can be megabytes): the image is named by
        # its sha256, size_bytes and content_type; GetJob with view JOB_VIEW_FULL has the bytes.
        job = render.job(event.job)
        image = job["pin"].get("media_source", {}).get("image_base64")
        if image is not None:
            image.pop("data", None)
        job.pop("history", None)  # always empty here; GetJob has it
    data = {
        "sequence": event.sequence,
        "job_id": event.job_id,
        "account_id": event.account_id,
        "from_state": render.state(t.from_state),
        "to_state": render.state(t.to_state),
        "time": iso_utc(t.time),
        "reason": t.reason,
        "job": job,
    }
    return message_id, kind, _body(kind, message_id, t.time, data)


def account_event_message(
    new: Account, render: JsonRenderer, kind: str = ACCOUNT_NEEDS_REAUTH
) -> tuple[str, str, str]:
    """(message id, event type, body) of an account event (*kind*: needs re-authorisation,
    will need it soon, held)."""
    suffix = "" if kind == ACCOUNT_NEEDS_REAUTH else f"_{kind.rsplit('.', 1)[1]}"
    message_id = f"msg_acct_{new.id}_{new.version}_{codec.to_us(new.updated_at)}{suffix}"
    data = {"account_id": new.id, "account": render.account(new)}
    return message_id, kind, _body(kind, message_id, new.updated_at, data)


def account_events(old: Account, new: Account) -> list[str]:
    """The account event types the change *old* → *new* starts."""
    kinds = []
    if new.needs_reauth and not old.needs_reauth:
        kinds.append(ACCOUNT_NEEDS_REAUTH)
    if new.reauth_warned_at is not None and old.reauth_warned_at is None:
        kinds.append(ACCOUNT_REAUTH_SOON)
    if new.hold_reason and not old.hold_reason:
        kinds.append(ACCOUNT_HELD)
    return kinds


def notice_message(kind: str, at: datetime, data: Mapping[str, Any]) -> tuple[str, str]:
    """(message id, body) of an app-wide event (no job, no account)."""
    message_id = f"msg_app_{kind.rsplit('.', 1)[1]}_{codec.to_us(at)}"
    return message_id, _body(kind, message_id, at, data)


class OutboxRenderers:
    """The renderers a `store.Outbox` holds, for a fixed list of endpoints; *render* turns
    jobs and accounts into JSON (`JsonRenderer`)."""

    def __init__(self, endpoints: Sequence[Endpoint], render: JsonRenderer) -> None:
        self.endpoints = tuple(endpoints)
        self.render = render

    def render_event(self, event: Event) -> list[OutboxRow]:
        """One row per endpoint that wants *event* (an `OutboxRenderer`)."""
        kind = event_type(event.transition)
        wanted = [e for e in self.endpoints if e.wants(kind, event.account_id)]
        if not wanted:
            return []
        message_id, kind, body = job_event_message(event, self.render)
        return [OutboxRow(e.name, message_id, event.job_id, kind, body) for e in wanted]

    def render_account(self, old: Account, new: Account) -> list[OutboxRow]:
        """A row per interested endpoint for each account event the change starts
        (`account.needs_reauth`, `account.reauth_soon`, `account.held`; an
        `AccountOutboxRenderer`)."""
        rows: list[OutboxRow] = []
        for kind in account_events(old, new):
            wanted = [e for e in self.endpoints if e.wants(kind, new.id)]
            if wanted:
                message_id, kind, body = account_event_message(new, self.render, kind)
                rows += [
                    OutboxRow(e.name, message_id, f"account:{new.id}", kind, body) for e in wanted
                ]
        return rows

    def render_notice(self, kind: str, at: datetime, data: Mapping[str, Any]) -> list[OutboxRow]:
        """A row per endpoint that subscribes to the app-wide event *kind*."""
        wanted = [e for e in self.endpoints if e.wants(kind, "")]
        if not wanted:
            return []
        message_id, body = notice_message(kind, at, data)
        return [OutboxRow(e.name, message_id, "app", kind, body) for e in wanted]
