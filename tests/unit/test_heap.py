"""Tests of `pinsched.core.heap.DueHeap` against a reference model (a dict and a sorted list)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pinsched.core.heap import DueHeap

IDS = st.sampled_from([f"job-{i}" for i in range(6)])
DUES = st.integers(min_value=0, max_value=20)


def test_empty_heap() -> None:
    """An empty heap has no due time and pops nothing."""
    heap = DueHeap()
    assert len(heap) == 0
    assert heap.peek_due() is None
    assert heap.pop_due(10**18) == []


def test_load_builds_the_same_heap_as_pushes() -> None:
    """Bulk loading at start-up orders jobs exactly as pushing them one by one does."""
    items = [(f"j{i:03d}", (i * 7919) % 50) for i in range(200)]
    loaded, pushed = DueHeap(), DueHeap()
    loaded.load(items)
    for job_id, due in items:
        pushed.push(job_id, due)
    assert loaded.pop_due(10**9) == pushed.pop_due(10**9)


def test_pop_due_orders_by_due_then_id() -> None:
    """Due jobs come out earliest first, and jobs due at the same time in id order (job ids are
    time-ordered, so that is creation order)."""
    heap = DueHeap()
    for job_id, due in [("c", 5), ("a", 3), ("b", 5), ("d", 3), ("e", 9)]:
        heap.push(job_id, due)
    assert heap.peek_due() == 3
    assert heap.pop_due(5) == ["a", "d", "b", "c"]
    assert heap.pop_due(8) == []
    assert heap.peek_due() == 9
    assert len(heap) == 1


def test_repush_replaces_and_discard_forgets() -> None:
    """A re-push moves a job to its new due time; a discarded job never comes out."""
    heap = DueHeap()
    heap.push("a", 10)
    heap.push("b", 20)
    heap.push("a", 30)
    heap.discard("b")
    heap.discard("missing")
    assert "b" not in heap
    assert heap.peek_due() == 30
    assert heap.pop_due(100) == ["a"]


def test_limit_caps_a_pop() -> None:
    """`limit` caps how many ids one pop returns; the rest stay due."""
    heap = DueHeap()
    for i in range(5):
        heap.push(f"j{i}", 1)
    assert heap.pop_due(1, limit=2) == ["j0", "j1"]
    assert heap.pop_due(1, limit=0) == []
    assert heap.pop_due(1) == ["j2", "j3", "j4"]


def test_many_repushes_compact_without_losing_entries() -> None:
    """Thousands of re-pushes of a few ids keep only the live entries and the right order."""
    heap = DueHeap()
    for i in range(5000):
        heap.push(f"j{i % 3}", 10_000 - i)
    assert len(heap) == 3
    # Last pushes: j2 at i=4997 (due 5003), j0 at 4998 (5002), j1 at 4999 (5001).
    assert heap.pop_due(10**9) == ["j1", "j0", "j2"]


class HeapMachine(RuleBasedStateMachine):
    """Random pushes, re-pushes, discards and pops agree with a dict + sorted-list model."""

    def __init__(self) -> None:
        super().__init__()
        self.heap = DueHeap()
        self.model: dict[str, tuple[int, int]] = {}  # id -> (due, push order)
        self.order = itertools.count()

    def expected(self) -> list[tuple[int, int, str]]:
        return sorted((due, 0, job_id) for job_id, (due, _) in self.model.items())

    @rule(job_id=IDS, due=DUES)
    def push(self, job_id: str, due: int) -> None:
        self.heap.push(job_id, due)
        self.model[job_id] = (due, next(self.order))

    @rule(job_id=IDS, dues=st.lists(DUES, min_size=1, max_size=40))
    def repush_many(self, job_id: str, dues: list[int]) -> None:
        """Many stale entries for one id, enough to trigger the heap's compaction."""
        for due in dues:
            self.push(job_id, due)

    @rule(job_id=IDS)
    def discard(self, job_id: str) -> None:
        self.heap.discard(job_id)
        self.model.pop(job_id, None)

    @rule(now=DUES, limit=st.none() | st.integers(min_value=0, max_value=4))
    def pop_due(self, now: int, limit: int | None) -> None:
        due = [job_id for d, _, job_id in self.expected() if d <= now]
        if limit is not None:
            due = due[:limit]
        assert self.heap.pop_due(now, limit) == due
        for job_id in due:
            del self.model[job_id]

    @precondition(lambda self: bool(self.model))
    @rule()
    def peek_due(self) -> None:
        assert self.heap.peek_due() == self.expected()[0][0]

    @invariant()
    def same_members(self) -> None:
        assert len(self.heap) == len(self.model)
        for job_id in (f"job-{i}" for i in range(6)):
            assert (job_id in self.heap) == (job_id in self.model)

    @invariant()
    def empty_means_no_due_time(self) -> None:
        if not self.model:
            assert self.heap.peek_due() is None


TestHeapMachine = HeapMachine.TestCase
# Generation is slow under coverage tracing on a loaded machine; that is not the heap's fault.
TestHeapMachine.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_trim_keeps_the_earliest_entries_and_names_the_last_kept() -> None:
    """`trim` keeps the earliest entries (ties by id), forgets the rest and returns the key of
    the last one kept: the new edge of the window."""
    heap = DueHeap()
    for i, due in enumerate([50, 10, 30, 30, 20, 40]):
        heap.push(f"j{i}", due)
    heap.push("j1", 35)  # a re-push leaves a stale entry behind
    assert heap.trim(3) == (30, "j3")
    assert len(heap) == 3
    assert "j3" in heap
    assert "j1" not in heap
    assert heap.pop_due(100) == ["j4", "j2", "j3"]
    assert heap.trim(0) == (-(2**62), "")
