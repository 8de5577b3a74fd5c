"""Retry delays (`retry.py`): full-jitter exponential backoff and the 429 wait."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pinsched.retry import HINT_JITTER_MAX_S, RATE_LIMIT_MAX_S, RetryPolicy, rate_limit_delay_s

POLICY = RetryPolicy(max_attempts=5, base_delay_s=2.0, max_delay_s=60.0)


def test_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    """The backoff ceiling is base·2^(attempt-1), capped at max_delay_s."""
    assert [POLICY.ceiling_s(a) for a in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert POLICY.ceiling_s(0) == 2.0
    assert POLICY.ceiling_s(10_000) == 60.0


@given(attempt=st.integers(min_value=1, max_value=200), seed=st.integers(0, 2**32))
def test_backoff_stays_within_zero_and_the_ceiling(attempt: int, seed: int) -> None:
    """Full jitter: every delay is in [0, ceiling]."""
    delay = POLICY.backoff_s(attempt, random.Random(seed))
    assert 0.0 <= delay <= POLICY.ceiling_s(attempt)


def test_backoff_uses_the_whole_range() -> None:
    """Full jitter spreads delays over [0, ceiling] (not clustered at the top)."""
    rng = random.Random(7)
    delays = [POLICY.backoff_s(4, rng) for _ in range(2000)]
    assert min(delays) < 1.0
    assert max(delays) > 15.0


def test_attempt_budget() -> None:
    """max_attempts counted attempts exhaust the budget; fewer do not."""
    assert not POLICY.exhausted(4)
    assert POLICY.exhausted(5)
    assert POLICY.exhausted(6)


@given(hint=st.floats(min_value=0, max_value=86_400), seed=st.integers(0, 2**32))
def test_rate_limit_wait_honours_the_hint(hint: float, seed: int) -> None:
    """With Retry-After the wait is the hint plus at most a few seconds of jitter."""
    delay = rate_limit_delay_s(hint, 1, random.Random(seed), policy=POLICY)
    assert hint <= delay <= hint + HINT_JITTER_MAX_S
    assert delay <= hint + 0.1 * hint + 0.5


@given(strikes=st.integers(min_value=1, max_value=100), seed=st.integers(0, 2**32))
def test_rate_limit_wait_without_hint_grows_with_the_streak(strikes: int, seed: int) -> None:
    """Without a hint the wait is between half and all of base·2^strikes (capped)."""
    step = min(POLICY.max_delay_s, RATE_LIMIT_MAX_S, POLICY.base_delay_s * 2.0 ** strikes)
    delay = rate_limit_delay_s(None, strikes, random.Random(seed), policy=POLICY)
    assert step / 2 <= delay <= step


def test_rate_limit_wait_follows_the_configured_base() -> None:
    """Small configured delays (tests, fast demos) give small 429 waits too."""
    fast = RetryPolicy(base_delay_s=0.01, max_delay_s=0.5)
    assert rate_limit_delay_s(None, 1, random.Random(1), policy=fast) <= 0.02
    assert rate_limit_delay_s(None, 50, random.Random(1), policy=fast) <= 0.5
