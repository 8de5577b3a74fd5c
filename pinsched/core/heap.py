"""Due-time min-heap of job ids. Pure: no I/O, no clock reads.

The heap is an index, not the truth (SQLite is): it holds `(due, job_id)` pairs and answers
"what is due by *now*" and "when is the next due time". Re-pushing a job replaces its entry;
removal is lazy (an entry is live only while `_entries[job_id]` still holds its due time), so
every operation is O(log n). Equal due times come out in job-id order, which is creation order
(ids are time-ordered), i.e. first in, first out.
"""

from __future__ import annotations

import heapq


class DueHeap:
    """Min-heap of job ids by due time (microseconds since the epoch)."""

    __slots__ = ("_entries", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._entries: dict[str, int] = {}  # job_id -> due time of its live entry

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def push(self, job_id: str, due_us: int) -> None:
        """Insert *job_id* due at *due_us*, replacing any earlier entry for it."""
        if self._entries.get(job_id) == due_us:
            return  # already there
        self._entries[job_id] = due_us
        heapq.heappush(self._heap, (due_us, job_id))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._compact()

    def discard(self, job_id: str) -> None:
        """Forget *job_id* (no error if absent)."""
        self._entries.pop(job_id, None)

    def peek_due(self) -> int | None:
        """The earliest due time, or None when empty."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def load(self, items: list[tuple[str, int]]) -> None:
        """Bulk-load `(job_id, due_us)` pairs into an empty heap (start-up): O(n), not n log n."""
        if self._entries:
            raise ValueError("load() is for an empty heap")
        self._entries = dict(items)
        self._heap = [(due, job_id) for job_id, due in self._entries.items()]
        heapq.heapify(self._heap)

    def pop_due(self, now_us: int, limit: int | None = None) -> list[str]:
        """Remove and return the ids due at or before *now_us*, earliest first (ties: by id)."""
        out: list[str] = []
        while self._heap and (limit is None or len(out) < limit):
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now_us:
                break
            _, job_id = heapq.heappop(self._heap)
            del self._entries[job_id]
            out.append(job_id)
        return out

    def trim(self, keep: int) -> tuple[int, str]:
        """Keep only the *keep* earliest entries (ties: by id); the `(due, job_id)` key of the
        last one kept, or of the earliest possible key when *keep* is 0. O(n log n)."""
        live = sorted((due, job_id) for job_id, due in self._entries.items())
        kept = live[:keep]
        self._entries = {job_id: due for due, job_id in kept}
        self._heap = kept  # a sorted list is a heap
        return kept[-1] if kept else (-(2**62), "")

    def _drop_stale(self) -> None:
        heap, entries = self._heap, self._entries
        while heap and entries.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._entries.get(e[1]) == e[0]]
        heapq.heapify(self._heap)
