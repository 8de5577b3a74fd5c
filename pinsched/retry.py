"""Retry delays. Pure: the caller passes the attempt number and a random source.

* `RetryPolicy.backoff_s` — exponential backoff with full jitter (AWS architecture blog,
  "Exponential Backoff And Jitter"): delay = uniform(0, min(max_delay, base · 2^(attempt-1))),
  for failures that count against the attempt budget (`max_attempts`).
* `rate_limit_delay_s` — the wait after a 429, which does not count against the budget: the
  server's hint (Retry-After / X-RateLimit-Reset) plus a little jitter so that an account's jobs
  do not all come back at once; without a hint, exponential in the account's consecutive 429s
  with "equal jitter" (never less than half the step, so a throttled account really slows down).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

#: Cap on the hint-less 429 backoff and on the jitter added to a hint.
RATE_LIMIT_MAX_S: Final = 900.0
HINT_JITTER_MAX_S: Final = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 2.0
    max_delay_s: float = 3600.0

    def ceiling_s(self, attempt: int) -> float:
        """The largest delay `backoff_s(attempt)` can return."""
        exponent = min(max(0, attempt - 1), 60)  # 2**60·base is far past any cap
        return min(self.max_delay_s, self.base_delay_s * (2.0 ** exponent))

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt *attempt* + 1, after *attempt* failures (attempt ≥ 1)."""
        return rng.uniform(0.0, self.ceiling_s(attempt))

    def exhausted(self, attempts: int) -> bool:
        """Whether *attempts* counted attempts use up the budget."""
        return attempts >= self.max_attempts


def rate_limit_delay_s(
    retry_after_s: float | None, strikes: int, rng: random.Random, *,
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
    step = min(RATE_LIMIT_MAX_S, policy.max_delay_s,
               policy.base_delay_s * (2.0 ** min(max(1, strikes), 30)))
    return rng.uniform(step / 2, step)
