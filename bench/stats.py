"""Small statistics helpers shared by the benchmarks. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The *q*-th percentile (0..100) of already sorted values, nearest-rank; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize(values: Sequence[float]) -> dict[str, float]:
    """n, mean, p50, p90, p99, max of *values* (NaN when empty)."""
    s = sorted(values)
    return {
        "n": len(s),
        "mean": sum(s) / len(s) if s else math.nan,
        "p50": percentile(s, 50),
        "p90": percentile(s, 90),
        "p99": percentile(s, 99),
        "max": s[-1] if s else math.nan,
    }
