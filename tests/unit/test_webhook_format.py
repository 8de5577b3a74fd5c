"""Webhook bodies, event types, secrets, Standard Webhooks signatures and outbox rows (pure)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from pinsched.api.proto_json import PROTO_JSON
from pinsched.config import ConfigError, WebhookEndpoint
from pinsched.core.accounts import Account
from pinsched.core.jobs import ImageBase64, Job, JobState, PinSpec, Transition
from pinsched.store import Event
from pinsched.webhooks.endpoints import endpoint_from_config
from pinsched.webhooks.messages import (
    ACCOUNT_HELD,
    ACCOUNT_NEEDS_REAUTH,
    ACCOUNT_REAUTH_SOON,
    APP_CREDENTIALS_REFUSED,
    Endpoint,
    OutboxRenderers,
    decode_secret,
    event_type,
    pattern_problem,
    redacted_url,
    sign,
    signed_headers,
)

S = JobState
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET_A = "whsec_" + base64.b64encode(b"A" * 24).decode()
SECRET_B = "whsec_" + base64.b64encode(b"B" * 32).decode()


def job(state: JobState = S.DELIVERED, **changes: object) -> Job:
    fields: dict[str, object] = {
        "id": "01JH0000000000000000000000",
        "account_id": "acme",
        "state": state,
        "pin": PinSpec(
            board_id="1001",
            title="t",
            media=ImageBase64(content_type="image/png", data=b"\x89PNG" * 100),
        ),
        "scheduled_at": T0,
        "planned_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    return Job(**{**fields, **changes})  # type: ignore[arg-type]


def event(
    from_state: JobState | None, to_state: JobState, seq: int = 7, account_id: str = "acme"
) -> Event:
    t = Transition(
        from_state=from_state,
        to_state=to_state,
        time=T0 + timedelta(seconds=1.5),
        reason="because",
        sequence=seq,
    )
    return Event(
        seq, "01JH0000000000000000000000", account_id, t, job(to_state, account_id=account_id)
    )


def endpoint(url: str = "https://hooks.example/a", **kw: object) -> Endpoint:
    return Endpoint(name=url, url=url, keys=(b"k" * 16,), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("src", "dst", "kind"),
    [
        (None, S.PENDING, "job.scheduled"),
        (S.FAILED, S.PENDING, "job.scheduled"),
        (S.PENDING, S.QUEUED, "job.queued"),
        (S.QUEUED, S.SUBMITTED, "job.submitted"),
        (S.SUBMITTED, S.DELIVERED, "job.delivered"),
        (S.SUBMITTED, S.RETRYING, "job.retrying"),
        (S.SUBMITTED, S.FAILED, "job.failed"),
        (S.SUBMITTED, S.PERMANENTLY_FAILED, "job.permanently_failed"),
        (S.DELIVERED, S.CANCELLING, "job.cancelling"),
        (S.CANCELLING, S.CANCELLED, "job.cancelled"),
        (S.PENDING, S.PENDING, "job.updated"),
        (S.DELIVERED, S.DELIVERED, "job.updated"),
    ],
)
def test_event_types_follow_the_transition(src: JobState | None, dst: JobState, kind: str) -> None:
    """Creation and any move into PENDING are job.scheduled, same-state changes job.updated,
    every other transition is named after its target state."""
    assert event_type(Transition(from_state=src, to_state=dst, time=T0, reason="")) == kind


@pytest.mark.parametrize(
    ("state", "reason", "kind"),
    [
        (S.PENDING, "media staging: started", "job.media_staging"),
        (S.PENDING, "media staging: registered media 12", "job.media_staging"),
        (S.QUEUED, "media ready: media 12", "job.media_ready"),
        (S.PENDING, "media failed: Pinterest's processing of media 12 failed", "job.media_failed"),
        (S.PENDING, "updated: pin.title", "job.updated"),
    ],
)
def test_video_staging_changes_have_their_own_types(
    state: JobState, reason: str, kind: str
) -> None:
    """Same-state changes made by video staging are typed by their reason (media_staging,
    media_ready, media_failed), and the types are known to endpoint filters."""
    assert event_type(Transition(from_state=state, to_state=state, time=T0, reason=reason)) == kind
    assert pattern_problem(kind) is None


def test_body_carries_the_event_and_the_job_in_proto_json() -> None:
    """The body has type, id, ISO timestamp and the event data with the job in proto JSON, and
    leaves inline image bytes out."""
    (row,) = OutboxRenderers([endpoint()], PROTO_JSON).render_event(event(S.SUBMITTED, S.DELIVERED))
    body = json.loads(row.payload)
    assert set(body) == {"type", "id", "timestamp", "data"}
    assert (body["type"], body["id"], body["timestamp"]) == (
        "job.delivered",
        "msg_7_01jh0000000000000000000000",
        "2026-01-05T09:00:01.500Z",
    )
    data = body["data"]
    assert {k: v for k, v in data.items() if k != "job"} == {
        "sequence": 7,
        "job_id": "01JH0000000000000000000000",
        "account_id": "acme",
        "from_state": "STATE_SUBMITTED",
        "to_state": "STATE_DELIVERED",
        "time": "2026-01-05T09:00:01.500Z",
        "reason": "because",
    }
    assert data["job"]["id"] == "01JH0000000000000000000000"
    assert data["job"]["state"] == "STATE_DELIVERED"
    assert data["job"]["pin"]["board_id"] == "1001"
    assert data["job"]["pin"]["media_source"]["image_base64"] == {
        "content_type": "image/png",
        "sha256": hashlib.sha256(b"\x89PNG" * 100).hexdigest(),
        "size_bytes": "400",
    }
    assert (row.endpoint, row.message_id, row.order_key, row.event_type) == (
        "https://hooks.example/a",
        body["id"],
        "01JH0000000000000000000000",
        "job.delivered",
    )


def test_creation_has_an_unspecified_from_state() -> None:
    """The creation event says STATE_UNSPECIFIED as from_state (like the watch stream)."""
    (row,) = OutboxRenderers([endpoint()], PROTO_JSON).render_event(event(None, S.PENDING))
    assert json.loads(row.payload)["data"]["from_state"] == "STATE_UNSPECIFIED"


def test_filters_pick_endpoints_by_type_and_account() -> None:
    """Each endpoint gets only the event types and accounts it asked for; same body for all."""
    everything = endpoint("https://a.example/")
    delivered = endpoint("https://b.example/", event_types=("job.delivered",))
    failures = endpoint("https://c.example/", event_types=("job.failed", "account.*"))
    other = endpoint("https://d.example/", account_ids=frozenset({"other"}))
    wildcard = endpoint("https://e.example/", event_types=("job.*",))
    renderers = OutboxRenderers([everything, delivered, failures, other, wildcard], PROTO_JSON)
    rows = renderers.render_event(event(S.SUBMITTED, S.DELIVERED))
    assert [r.endpoint for r in rows] == [
        "https://a.example/",
        "https://b.example/",
        "https://e.example/",
    ]
    assert len({r.payload for r in rows}) == 1
    assert [
        r.endpoint
        for r in renderers.render_event(event(S.SUBMITTED, S.DELIVERED, account_id="other"))
    ] == ["https://a.example/", "https://b.example/", "https://d.example/", "https://e.example/"]


def test_account_event_only_when_reauth_starts() -> None:
    """account.needs_reauth is rendered once, when needs_reauth goes false → true."""
    ok = Account(id="acme", created_at=T0, updated_at=T0, access_token="secret-token")
    bad = ok.replace(
        needs_reauth=True, state_reason="refused", version=2, updated_at=T0 + timedelta(minutes=1)
    )
    renderers = OutboxRenderers(
        [endpoint(), endpoint("https://b.example/", event_types=("job.*",))], PROTO_JSON
    )
    (row,) = renderers.render_account(ok, bad)
    assert not renderers.render_account(bad, bad.replace(version=3))
    assert not renderers.render_account(bad, ok)
    body = json.loads(row.payload)
    assert (row.order_key, row.event_type, body["type"]) == (
        "account:acme",
        ACCOUNT_NEEDS_REAUTH,
        ACCOUNT_NEEDS_REAUTH,
    )
    assert body["data"]["account"]["state"] == "STATE_NEEDS_REAUTH"
    assert "secret-token" not in row.payload


def test_reauth_soon_held_and_app_notices() -> None:
    """`account.reauth_soon` and `account.held` are rendered once each, when the warning is
    recorded or the hold starts; an app-wide notice goes to every endpoint subscribed to its
    type, whatever its account filter, and never carries a token."""
    ok = Account(id="acme", created_at=T0, updated_at=T0, access_token="secret-token")
    warned = ok.replace(reauth_warned_at=T0, version=2)
    held = warned.replace(hold_reason="Apps with Trial access may not create Pins", version=3)
    renderers = OutboxRenderers(
        [
            endpoint("https://a.example/"),
            endpoint("https://b.example/", event_types=("account.held",)),
            endpoint(
                "https://c.example/", event_types=("app.*",), account_ids=frozenset({"other"})
            ),
        ],
        PROTO_JSON,
    )
    (soon,) = renderers.render_account(ok, warned)
    assert soon.event_type == ACCOUNT_REAUTH_SOON
    assert not renderers.render_account(warned, warned.replace(version=3))
    rows = renderers.render_account(warned, held)
    assert [(r.endpoint, r.event_type) for r in rows] == [
        ("https://a.example/", ACCOUNT_HELD),
        ("https://b.example/", ACCOUNT_HELD),
    ]
    assert json.loads(rows[0].payload)["data"]["account"]["state"] == "STATE_HELD"
    assert soon.message_id != rows[0].message_id
    notice = renderers.render_notice(APP_CREDENTIALS_REFUSED, T0, {"reason": "refused"})
    assert [r.endpoint for r in notice] == ["https://a.example/", "https://c.example/"]
    assert json.loads(notice[0].payload)["data"] == {"reason": "refused"}
    assert all("secret-token" not in r.payload for r in [soon, *rows, *notice])


def test_signature_matches_the_standardwebhooks_reference() -> None:
    """Our v1 signature equals the one the standardwebhooks package computes."""
    body = '{"type":"job.delivered"}'
    ts = 1_767_603_600
    ours = sign(decode_secret(SECRET_A), "msg_1", ts, body)
    theirs = Webhook(SECRET_A).sign("msg_1", datetime.fromtimestamp(ts, UTC), body)
    assert ours == theirs


def test_rotation_signs_with_every_secret_and_each_verifies() -> None:
    """Two secrets give two space-separated signatures; a receiver with either one verifies."""
    body = '{"a":1}'
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers([decode_secret(SECRET_A), decode_secret(SECRET_B)], "msg_9", now, body)
    assert headers["webhook-id"] == "msg_9"
    assert headers["webhook-timestamp"] == str(now)
    assert [s[:3] for s in headers["webhook-signature"].split(" ")] == ["v1,", "v1,"]
    for secret in (SECRET_A, SECRET_B):
        assert Webhook(secret).verify(body, headers) == {"a": 1}
    other = "whsec_" + base64.b64encode(b"C" * 24).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


@given(st.binary(min_size=16, max_size=64), st.text(max_size=200))
def test_any_key_and_body_verify(key: bytes, text: str) -> None:
    """Whatever the key and the (JSON) body, the standardwebhooks verifier accepts our headers."""
    body = json.dumps({"t": text})
    secret = "whsec_" + base64.b64encode(key).decode()
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers([decode_secret(secret)], "msg_x", now, body)
    assert Webhook(secret).verify(body, headers) == {"t": text}


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0", "whsec_"),
        ("whsec_not base64!", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "at least 16"),
    ],
)
def test_malformed_secrets_are_refused_without_quoting_them(secret: str, why: str) -> None:
    """A secret without whsec_, not base64 or too short is refused; the error never shows it."""
    with pytest.raises(ConfigError) as err:
        endpoint_from_config(
            WebhookEndpoint(
                url="https://h.example/x",
                secrets=("whsec_" + (base64.b64encode(b"x" * 16).decode()), secret),
            )
        )
    assert why in str(err.value)
    assert "secrets[1]" in str(err.value)
    assert secret not in str(err.value)


def test_unpadded_secrets_are_accepted() -> None:
    """A whsec_ secret whose base64 lost its padding still decodes (like the reference)."""
    assert decode_secret(SECRET_A.rstrip("=")) == b"A" * 24


def test_config_becomes_an_endpoint_keyed_by_its_url() -> None:
    """A good config becomes an Endpoint named by its URL whose repr shows no key."""
    ep = endpoint_from_config(
        WebhookEndpoint(
            url="https://user:pw@h.example:8443/hook?token=abc",
            secrets=(SECRET_A, SECRET_B),
            event_types=("job.delivered",),
            account_ids=("acme",),
            timeout_s=3,
        )
    )
    assert ep.name == ep.url == "https://user:pw@h.example:8443/hook?token=abc"
    assert ep.keys == (b"A" * 24, b"B" * 32)
    assert ep.timeout_s == 3
    assert (ep.host, ep.port, ep.label) == ("h.example", 8443, "https://h.example:8443/hook")
    assert "AAAA" not in repr(ep)
    assert "QUFB" not in repr(ep)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]:8080/hook",
    ],
)
def test_blocked_hosts_are_refused_naming_the_url(url: str) -> None:
    """A link-local or metadata host is refused at configuration, the error naming the URL."""
    with pytest.raises(ConfigError) as err:
        endpoint_from_config(WebhookEndpoint(url=url, secrets=(SECRET_A,)))
    assert redacted_url(url) in str(err.value)
    assert "refused" in str(err.value)


def test_unknown_event_types_are_refused() -> None:
    """A typo in event_types is a configuration error listing the known types."""
    assert pattern_problem("job.delivered") is None
    assert pattern_problem("*") is None
    assert pattern_problem("job.*") is None
    assert pattern_problem("account.*") is None
    with pytest.raises(ConfigError, match=r"job\.deliverd"):
        endpoint_from_config(
            WebhookEndpoint(
                url="https://h.example/", secrets=(SECRET_A,), event_types=("job.deliverd",)
            )
        )
    assert pattern_problem("pin.*") is not None
