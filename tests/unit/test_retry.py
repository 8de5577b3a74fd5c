"""Retry delays (`retry.py`): full-jitter exponential backoff above a floor, the time budget,
the 429 wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pinsched.core.retry import (
    DEFAULT_RETRY_FOR,
    HINT_JITTER_MAX_S,
    RATE_LIMIT_MAX_S,
    RetryPolicy,
    rate_limit_delay_s,
    retry_deadline,
)

PLANNED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

POLICY = RetryPolicy(max_attempts=5, base_delay_s=2.0, max_delay_s=60.0)


def test_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    """The backoff ceiling is base·2^(attempt-1), capped at max_delay_s."""
    assert [POLICY.ceiling_s(a) for a in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert POLICY.ceiling_s(0) == 2.0
    assert POLICY.ceiling_s(10_000) == 60.0


@given(attempt=st.integers(min_value=1, max_value=200), seed=st.integers(0, 2**32))
def test_backoff_stays_between_a_tenth_of_the_ceiling_and_the_ceiling(
    attempt: int, seed: int
) -> None:
    """Full jitter above a floor: every delay is in [ceiling / 10, ceiling]."""
    delay = POLICY.backoff_s(attempt, random.Random(seed))
    assert POLICY.ceiling_s(attempt) / 10 <= delay <= POLICY.ceiling_s(attempt)


def test_backoff_uses_the_whole_range() -> None:
    """Delays spread over [ceiling / 10, ceiling] (ceiling 16 s), not clustered at either end;
    none comes back sooner than the floor, 1.6 s."""
    rng = random.Random(7)
    delays = [POLICY.backoff_s(4, rng) for _ in range(2000)]
    assert POLICY.floor_s(4) == 1.6
    assert 1.6 <= min(delays) < 2.0
    assert max(delays) > 15.0


def test_attempt_budget() -> None:
    """max_attempts counted attempts exhaust the optional cap; fewer do not; 0 means no cap."""
    assert not POLICY.exhausted(4)
    assert POLICY.exhausted(5)
    assert POLICY.exhausted(6)
    assert not RetryPolicy().exhausted(10_000)


def test_retry_deadline_by_request_window_or_default() -> None:
    """`retry_for` counts from planned_at; without it a window still ahead bounds the retries;
    otherwise 24 h after planned_at (also for a job sent again after its window ended)."""
    end = PLANNED + timedelta(hours=2)
    assert retry_deadline(
        planned_at=PLANNED, window_end=end, retry_for=timedelta(hours=6)
    ) == PLANNED + timedelta(hours=6)
    assert retry_deadline(planned_at=PLANNED, window_end=end, retry_for=None) == end
    assert (
        retry_deadline(planned_at=PLANNED, window_end=PLANNED, retry_for=None)
        == PLANNED + DEFAULT_RETRY_FOR
    )
    late = end + timedelta(days=1)
    assert (
        retry_deadline(planned_at=late, window_end=end, retry_for=None) == late + DEFAULT_RETRY_FOR
    )


def test_transient_failures_are_retried_for_the_whole_budget_not_eight_tries() -> None:
    """With the default policy (no count cap, backoff capped at an hour) a failure that lasts
    a day is retried across the day: many more than eight attempts, never a delay above an
    hour, never past the deadline, and the last attempt lands at the deadline."""
    policy = RetryPolicy()
    rng = random.Random(3)
    deadline = PLANNED + DEFAULT_RETRY_FOR
    now, attempts, times = PLANNED, 1, []
    while at := policy.next_attempt_at(attempts, now=now, deadline=deadline, rng=rng):
        assert now < at <= deadline
        assert (at - now) <= timedelta(hours=1)
        times.append(at)
        now, attempts = at, attempts + 1
    assert attempts > 8
    assert times[-1] == deadline
    assert policy.next_attempt_at(attempts, now=deadline, deadline=deadline, rng=rng) is None


def test_a_count_cap_still_applies_when_set() -> None:
    """max_attempts > 0 ends the retries at that count even before the deadline."""
    far = PLANNED + timedelta(days=1)
    assert POLICY.next_attempt_at(5, now=PLANNED, deadline=far, rng=random.Random(1)) is None
    assert POLICY.next_attempt_at(4, now=PLANNED, deadline=far, rng=random.Random(1))


@given(hint=st.floats(min_value=0, max_value=86_400), seed=st.integers(0, 2**32))
def test_rate_limit_wait_honours_the_hint(hint: float, seed: int) -> None:
    """With Retry-After the wait is the hint plus at most a few seconds of jitter."""
    delay = rate_limit_delay_s(hint, 1, random.Random(seed), policy=POLICY)
    assert hint <= delay <= hint + HINT_JITTER_MAX_S
    assert delay <= hint + 0.1 * hint + 0.5


@given(strikes=st.integers(min_value=1, max_value=100), seed=st.integers(0, 2**32))
def test_rate_limit_wait_without_hint_grows_with_the_streak(strikes: int, seed: int) -> None:
    """Without a hint the wait is between half and all of base·2^strikes (capped)."""
    step = min(POLICY.max_delay_s, RATE_LIMIT_MAX_S, POLICY.base_delay_s * 2.0**strikes)
    delay = rate_limit_delay_s(None, strikes, random.Random(seed), policy=POLICY)
    assert step / 2 <= delay <= step


def test_rate_limit_wait_follows_the_configured_base() -> None:
    """Small configured delays (tests, fast demos) give small 429 waits too."""
    fast = RetryPolicy(base_delay_s=0.01, max_delay_s=0.5)
    assert rate_limit_delay_s(None, 1, random.Random(1), policy=fast) <= 0.02
    assert rate_limit_delay_s(None, 50, random.Random(1), policy=fast) <= 0.5
