"""One pin on several boards, spaced out. Pure: no I/O, no clock reads.

A SchedulePin request with `also_boards` becomes one job per board: the first at the requested
time, each next one `board_interval` later (for `next_free_slot`, the next free slot at or after
that, which the store decides when it inserts them). The jobs share a group id (the first job's
id). The group's jobs carry derived request ids (`<request_id>#2`, `#3`, ...) so that the
request's `request_id` covers the whole group: sending it again returns the same jobs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from pinsched.core.jobs import ScheduleSpec

#: At most this many boards besides the pin's own.
MAX_ALSO_BOARDS = 9
MIN_BOARD_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Member:
    """One job to create: its spec, which request it came from, its place in its group."""

    spec: ScheduleSpec
    request: int  # index of the request in the call
    position: int  # 0 for the first board of the request
    grouped: bool  # the request has also_boards
    interval: timedelta  # for a slotted member after the first: kept after the previous one


def expand(specs: Sequence[ScheduleSpec]) -> list[Member]:
    """The jobs of *specs*, each group's members consecutive and in board order."""
    out: list[Member] = []
    for i, spec in enumerate(specs):
        boards = (spec.pin.board_id, *spec.also_boards)
        for k, board in enumerate(boards):
            if k == 0:
                member = dataclasses.replace(spec, also_boards=())
            else:
                shift = spec.board_interval * k
                member = dataclasses.replace(
                    spec,
                    pin=dataclasses.replace(spec.pin, board_id=board),
                    also_boards=(),
                    request_id=f"{spec.request_id}#{k + 1}" if spec.request_id else "",
                    scheduled_at=spec.scheduled_at
                    + (shift if spec.next_free_slot is None else timedelta(0)),
                    local_time=None,
                )
            out.append(
                Member(
                    member,
                    i,
                    k,
                    len(boards) > 1,
                    spec.board_interval if k and spec.next_free_slot else timedelta(0),
                )
            )
    return out
