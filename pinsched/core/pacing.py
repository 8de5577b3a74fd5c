"""Pacing: token buckets and an account's publishing pace. Pure: every method takes `now`
(seconds on a monotonic clock) and answers how long to wait; nobody sleeps here.

* `TokenBucket` — `try_take(now) -> 0.0` when a token was taken, else the seconds to wait.
  Never grants more than `capacity + rate·Δt` over any interval Δt.
* `AccountPacer` — an account's write bucket (Pinterest's `org_write` quota is shared by creates,
  updates and deletes), minimum spacing between pins, sliding-hour and sliding-day caps, the
  slow-down after a 429 (halving the rate, recovering gradually), the cool-down after a spam
  block, and the spacing that `x-ratelimit-remaining` / `x-ratelimit-reset` ask for
  (`quota_hint`: the remaining requests spread over the time to the reset, none when 0 remain).
  `snapshot`/`restore` carry that state across a restart in wall-clock seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from pinsched.core.accounts import Pacing

#: Below this many remaining requests, `quota_hint` spreads them over the time to the reset.
LOW_QUOTA: Final = 10


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
    quota_gap: float = 0.0  # seconds between writes asked for by the rate-limit headers
    quota_until: float = 0.0  # … until the quota resets
    last_write: float | None = None

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
        if self.quota_gap and now < self.quota_until and self.last_write is not None:
            wait = self.last_write + self.quota_gap - now
            if wait > 0:
                return wait
        wait = self.bucket.try_take(now)
        if not wait:
            self.last_write = now
        return wait

    def quota_hint(self, now: float, remaining: float, reset_s: float) -> None:
        """Pinterest said *remaining* requests are left until *reset_s* from now: none left
        holds writes until the reset; a few left are spread over that time."""
        if remaining < 1:
            self.blocked_until = max(self.blocked_until, now + reset_s)
            self.quota_gap = 0.0
        elif remaining < LOW_QUOTA:
            self.quota_gap = reset_s / remaining
            self.quota_until = now + reset_s
        else:
            self.quota_gap = 0.0

    def snapshot(self, *, mono: float, wall: float) -> dict[str, Any]:
        """The state worth keeping across a restart, with times as wall-clock seconds."""

        def w(t: float) -> float:
            return t - mono + wall

        return {
            "blocked_until": w(self.blocked_until) if self.blocked_until > mono else 0.0,
            "slowdown": self.slowdown,
            "slowed_at": w(self.slowed_at),
            "strikes": self.strikes,
            "last_pin": w(self.last_pin) if self.last_pin is not None else None,
            "recent": [w(t) for t in self.recent],
            "quota_gap": self.quota_gap,
            "quota_until": w(self.quota_until),
        }

    def restore(self, data: dict[str, Any], *, mono: float, wall: float) -> None:
        """Take back a `snapshot` (times converted to this process's monotonic clock); a 429
        slow-down also starts with an empty bucket, so the restart sends nothing at once."""

        def m(t: Any) -> float:
            return float(t) - wall + mono

        try:
            if float(data.get("blocked_until") or 0) > wall:
                self.blocked_until = max(self.blocked_until, m(data["blocked_until"]))
            self.slowdown = min(1.0, max(1 / 16, float(data.get("slowdown", 1.0))))
            self.slowed_at = m(data.get("slowed_at", wall))
            self.strikes = int(data.get("strikes", 0))
            if data.get("last_pin") is not None:
                self.last_pin = m(data["last_pin"])
            self.recent = deque(
                sorted(m(t) for t in data.get("recent", []) if float(t) > wall - 86_400)
            )
            self.quota_gap = float(data.get("quota_gap", 0.0))
            self.quota_until = m(data.get("quota_until", wall))
        except (TypeError, ValueError):
            return  # an unreadable snapshot: start afresh rather than refuse to start
        if self.slowdown < 1:
            self.bucket.tokens = 0.0

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
