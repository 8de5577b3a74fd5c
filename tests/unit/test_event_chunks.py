"""`store.eventlog._chunks`: how a run of events is cut into multi-row INSERTs — every event once,
in order, in a few fixed statement sizes (so the statement caches keep them)."""

from __future__ import annotations

import pytest

from pinsched.store.eventlog import _CHUNKS, EVENTS_PER_STATEMENT, _chunks


@pytest.mark.parametrize("n", [0, 1, 4, 5, 19, 20, 99, 100, 499, 500, 501, 1203, 4096])
def test_every_event_once_in_order_in_the_fixed_sizes(n: int) -> None:
    parts = _chunks(n)
    covered = [i for start, size in parts for i in range(start, start + size)]
    assert covered == list(range(n))
    assert {size for _, size in parts} <= set(_CHUNKS)
    assert all(size <= EVENTS_PER_STATEMENT for _, size in parts)


def test_a_batch_of_a_thousand_is_two_statements_and_one_job_is_one() -> None:
    assert _chunks(1000) == [(0, 500), (500, 500)]
    assert _chunks(1) == [(0, 1)]
    assert _chunks(1203) == [
        (0, 500),
        (500, 500),
        (1000, 100),
        (1100, 100),
        (1200, 1),
        (1201, 1),
        (1202, 1),
    ]
