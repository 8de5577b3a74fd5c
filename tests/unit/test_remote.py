"""Deletes and PATCHes of a published pin (`remote.py`): what each answer leads to, the bounded
time, one token refresh, and 429s that honour Retry-After without counting."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pinsched.core import remote_policy as remote
from pinsched.core.jobs import ErrorCategory, JobError
from pinsched.core.retry import RetryPolicy
from pinsched.pinterest import client as pt

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_delay_s=2.0, max_delay_s=600.0)
A = remote.Action


def err(status: int, category: ErrorCategory = ErrorCategory.UNAVAILABLE) -> JobError:
    return JobError(category=category, message=f"HTTP {status}", http_status=status)


def decide(outcome: pt.Outcome, **kw: Any) -> remote.RemoteDecision:
    args: dict[str, Any] = {
        "delete": True,
        "now": NOW,
        "failing_since": None,
        "attempts": 1,
        "refreshed": False,
        "strikes": 0,
        "policy": POLICY,
        "rng": random.Random(5),
    }
    return remote.decide(outcome, **{**args, **kw})


def test_success_and_a_404_on_delete_are_done() -> None:
    """A 2xx is done; a 404 on a DELETE means the pin is already gone (done); on a PATCH a 404
    is a refusal."""
    assert decide(pt.Delivered({})).action is A.DONE
    gone = pt.Rejected(err(404, ErrorCategory.REJECTED))
    assert decide(gone).action is A.DONE
    assert decide(gone, delete=False).action is A.REFUSED


def test_a_refusal_is_final_with_pinterest_s_error() -> None:
    """A 403 ends the operation at once, keeping the error."""
    refused = err(403, ErrorCategory.REJECTED)
    got = decide(pt.Rejected(refused))
    assert (got.action, got.error) == (A.REFUSED, refused)


def test_a_401_refreshes_once_then_gives_up() -> None:
    """The first 401 asks for one refresh; a 401 after it gives up (never a refresh loop)."""
    expired = pt.AuthExpired(err(401, ErrorCategory.AUTH))
    assert decide(expired).action is A.REFRESH
    again = decide(expired, refreshed=True)
    assert again.action is A.GIVE_UP
    assert again.error is not None
    assert again.error.message.startswith("a freshly refreshed access token was refused too")


@pytest.mark.parametrize("hint", [120.0, None])
def test_a_429_honours_retry_after_and_is_not_counted(hint: float | None) -> None:
    """A 429 is retried after Retry-After (plus a little jitter), or a jittered exponential
    step without one; it does not count as an attempt and slows the account down."""
    got = decide(pt.RateLimited(err(429, ErrorCategory.RATE_LIMITED), hint), strikes=2)
    assert (got.action, got.counted, got.rate_limited, got.hint_s) == (A.RETRY, False, True, hint)
    if hint is not None:
        assert hint <= got.delay_s <= hint + 5
    else:
        assert 0 < got.delay_s <= POLICY.base_delay_s * 2**3


def test_transient_failures_back_off_with_jitter() -> None:
    """5xx and network failures are retried with full-jitter backoff that grows with attempts."""
    delays = [
        decide(pt.OutcomeUnknown(err(503)), attempts=6, rng=random.Random(s)).delay_s
        for s in range(50)
    ]
    assert all(POLICY.floor_s(6) <= d <= POLICY.ceiling_s(6) for d in delays)
    assert len(set(delays)) > 40


def test_after_the_bounded_time_it_gives_up_with_the_last_error() -> None:
    """A retry that would fall past `give_up_after_s` after the first failure gives up: the
    last error is kept, no longer retryable, and says how long it tried."""
    since = NOW - timedelta(seconds=remote.GIVE_UP_AFTER_S - 1)
    got = decide(pt.Unavailable(err(502)), failing_since=since, attempts=20)
    assert got.action is A.GIVE_UP
    assert got.error is not None
    assert (got.error.http_status, got.error.retryable) == (502, False)
    assert got.error.message.startswith("gave up after 3599 s of failures; last: HTTP 502")
    assert decide(pt.Unavailable(err(502)), failing_since=NOW).action is A.RETRY
