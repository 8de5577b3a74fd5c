"""Finding a pin whose create had an unknown outcome. Pure: no I/O.

Pinterest has no idempotency key, so after a timeout (or a crash while SUBMITTED) pinsched looks
for the pin on its board before anything is retried: a pin on the same board and section, with
the same title, description, link and alt text, created no earlier than the submission (minus a
clock-skew margin), and not already owned by another job. `media_source` is not echoed by
Pinterest, so media cannot be compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pinsched.jobs import PinSpec
from pinsched.pinterest import parse_time

#: Pinterest's `created_at` has second precision and another clock: look this far before.
SKEW = timedelta(minutes=5)


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
    """The earliest matching, unowned pin created since *submitted_at* - SKEW, if any."""
    since = submitted_at - SKEW
    found = []
    for c in candidates:
        created = parse_time(c.get("created_at"))
        if created is None or created < since or str(c.get("id")) in owned:
            continue
        if matches(pin, c):
            found.append((created, str(c.get("id")), c))
    if not found:
        return None
    found.sort(key=lambda t: (t[0], t[1]))
    return found[0][2]


def page_is_older(items: Iterable[Mapping[str, Any]], submitted_at: datetime) -> bool:
    """True when every pin of a page was created before the search horizon (stop paging)."""
    since = submitted_at - SKEW
    times = [parse_time(i.get("created_at")) for i in items]
    return bool(times) and all(t is not None and t < since for t in times)
