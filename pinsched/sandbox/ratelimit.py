"""Sliding-window rate limiter for the sandbox's ``org_write`` category. Pure: `now` is passed in.

One budget per key (the username): at most `limit` admitted requests in any `window_s` seconds.
Denied requests do not consume budget. Does not decide which requests count (server.py does).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RateDecision:
    """The outcome of one `SlidingWindow.take`; `reset_s` is whole seconds until a slot frees."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """Return the ``x-ratelimit-*`` headers (plus ``Retry-After`` when denied)."""
        out = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_s)
        return out


class SlidingWindow:
    """Per-key sliding-window counter."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def take(self, key: str, now_s: float) -> RateDecision:
        """Admit one request for *key* at *now_s* (epoch seconds) if the window has room."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now_s - self.window_s:
            hits.popleft()
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now_s)
        reset = max(0, math.ceil(hits[0] + self.window_s - now_s)) if hits else 0
        return RateDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=self.limit - len(hits),
            reset_s=max(reset, 1) if not allowed else reset,
        )

    def clear(self) -> None:
        """Forget every key's history."""
        self._hits.clear()
