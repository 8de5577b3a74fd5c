"""Chaos across three daemon processes on one PostgreSQL database (the engine is
`bench/cluster_chaos.py`): random SIGKILLs and SIGSTOPs longer than the account lease under
Pinterest faults lose nothing and publish nothing twice.

CI runs the `ci` scale (120 pins, 3 kills, 1 stop; well under a minute);
`PINSCHED_SOAK_SCALE=soak` or `long` runs the full one (320 pins over 10 accounts, 12 kills,
2 stops).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cluster_chaos import SCALES, run
from bench.soak import report


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_kills_and_pauses_across_three_daemons_lose_nothing_and_duplicate_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    """Three daemons on one database, SIGKILLed and SIGSTOPped past their leases at random
    while pins are delivered under faults: every acknowledged job ends DELIVERED or
    PERMANENTLY_FAILED, the sandbox holds exactly one pin per DELIVERED job and no other, and
    every kill and pause happened."""
    name = "ci" if os.environ.get("PINSCHED_SOAK_SCALE", "ci") == "ci" else "full"
    scale = SCALES[name]
    result, stops = await run(
        scale, pg_url, tmp_path, seed=int(os.environ.get("PINSCHED_SOAK_SEED", "1")), name=name
    )
    print(report(result))
    assert result.problems() == []
    assert result.kills == scale.kills
    assert stops == scale.stops
    assert result.jobs_acked == result.jobs_in_store == result.pins_scheduled
    assert result.delivered + result.permanently_failed == result.jobs_in_store
    assert result.sandbox_pins == result.delivered
    assert result.unexpected_permanent_failures == 0
