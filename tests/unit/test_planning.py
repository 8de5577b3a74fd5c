"""Window planning and pacing primitives: properties over random windows, pacings and loads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pinsched.core.accounts import Pacing
from pinsched.core.pacing import AccountPacer, TokenBucket
from pinsched.core.planning import seed_for, spread, violations

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

pacings = st.builds(
    Pacing,
    min_spacing=st.integers(0, 3600).map(lambda s: timedelta(seconds=s)),
    max_per_hour=st.integers(0, 12),
    max_per_day=st.integers(0, 60),
    writes_per_minute=st.just(100),
)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 40),
    window_min=st.integers(0, 3 * 24 * 60),
    pacing=pacings,
    fixed_offsets=st.lists(st.integers(-600, 5000), max_size=8),
    seed=st.integers(0, 2**32),
)
def test_plans_stay_inside_the_window_and_honour_pacing_when_they_can(
    n: int, window_min: int, pacing: Pacing, fixed_offsets: list[int], seed: int
) -> None:
    """Every planned time lies in the window; when the planner reports no fallback, spacing and
    sliding hourly/daily caps hold against the account's other planned pins too."""
    end = START + timedelta(minutes=window_min)
    fixed = [START + timedelta(minutes=m) for m in fixed_offsets]
    plan = spread(n, START, end, pacing=pacing, fixed=fixed, rng=random.Random(seed))
    assert len(plan.times) == n
    assert all(START <= t <= end for t in plan.times)
    assert list(plan.times) == sorted(plan.times)
    if "cannot honour" not in plan.note and window_min:
        before = set(violations(fixed, pacing))
        assert [v for v in violations([*plan.times, *fixed], pacing) if v not in before] == []


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 30), hours=st.integers(1, 48), spacing_min=st.integers(0, 120))
def test_a_feasible_window_is_spread_evenly_with_spacing(
    n: int, hours: int, spacing_min: int
) -> None:
    """With no other plans, n pins in a window wide enough for the spacing are one slot apart
    (within the jitter) and never closer than the minimum spacing."""
    pacing = Pacing(min_spacing=timedelta(minutes=spacing_min))
    end = START + timedelta(hours=hours)
    plan = spread(n, START, end, pacing=pacing, rng=random.Random(1))
    slot = (end - START) / n
    if slot >= pacing.min_spacing * 2:
        assert "cannot honour" not in plan.note
        assert not violations(plan.times, pacing)
        for i, t in enumerate(plan.times):
            assert abs(t - (START + slot * (i + 0.5))) <= slot * 0.5 + pacing.min_spacing


def test_an_impossible_window_falls_back_to_the_closest_even_spread() -> None:
    """Ten pins one hour apart cannot fit a 30-minute window: evenly spread, said in the note."""
    pacing = Pacing(min_spacing=timedelta(hours=1))
    end = START + timedelta(minutes=30)
    plan = spread(10, START, end, pacing=pacing, rng=random.Random(0))
    assert plan.times[0] == START
    assert plan.times[-1] == end
    gaps = {b - a for a, b in zip(plan.times, plan.times[1:], strict=False)}
    assert max(gaps) - min(gaps) <= timedelta(microseconds=1)
    assert "cannot honour" in plan.note


def test_planning_is_deterministic_for_a_seed() -> None:
    """The same account, window and seed give the same plan; another seed another jitter."""
    end = START + timedelta(hours=8)

    def rng(salt: int) -> random.Random:
        return random.Random(seed_for("acme", START, end, salt))

    one = spread(12, START, end, pacing=Pacing(), rng=rng(0))
    two = spread(12, START, end, pacing=Pacing(), rng=rng(0))
    other = spread(12, START, end, pacing=Pacing(), rng=rng(1))
    assert one == two
    assert one != other


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(0.01, 100),
    capacity=st.floats(1, 50),
    steps=st.lists(st.floats(0, 5), min_size=1, max_size=200),
)
def test_token_bucket_never_grants_more_than_capacity_plus_rate_times_elapsed(
    rate: float, capacity: float, steps: list[float]
) -> None:
    """Over any run, granted tokens ≤ capacity + rate·Δt, and a refusal says how long to wait."""
    bucket = TokenBucket(rate=rate, capacity=capacity)
    now, granted = 0.0, 0
    for step in steps:
        now += step
        wait = bucket.try_take(now)
        if wait == 0.0:
            granted += 1
        else:
            assert wait > 0
            assert bucket.try_take(now + wait + 1e-9) == 0.0
            now += wait + 1e-9
            granted += 1
        assert granted <= capacity + rate * now + 1e-6


def test_pacer_slows_down_after_429_and_recovers() -> None:
    """A 429 halves the write rate and blocks for Retry-After; a quiet minute doubles it back."""
    pacer = AccountPacer(Pacing(writes_per_minute=60))
    pacer.rate_limited(0.0, 10.0)
    assert pacer.pin_delay(0.0) == 10.0
    assert pacer.slowdown == 0.5
    pacer.write_delay(61.0)
    assert pacer.slowdown == 1.0


def test_pacer_caps_count_a_sliding_hour() -> None:
    """With max 2 per hour, a third pin waits until the first leaves the sliding hour."""
    pacer = AccountPacer(Pacing(max_per_hour=2, writes_per_minute=0))
    pacer.record_pin(0.0)
    pacer.record_pin(100.0)
    assert pacer.pin_delay(200.0) == 3400.0
    assert pacer.pin_delay(3600.0) == 0.0
