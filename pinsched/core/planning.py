"""Delivery-window planning. Pure: no I/O, no clock reads; deterministic for a given seed.

A job with a delivery window gets a concrete `planned_at` inside `[start, end]`. The jobs of one
account that share a window are spread evenly across it — one slot each, placed at the slot's
middle with jitter of up to a quarter slot either way — then pushed forward, in order, as far as
needed to honour the account's minimum spacing and hourly/daily caps against everything else the
account has planned (`fixed`). When that does not fit inside the window, the plan falls back to
the closest even spread inside it (first at `start`, last at `end`) and says so in `note`.
Plans never leave the window.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pinsched.core.accounts import Pacing

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Plan:
    times: tuple[datetime, ...]  # one per job, in the order given, sorted ascending
    note: str  # why the plan looks the way it does ("" when nothing to say)


def seed_for(account_id: str, start: datetime, end: datetime, seed: int = 0) -> int:
    digest = hashlib.sha256(f"{seed}|{account_id}|{start.isoformat()}|{end.isoformat()}".encode())
    return int.from_bytes(digest.digest()[:8], "big")


def spread(
    n: int,
    start: datetime,
    end: datetime,
    *,
    pacing: Pacing,
    fixed: Sequence[datetime] = (),
    rng: random.Random,
) -> Plan:
    """Plan *n* jobs sharing the window [*start*, *end*] (see the module docstring)."""
    if n <= 0:
        return Plan((), "")
    width = end - start
    if width <= timedelta(0):
        return Plan(tuple([start] * n), "")
    slot = width / n
    targets = [start + slot * (i + 0.5) + slot * rng.uniform(-0.25, 0.25) for i in range(n)]
    placed = _place(targets, start, end, pacing, sorted(fixed))
    if placed is not None:
        return Plan(
            tuple(placed),
            f"spread over the window: {n} pins, one every {_fmt(slot)}" if n > 1 else "",
        )
    even = [start + (width * i / (n - 1)) for i in range(n)] if n > 1 else [start]
    return Plan(
        tuple(even),
        (
            f"the window cannot honour the account's pacing for {n} pins "
            f"(min spacing {_fmt(pacing.min_spacing)}, max {pacing.max_per_hour or '-'}/h, "
            f"{pacing.max_per_day or '-'}/day): spread evenly, one every "
            f"{_fmt(width / max(1, n - 1))}"
        ),
    )


def _place(
    targets: Sequence[datetime],
    start: datetime,
    end: datetime,
    pacing: Pacing,
    fixed: list[datetime],
) -> list[datetime] | None:
    out: list[datetime] = []
    taken = list(fixed)
    for target in targets:
        t = max(target, out[-1] + pacing.min_spacing if out else target)
        for _ in range(10_000):
            moved = _earliest_allowed(t, taken, pacing)
            if moved == t:
                break
            t = moved
        if t > end:
            return None
        out.append(t)
        bisect.insort(taken, t)
    return out


def _earliest_allowed(t: datetime, taken: list[datetime], pacing: Pacing) -> datetime:
    """*t*, or a later time when *t* breaks spacing or a cap against *taken*."""
    d = pacing.min_spacing
    if d > timedelta(0):
        i = bisect.bisect_left(taken, t - d)
        # Every taken time in (t - d, t + d) is too close: jump past the last of them.
        j = bisect.bisect_right(taken, t + d)
        close = [x for x in taken[i:j] if abs(x - t) < d]
        if close:
            return max(close) + d
    for cap, span in ((pacing.max_per_hour, _HOUR), (pacing.max_per_day, _DAY)):
        if cap and _window_count(t, taken, span) + 1 > cap:
            # Jump to when the next pin before *t* leaves its sliding span, and try again there.
            lo = bisect.bisect_right(taken, t - span)
            hi = bisect.bisect_right(taken, t)
            if lo < hi:
                return taken[lo] + span + timedelta(microseconds=1)
            return t + span  # only later pins crowd it: no earlier slot helps
    return t


def _window_count(t: datetime, taken: list[datetime], span: timedelta) -> int:
    """The most *taken* times in any sliding span that also contains *t*."""
    lo = bisect.bisect_right(taken, t - span)
    hi = bisect.bisect_left(taken, t + span)
    near = taken[lo:hi]
    best = 0
    for start in [x for x in near if x <= t] + [t]:
        end = start + span
        count = bisect.bisect_left(near, end) - bisect.bisect_left(near, start)
        best = max(best, count)
    return best


def violations(times: Sequence[datetime], pacing: Pacing) -> list[str]:
    """What a set of planned times breaks (for tests and checks): spacing and sliding caps."""
    ts = sorted(times)
    out = []
    for a, b in itertools.pairwise(ts):
        if b - a < pacing.min_spacing:
            out.append(f"spacing {b - a} < {pacing.min_spacing} at {b.isoformat()}")
    for cap, span, name in (
        (pacing.max_per_hour, _HOUR, "hour"),
        (pacing.max_per_day, _DAY, "day"),
    ):
        if cap:
            for i, t in enumerate(ts):
                j = bisect.bisect_left(ts, t + span)
                if j - i > cap:
                    out.append(f"{j - i} pins in the {name} from {t.isoformat()} (cap {cap})")
    return out


def _fmt(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.3g}h"
    if seconds >= 60:
        return f"{seconds / 60:.3g}m"
    return f"{seconds:.3g}s"
