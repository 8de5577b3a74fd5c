"""Retry delays. Pure: the caller passes the attempt number and a random source.

Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
delay = uniform(0, min(max_delay, base · 2^(attempt-1))). Rate-limited waits use the server's
hint instead and do not count against the attempt budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 2.0
    max_delay_s: float = 3600.0

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt *attempt* + 1, after *attempt* failures (attempt ≥ 1)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2.0 ** max(0, attempt - 1)))
        return rng.uniform(0.0, ceiling)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


def rate_limit_delay_s(retry_after_s: float | None, strikes: int, rng: random.Random) -> float:
    """How long to wait after a 429: the server's hint when given (plus a little jitter so
    that many jobs don't return at once), else exponential in the account's consecutive 429s."""
    if retry_after_s is not None and retry_after_s >= 0:
        return retry_after_s + rng.uniform(0.0, min(5.0, 0.1 * retry_after_s + 0.5))
    return rng.uniform(0.5, 1.0) * min(900.0, 5.0 * (2.0 ** max(0, strikes - 1)))
