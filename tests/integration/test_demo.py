"""`pinsched demo` (what `make demo` runs) shows the happy path and the interesting ones."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

from pinsched.demo_paths import next_gap
from tests.e2e.procs import ROOT


def test_next_gap_finds_the_next_spring_forward() -> None:
    """The DST scene picks 02:30 on the next day that skips it, and none for a zone without DST."""
    new_york = next_gap("America/New_York", date(2026, 12, 4))
    paris = next_gap("Europe/Paris", date(2027, 3, 28))
    assert new_york is not None
    assert new_york.isoformat() == "2027-03-14T02:30:00"
    assert paris is not None
    assert paris.isoformat() == "2028-03-26T02:30:00"
    assert next_gap("UTC", date(2026, 12, 4)) is None


def test_demo_shows_a_refusal_a_window_a_429_and_a_cancel() -> None:
    """The demo ends with every pin delivered or cancelled, after showing each scene."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINSCHED_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pinsched", "demo", "--pins", "1"],
        cwd=ROOT,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "INVALID_ARGUMENT: --local: " in out
    assert "does not exist in America/New_York" in out
    assert "Window pin #3: planned at" in out
    assert "SUBMITTED → RETRYING  rate limited: retry after 1 s" in out
    assert "PENDING → CANCELLED" in out
    assert out.rstrip().endswith("4 of 5 pins delivered")
