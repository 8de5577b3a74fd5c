"""Finding a pin whose create had an unknown outcome. Pure: no I/O, no clock reads.

Pinterest has no idempotency key, so after a timeout, a lost connection, a 5xx on a create, or a
crash while SUBMITTED, pinsched looks for the pin on its board before anything is retried:

1. `board_untouched`: if the board's `board_pins_modified_at` is older than the search horizon
   (submission time minus `SKEW`), no pin can have been created since: not found, no listing.
   Pinterest renders that time with whole seconds, and its clock is not ours, so the horizon is
   minutes wide: a pin created in the same second as the submission is never skipped.
2. `pick` over `GET /boards/{id}/pins` pages: a pin on the same board and section with the same
   title, description, link and alt text, created at or after the horizon, and not already owned
   by another job (the store's pin ids). The earliest match wins, so jobs with identical content
   claim distinct pins in creation order. `media_source` is not echoed by Pinterest, so media
   cannot be compared.
3. `search_exhausted`: the listing order is not documented; paging stops early only when a page
   is newest-first and wholly older than the horizon (then later pages are older still).

Does not decide what a result means for the job (the dispatcher does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Final

from pinsched.jobs import PinSpec
from pinsched.pinterest import BoardState, parse_time

#: Pinterest's times have second precision and come from another clock: look this far back.
SKEW: Final = timedelta(minutes=5)


def horizon(submitted_at: datetime) -> datetime:
    """The earliest `created_at` a pin from a submission at *submitted_at* can carry."""
    return submitted_at - SKEW


def board_untouched(board: BoardState, submitted_at: datetime) -> bool:
    """True when the board's pins have not changed since the horizon (nothing to look for).

    Unknown (`None`) modification time or an empty board with a recent change are not proof.
    """
    modified = board.pins_modified_at
    return modified is not None and modified < horizon(submitted_at)


def matches(pin: PinSpec, candidate: Mapping[str, Any]) -> bool:
    """Whether *candidate* (a Pinterest `Pin` JSON) carries *pin*'s echoed fields."""
    return (
        str(candidate.get("board_id") or "") == pin.board_id
        and str(candidate.get("board_section_id") or "") == pin.board_section_id
        and (candidate.get("title") or "") == pin.title
        and (candidate.get("description") or "") == pin.description
        and (candidate.get("link") or "") == pin.link
        and (candidate.get("alt_text") or "") == pin.alt_text
    )


def pick(
    pin: PinSpec, candidates: Iterable[Mapping[str, Any]], *, submitted_at: datetime,
    owned: set[str],
) -> Mapping[str, Any] | None:
    """The earliest matching pin created since the horizon and not in *owned*, if any."""
    since = horizon(submitted_at)
    found = []
    for c in candidates:
        created = parse_time(c.get("created_at"))
        pin_id = str(c.get("id") or "")
        if not pin_id or created is None or created < since or pin_id in owned:
            continue
        if matches(pin, c):
            found.append((created, _id_key(pin_id), c))
    if not found:
        return None
    found.sort(key=lambda t: (t[0], t[1]))
    return found[0][2]


def search_exhausted(items: Sequence[Mapping[str, Any]], submitted_at: datetime) -> bool:
    """True when no later page can hold the pin: this page is newest-first and all of it is
    older than the horizon."""
    since = horizon(submitted_at)
    times = [parse_time(i.get("created_at")) for i in items]
    if not times or any(t is None for t in times):
        return False
    known = [t for t in times if t is not None]
    newest_first = all(a >= b for a, b in pairwise(known))
    return newest_first and known[0] < since


def _id_key(pin_id: str) -> tuple[int, str]:
    return (int(pin_id), "") if pin_id.isdigit() else (0, pin_id)
