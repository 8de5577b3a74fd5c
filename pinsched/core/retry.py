"""Retry delays and the retry budget. Pure: the caller passes the time, the attempt number and a
random source.

* The budget is time, not a count: a transient failure is retried until the job's deadline
  (`retry_deadline`: `retry_for` after `planned_at` when the request set it; else the end of its
  delivery window; else `DEFAULT_RETRY_FOR`, 24 h, after `planned_at`). Pinterest's
  "could not fetch the image" clears after tens of minutes, so a handful of attempts within
  minutes would turn it into a permanent failure. `max_attempts` (0 = none) is an optional cap.
* `RetryPolicy.backoff_s` — exponential backoff with full jitter (AWS architecture blog,
  "Exponential Backoff And Jitter") above a floor of a tenth of the step: delay =
  uniform(step / 10, step) with step = min(max_delay, base · 2^(attempt-1)), capped at an hour by
  default. The floor keeps a retry from coming back within milliseconds of its failure, which
  would be no backoff at all (and would be queued at once, inside the scheduler's lead).
  `RetryPolicy.next_attempt_at` never goes past the deadline: a backoff that would is cut to the
  deadline (one last attempt there), unless the deadline is less than `base_delay_s` away.
* `rate_limit_delay_s` — the wait after a 429, which does not count against the budget: the
  server's hint (Retry-After / X-RateLimit-Reset) plus a little jitter so that an account's jobs
  do not all come back at once; without a hint, exponential in the account's consecutive 429s
  with "equal jitter" (never less than half the step, so a throttled account really slows down).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

#: The retry budget of a job without `retry_for` and without a delivery window still ahead.
DEFAULT_RETRY_FOR: Final = timedelta(hours=24)
#: Cap on the hint-less 429 backoff and on the jitter added to a hint.
RATE_LIMIT_MAX_S: Final = 900.0
HINT_JITTER_MAX_S: Final = 5.0
#: The least backoff, as a fraction of its step.
BACKOFF_FLOOR: Final = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 0  # 0: no cap on the count, only the deadline
    base_delay_s: float = 2.0
    max_delay_s: float = 3600.0

    def ceiling_s(self, attempt: int) -> float:
        """The largest delay `backoff_s(attempt)` can return."""
        exponent = min(max(0, attempt - 1), 60)  # 2**60·base is far past any cap
        return min(self.max_delay_s, self.base_delay_s * (2.0**exponent))

    def floor_s(self, attempt: int) -> float:
        """The smallest delay `backoff_s(attempt)` can return: a tenth of the ceiling."""
        return self.ceiling_s(attempt) * BACKOFF_FLOOR

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt *attempt* + 1, after *attempt* failures (attempt ≥ 1)."""
        return rng.uniform(self.floor_s(attempt), self.ceiling_s(attempt))

    def exhausted(self, attempts: int) -> bool:
        """Whether *attempts* counted attempts use up the optional count cap."""
        return 0 < self.max_attempts <= attempts

    def next_attempt_at(
        self, attempts: int, *, now: datetime, deadline: datetime, rng: random.Random
    ) -> datetime | None:
        """When to try again after *attempts* counted failures, or None when the budget is
        spent (the deadline has passed, or the count cap is reached). Never after *deadline*."""
        if now >= deadline or self.exhausted(attempts):
            return None
        at = now + timedelta(seconds=self.backoff_s(max(1, attempts), rng))
        if at <= deadline:
            return at
        # One last attempt at the deadline, unless it is too close to be a real backoff.
        return deadline if deadline - now >= timedelta(seconds=self.base_delay_s) else None


#: The longest retry budget a request may ask for.
MAX_RETRY_FOR: Final = timedelta(days=30)


def retry_for_problem(value: timedelta) -> str | None:
    """Why *value* cannot be a request's `retry_for` (0 < retry_for ≤ 30 days), or None."""
    if value <= timedelta(0):
        return (
            "must be more than zero (leave it unset for the default: the end of the "
            "delivery window, or 24 hours)"
        )
    if value > MAX_RETRY_FOR:
        return f"must be at most {MAX_RETRY_FOR.days} days"
    return None


def retry_deadline(
    *,
    planned_at: datetime,
    window_end: datetime,
    retry_for: timedelta | None,
    default: timedelta = DEFAULT_RETRY_FOR,
) -> datetime:
    """Until when a job's transient failures are retried: *retry_for* after *planned_at* when
    the request set it; else the end of its delivery window while that is still ahead of
    *planned_at* (a job sent again by RetryJob after its window gets *default*); else *default*
    after *planned_at*."""
    if retry_for is not None:
        return planned_at + retry_for
    if window_end > planned_at:
        return window_end
    return planned_at + default


def rate_limit_delay_s(
    retry_after_s: float | None,
    strikes: int,
    rng: random.Random,
    *,
    policy: RetryPolicy | None = None,
) -> float:
    """How long to wait after a 429, the account's *strikes*-th in a row (strikes ≥ 1).

    With a hint: the hint plus up to min(5 s, 10 % + 0.5 s) of jitter. Without: a step of
    `policy.base_delay_s · 2^strikes` (capped by `policy.max_delay_s` and 15 min), waited for
    between half of it and all of it.
    """
    if retry_after_s is not None and retry_after_s >= 0:
        return retry_after_s + rng.uniform(0.0, min(HINT_JITTER_MAX_S, 0.1 * retry_after_s + 0.5))
    policy = policy or RetryPolicy()
    step = min(
        RATE_LIMIT_MAX_S,
        policy.max_delay_s,
        policy.base_delay_s * (2.0 ** min(max(1, strikes), 30)),
    )
    return rng.uniform(step / 2, step)
