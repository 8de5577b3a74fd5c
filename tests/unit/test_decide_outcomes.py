"""The failure table of the README ("Publishing and failures"), row by row, over the pure
decisions: an HTTP answer is classified (`pinterest.classify`), decided
(`dispatch.outcome.decide` → `core.outcomes`) and applied to a SUBMITTED job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pinsched.core import flags, outcomes
from pinsched.core.decision import FollowUp, Pacer
from pinsched.core.jobs import ErrorCategory, JobError, JobState
from pinsched.dispatch.outcome import decide
from pinsched.pinterest import client as pt
from tests.unit.decide_jobs import POLICY, T0, committed, job, rng

S = JobState
SPAM_COOLDOWN_S = 6 * 3600.0


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> pt.Outcome:
    return pt.classify(status, body or {}, headers or {}, write=True, now=T0)


def decided(status: int, body: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    j = kw.pop("j", None) or job()
    now = kw.pop("now", T0)
    d = decide(
        j,
        answer(status, body, headers),
        strikes=0,
        spam_cooldown_s=SPAM_COOLDOWN_S,
        policy=POLICY,
        now=now,
        rng=rng(),
    )
    return j, d


@pytest.mark.parametrize(
    ("status", "body", "headers", "to", "counts", "pacer", "follow_up"),
    [
        # 2xx → DELIVERED with the pin id (the 429 streak ends)
        (201, {"id": "p9"}, None, S.DELIVERED, True, Pacer.SUCCESS, FollowUp.NONE),
        # a 2xx without an id is reconciled
        (201, {}, None, None, True, Pacer.NONE, FollowUp.RECONCILE),
        # code 9, or a 429 mentioning spam → spam block: RETRYING, not counted
        (
            400,
            {"code": 9, "message": "spam"},
            None,
            S.RETRYING,
            False,
            Pacer.SPAM_BLOCKED,
            FollowUp.NONE,
        ),
        (
            429,
            {"message": "Spam detected"},
            None,
            S.RETRYING,
            False,
            Pacer.SPAM_BLOCKED,
            FollowUp.NONE,
        ),
        # 429 or code 8 → rate limited: RETRYING, the write rate halves, not counted
        (429, {}, {"retry-after": "30"}, S.RETRYING, False, Pacer.RATE_LIMITED, FollowUp.NONE),
        (
            400,
            {"code": 8, "message": "slow down"},
            None,
            S.RETRYING,
            False,
            Pacer.RATE_LIMITED,
            FollowUp.NONE,
        ),
        # 401, code 1104 → one refresh-token grant first
        (401, {"message": "expired"}, None, None, True, Pacer.NONE, FollowUp.REFRESH),
        (400, {"code": 1104, "message": "token"}, None, None, True, Pacer.NONE, FollowUp.REFRESH),
        # transient 4xx (code 2787, could not fetch the image; 408) → RETRYING with backoff
        (400, {"code": 2787, "message": "x"}, None, S.RETRYING, True, Pacer.NONE, FollowUp.NONE),
        (
            400,
            {"code": 1, "message": "Sorry, we could not fetch the image."},
            None,
            S.RETRYING,
            True,
            Pacer.NONE,
            FollowUp.NONE,
        ),
        (408, {}, None, S.RETRYING, True, Pacer.NONE, FollowUp.NONE),
        # 403 code 29 or code 3 → the account is held; the job goes back, not counted
        (
            403,
            {"code": 29, "message": "trial"},
            None,
            S.RETRYING,
            False,
            Pacer.NONE,
            FollowUp.HOLD_ACCOUNT,
        ),
        (
            403,
            {"code": 3, "message": "scopes"},
            None,
            S.RETRYING,
            False,
            Pacer.NONE,
            FollowUp.HOLD_ACCOUNT,
        ),
        # other 4xx → PERMANENTLY_FAILED after one attempt
        (
            400,
            {"code": 1, "message": "invalid"},
            None,
            S.PERMANENTLY_FAILED,
            True,
            Pacer.NONE,
            FollowUp.NONE,
        ),
        (
            404,
            {"code": 30, "message": "board"},
            None,
            S.PERMANENTLY_FAILED,
            True,
            Pacer.NONE,
            FollowUp.NONE,
        ),
        # any 5xx on a create → outcome unknown: reconcile before any retry
        (500, {}, None, None, True, Pacer.NONE, FollowUp.RECONCILE),
        (503, {}, None, None, True, Pacer.NONE, FollowUp.RECONCILE),
    ],
)
def test_each_row_of_the_failure_table(
    status: int,
    body: Any,
    headers: dict[str, str] | None,
    to: JobState | None,
    counts: bool,
    pacer: Pacer,
    follow_up: FollowUp,
) -> None:
    """Each answer of the README's failure table decides the state, whether the attempt
    counts, the pacer's effect and the follow-up the table names."""
    j, d = decided(status, body, headers)
    assert (d.to, d.counts, d.pacer, d.follow_up) == (to, counts, pacer, follow_up)
    after = committed(j, d)
    assert after.attempts == (j.attempts if counts else j.attempts - 1)
    if to is not None:
        assert after.state is to


def test_delivered_records_the_pin_and_clears_the_error() -> None:
    """DELIVERED carries Pinterest's pin id and the delivery time, and no error."""
    j, d = decided(
        201,
        {"id": "p9"},
        j=job(last_error=JobError(category=ErrorCategory.UNAVAILABLE, message="x")),
    )
    after = committed(j, d)
    assert (after.pinterest_pin_id, after.delivered_at, after.last_error) == ("p9", T0, None)


def test_retry_after_is_honoured_and_holds_the_account_as_long() -> None:
    """A 429 with Retry-After retries after the hint (plus a little jitter) and holds the
    account's writes for the hint."""
    _, d = decided(429, {}, {"retry-after": "30"})
    assert d.delay_s is not None
    assert 30 <= d.delay_s <= 35
    assert d.pacer_s == 30


def test_a_spam_block_cools_the_account_for_six_hours() -> None:
    """A spam block retries after the cool-down and holds the whole account as long."""
    j, d = decided(400, {"code": 9, "message": "spam"})
    assert d.delay_s == d.pacer_s == SPAM_COOLDOWN_S
    assert committed(j, d).next_attempt_at == T0 + timedelta(seconds=SPAM_COOLDOWN_S)


def test_a_second_401_right_after_a_refresh_fails_the_job_and_the_account() -> None:
    """A 401 on a job whose last error is the 401 a refresh answered: FAILED (AUTH, not
    retryable, not counted) and the account NEEDS_REAUTH."""
    first = JobError(category=ErrorCategory.AUTH, http_status=401, retryable=True, message="x")
    j, d = decided(401, {"message": "expired"}, j=job(last_error=first))
    assert (d.to, d.counts, d.follow_up) == (S.FAILED, False, FollowUp.NEEDS_REAUTH)
    assert d.note.startswith("a freshly refreshed access token was refused too")
    error = committed(j, d).last_error
    assert error is not None
    assert not error.retryable


@pytest.mark.parametrize(
    ("refreshed", "client_refused", "permanent", "to", "counts"),
    [
        (True, False, False, S.RETRYING, False),  # granted: at once, not counted
        (False, True, False, S.RETRYING, False),  # the app's credentials refused: held
        (False, False, True, S.FAILED, False),  # refused for good: FAILED for the user
        (False, False, False, S.RETRYING, True),  # the refresh failed transiently: backoff
    ],
)
def test_after_the_refresh(
    refreshed: bool, client_refused: bool, permanent: bool, to: JobState, counts: bool
) -> None:
    """What the answer to the refresh a 401 asked for does to the job."""
    err = JobError(category=ErrorCategory.AUTH, http_status=401, retryable=True, message="x")
    d = outcomes.after_refresh(
        job(),
        err,
        refreshed=refreshed,
        client_refused=client_refused,
        permanent=permanent,
        refresh_error=JobError(category=ErrorCategory.AUTH, message="refused"),
        policy=POLICY,
        now=T0,
        rng=rng(),
    )
    assert (d.to, d.counts) == (to, counts)
    if refreshed or client_refused:
        assert d.delay_s == 0.0


def test_transient_failures_end_at_the_retry_deadline_as_exhausted() -> None:
    """Past the job's retry deadline (24 h after planned_at by default) a transient failure is
    PERMANENTLY_FAILED, category EXHAUSTED, with the last error's message."""
    j, d = decided(408, {}, now=T0 + timedelta(hours=25))
    assert d.to is S.PERMANENTLY_FAILED
    error = committed(j, d).last_error
    assert error is not None
    assert error.category is ErrorCategory.EXHAUSTED
    assert "HTTP 408" in error.message


def test_a_backoff_never_passes_the_retry_deadline() -> None:
    """The next attempt of a transient failure is at or before the job's retry deadline."""
    j = job(retry_for=timedelta(minutes=10))
    _, d = decided(408, {}, j=j, now=T0 + timedelta(minutes=9, seconds=59))
    assert d.to is S.RETRYING
    next_at = committed(j, d, T0 + timedelta(minutes=9, seconds=59)).next_attempt_at
    assert next_at is not None
    assert next_at <= T0 + timedelta(minutes=10)


def test_a_recorded_cancel_turns_a_landed_pin_into_a_delete() -> None:
    """With a cancel recorded in flight, a delivered pin goes CANCELLING (delete follows)."""
    j, d = decided(201, {"id": "p9"}, j=job(cancel_requested=True))
    final = flags.carry_out_cancel(j, d)
    assert (final.to, final.follow_up) == (S.CANCELLING, FollowUp.DELETE)
    assert committed(j, final).pinterest_pin_id == "p9"


def test_a_recorded_cancel_ends_an_unpublished_outcome_cancelled() -> None:
    """With a cancel recorded in flight, a failure of the create ends CANCELLED, never
    retried, with the error kept."""
    j, d = decided(400, {"code": 1, "message": "invalid"}, j=job(cancel_requested=True))
    after = committed(j, flags.carry_out_cancel(j, d))
    assert after.state is S.CANCELLED
    assert after.last_error is not None
    assert after.last_error.pinterest_code == 1
