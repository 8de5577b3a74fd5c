"""Chaos: the daemon killed -9 at random moments under Pinterest faults loses nothing and
publishes nothing twice (DESIGN §6, §8; the engine is `bench/soak.py`).

Runs at the size named by `PINSCHED_SOAK_SCALE` (default `ci`: 200 pins over 10 accounts, 3 kills,
well under a minute); `python -m bench.soak` runs the larger sizes and prints the figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.soak import SCALES, report, run


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_kill_9_under_faults_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, db_url: str
) -> None:
    """Under 5xx, 429, lost answers, creates that land after their 5xx answer and reads that lag
    writes, with kill -9s: every acknowledged job ends DELIVERED or PERMANENTLY_FAILED, the
    sandbox holds exactly one pin per DELIVERED job (its pinterest_pin_id, with its content)
    and none for the others, and only the pins meant to be refused failed."""
    name = os.environ.get("PINSCHED_SOAK_SCALE", "ci")
    scale = SCALES[name]
    result = await run(
        scale,
        tmp_path,
        seed=int(os.environ.get("PINSCHED_SOAK_SEED", "1")),
        name=name,
        db_url=db_url,  # SQLite (a file in tmp_path) or PostgreSQL
    )
    print(report(result))
    assert result.problems() == []
    assert result.kills == scale.kills
    assert result.jobs_acked == result.jobs_in_store == result.pins_scheduled
    assert result.delivered + result.permanently_failed == result.jobs_in_store
    assert result.sandbox_pins == result.delivered
    assert result.unexpected_permanent_failures == 0
    assert result.expected_rejections == result.permanently_failed > 0
    assert result.reconciled_deliveries > 0, "no lost answer was reconciled: faults not applied"
    assert result.late_creates > 0, "no create landed after its 5xx: fault not applied"
