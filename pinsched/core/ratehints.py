"""Pinterest's rate-limit hints: how long a 429 asks us to wait, read from its headers.

Pure. `Retry-After` (seconds or an HTTP date) wins over `X-RateLimit-Reset` (seconds from now, or
an epoch timestamp). Every hint is clamped to 0..`RETRY_AFTER_MAX_S`: a server (or a proxy in
between) answering `Retry-After: 1e15` must not overflow the retry time nor park a job for ever.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Final

#: Longest wait a Retry-After / X-RateLimit-Reset hint from Pinterest can impose (one day).
RETRY_AFTER_MAX_S: Final = 86_400.0


#: An `X-RateLimit-Reset` above this is an epoch timestamp, not a number of seconds.
_EPOCH_THRESHOLD: Final = 1e9


def retry_after_s(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset`
    (seconds from now, or an epoch timestamp); None when neither is usable. Clamped to
    0..`RETRY_AFTER_MAX_S` (a hint of 1e15 s must not overflow the retry time). Pure."""
    value = headers.get("retry-after", "").strip()
    if value:
        try:
            return _clamp_hint(float(value))
        except ValueError:
            try:
                return _clamp_hint((parsedate_to_datetime(value) - now).total_seconds())
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
    reset = headers.get("x-ratelimit-reset", "").strip()
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            return None
        if seconds > _EPOCH_THRESHOLD:
            return _clamp_hint(seconds - now.timestamp())
        return _clamp_hint(seconds)
    return None


def _clamp_hint(seconds: float) -> float | None:
    return None if math.isnan(seconds) else min(RETRY_AFTER_MAX_S, max(0.0, seconds))
