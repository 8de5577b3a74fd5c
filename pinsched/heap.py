"""Due-time min-heap of job ids. Pure: no I/O, no clock reads.

The heap is an index, not the truth (SQLite is): it holds `(due, job_id)` pairs and answers
"what is due by *now*" and "when is the next due time". Re-pushing a job replaces its entry;
removal is lazy (stale entries are skipped when they surface), so every operation is O(log n).
"""

from __future__ import annotations

import heapq
import itertools


class DueHeap:
    """Min-heap of job ids by due time (microseconds since the epoch)."""

    __slots__ = ("_counter", "_entries", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._entries: dict[str, int] = {}  # job_id -> tie-break counter of its live entry
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def push(self, job_id: str, due_us: int) -> None:
        """Insert *job_id* due at *due_us*, replacing any earlier entry for it."""
        tick = next(self._counter)
        self._entries[job_id] = tick
        heapq.heappush(self._heap, (due_us, tick, job_id))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._compact()

    def discard(self, job_id: str) -> None:
        """Forget *job_id* (no error if absent)."""
        self._entries.pop(job_id, None)

    def peek_due(self) -> int | None:
        """The earliest due time, or None when empty."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now_us: int, limit: int | None = None) -> list[str]:
        """Remove and return the ids due at or before *now_us*, earliest first (ties: FIFO)."""
        out: list[str] = []
        while self._heap and (limit is None or len(out) < limit):
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now_us:
                break
            _, _, job_id = heapq.heappop(self._heap)
            del self._entries[job_id]
            out.append(job_id)
        return out

    def _drop_stale(self) -> None:
        heap, entries = self._heap, self._entries
        while heap and entries.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._entries.get(e[2]) == e[1]]
        heapq.heapify(self._heap)
