"""Pacing: token buckets and an account's publishing pace. Pure: every method takes `now`
(seconds on a monotonic clock) and answers how long to wait; nobody sleeps here.

* `TokenBucket` — `try_take(now) -> 0.0` when a token was taken, else the seconds to wait.
  Never grants more than `capacity + rate·Δt` over any interval Δt.
* `AccountPacer` — an account's write bucket (Pinterest's `org_write` quota is shared by creates,
  updates and deletes), minimum spacing between pins, sliding-hour and sliding-day caps, the
  slow-down after a 429 (halving the rate, recovering gradually) and the cool-down after a spam
  block.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pinsched.accounts import Pacing


@dataclass(slots=True)
class TokenBucket:
    """*rate* tokens per second, at most *capacity* banked. rate ≤ 0 means unlimited."""

    rate: float
    capacity: float
    tokens: float = field(default=-1.0)
    updated: float | None = None

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    @classmethod
    def per_minute(cls, n: int, *, burst: float | None = None) -> TokenBucket:
        return cls(rate=n / 60.0, capacity=burst if burst is not None else max(1.0, n / 6.0))

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now

    def try_take(self, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(slots=True)
class AccountPacer:
    """One account's pace. Times are monotonic seconds."""

    policy: Pacing
    bucket: TokenBucket = field(init=False)
    last_pin: float | None = None
    recent: deque[float] = field(default_factory=deque)  # pin times of the last day
    slowdown: float = 1.0  # rate multiplier after 429s (1 = full speed)
    slowed_at: float = 0.0
    blocked_until: float = 0.0
    strikes: int = 0  # consecutive 429s

    def __post_init__(self) -> None:
        self.bucket = self._make_bucket()

    def _make_bucket(self) -> TokenBucket:
        n = self.policy.writes_per_minute
        if n <= 0:
            return TokenBucket(rate=0.0, capacity=0.0)
        return TokenBucket.per_minute(n)

    def set_policy(self, policy: Pacing) -> None:
        self.policy = policy
        self.bucket = self._make_bucket()

    def pin_delay(self, now: float) -> float:
        """Seconds until a new pin may be sent (spacing, caps, cool-down); 0 means now."""
        waits = [self.blocked_until - now]
        spacing = self.policy.min_spacing.total_seconds()
        if spacing > 0 and self.last_pin is not None:
            waits.append(self.last_pin + spacing - now)
        while self.recent and self.recent[0] <= now - 86_400:
            self.recent.popleft()
        if self.policy.max_per_day and len(self.recent) >= self.policy.max_per_day:
            waits.append(self.recent[-self.policy.max_per_day] + 86_400 - now)
        if self.policy.max_per_hour:
            hour = [t for t in self.recent if t > now - 3600]
            if len(hour) >= self.policy.max_per_hour:
                waits.append(hour[-self.policy.max_per_hour] + 3600 - now)
        return max(0.0, *waits)

    def write_delay(self, now: float) -> float:
        """Take a write token: 0 when taken, else seconds to wait (429 slow-down applied)."""
        self._recover(now)
        return self.bucket.try_take(now)

    def record_pin(self, now: float) -> None:
        self.last_pin = now
        self.recent.append(now)

    def rate_limited(self, now: float, retry_after_s: float | None) -> None:
        """A 429: halve the write rate (down to 1/16) and hold writes for the hinted time."""
        self.strikes += 1
        self.slowdown = max(1 / 16, self.slowdown / 2)
        self.slowed_at = now
        self.bucket.tokens = 0.0
        if retry_after_s:
            self.blocked_until = max(self.blocked_until, now + retry_after_s)

    def spam_blocked(self, now: float, cooldown_s: float) -> None:
        self.blocked_until = max(self.blocked_until, now + cooldown_s)

    def _recover(self, now: float) -> None:
        # Double the rate back for every minute without a 429.
        if self.slowdown < 1 and now - self.slowed_at >= 60:
            steps = int((now - self.slowed_at) // 60)
            self.slowdown = min(1.0, self.slowdown * 2**steps)
            self.slowed_at += steps * 60
        if self.slowdown < 1:
            self.bucket.rate = self.policy.writes_per_minute / 60.0 * self.slowdown
        elif self.policy.writes_per_minute > 0:
            self.bucket.rate = self.policy.writes_per_minute / 60.0
