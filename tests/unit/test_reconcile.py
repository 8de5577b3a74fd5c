"""Finding the pin of an unknown outcome (`reconcile.py`): matching, ownership, horizon, paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pinsched import reconcile
from pinsched.jobs import ImageUrl, PinSpec
from pinsched.pinterest import BoardState

SUBMITTED = datetime(2026, 3, 1, 12, 0, 0, 900_000, tzinfo=UTC)
PIN = PinSpec(board_id="1001", media=ImageUrl(url="https://x.test/a.jpg"), title="T",
              description="D", link="https://x.test/p", alt_text="A")


def candidate(pin_id: str, created: datetime, **changes: Any) -> dict[str, Any]:
    """A `Pin` JSON as Pinterest renders it (whole seconds, no offset)."""
    body: dict[str, Any] = {"id": pin_id, "board_id": "1001", "board_section_id": None,
                            "title": "T", "description": "D", "link": "https://x.test/p",
                            "alt_text": "A", "created_at": created.strftime("%Y-%m-%dT%H:%M:%S")}
    body.update(changes)
    return body


def test_a_pin_created_in_the_same_second_is_found() -> None:
    """Second-resolution `created_at` and `board_pins_modified_at` equal to the truncated
    submission second never hide the pin."""
    same_second = SUBMITTED.replace(microsecond=0)
    board = BoardState(pin_count=1, pins_modified_at=same_second)
    assert not reconcile.board_untouched(board, SUBMITTED)
    hit = reconcile.pick(PIN, [candidate("9", same_second)], submitted_at=SUBMITTED, owned=set())
    assert hit is not None
    assert hit["id"] == "9"


def test_board_untouched_only_when_older_than_the_horizon() -> None:
    """The pre-check skips the listing only when the board changed before submission minus SKEW."""
    old = BoardState(pin_count=5, pins_modified_at=SUBMITTED - reconcile.SKEW - timedelta(1))
    recent = BoardState(pin_count=5, pins_modified_at=SUBMITTED - timedelta(minutes=1))
    unknown = BoardState(pin_count=5, pins_modified_at=None)
    assert reconcile.board_untouched(old, SUBMITTED)
    assert not reconcile.board_untouched(recent, SUBMITTED)
    assert not reconcile.board_untouched(unknown, SUBMITTED)


def test_every_echoed_field_must_match() -> None:
    """A pin differing in title, description, link, alt text, board or section is not ours."""
    at = SUBMITTED + timedelta(seconds=1)
    for change in ({"title": "other"}, {"description": None}, {"link": "https://x.test/q"},
                   {"alt_text": "B"}, {"board_id": "1002"}, {"board_section_id": "77"}):
        assert reconcile.pick(PIN, [candidate("9", at, **change)], submitted_at=SUBMITTED,
                              owned=set()) is None, change
    in_section = PinSpec(board_id="1001", board_section_id="77", media=PIN.media, title="T",
                         description="D", link="https://x.test/p", alt_text="A")
    assert reconcile.pick(in_section, [candidate("9", at, board_section_id="77")],
                          submitted_at=SUBMITTED, owned=set()) is not None


def test_empty_fields_match_nulls() -> None:
    """A job without title or link matches a pin whose title and link are null."""
    bare = PinSpec(board_id="1001", media=PIN.media)
    pin = candidate("9", SUBMITTED, title=None, description=None, link=None, alt_text=None)
    assert reconcile.pick(bare, [pin], submitted_at=SUBMITTED, owned=set()) is not None


def test_owned_and_too_old_pins_are_excluded_and_the_earliest_wins() -> None:
    """Pins owned by other jobs or created before the horizon are skipped; among the rest the
    earliest (then the lowest id) is claimed."""
    too_old = candidate("1", SUBMITTED - reconcile.SKEW - timedelta(seconds=1))
    owned = candidate("2", SUBMITTED)
    later = candidate("5", SUBMITTED + timedelta(seconds=3))
    first = candidate("4", SUBMITTED + timedelta(seconds=1))
    tie = candidate("3", SUBMITTED + timedelta(seconds=1))
    no_time = candidate("6", SUBMITTED)
    no_time["created_at"] = None
    hit = reconcile.pick(PIN, [too_old, owned, later, first, tie, no_time],
                         submitted_at=SUBMITTED, owned={"2"})
    assert hit is not None
    assert hit["id"] == "3"
    assert reconcile.pick(PIN, [too_old, owned], submitted_at=SUBMITTED, owned={"2"}) is None


def test_paging_stops_only_on_a_newest_first_page_older_than_the_horizon() -> None:
    """Later pages are skipped only when the listing is provably newest-first and past the
    horizon; an unordered or recent page keeps the search going."""
    old = SUBMITTED - reconcile.SKEW - timedelta(hours=1)
    newest_first = [candidate("3", old), candidate("2", old - timedelta(1))]
    oldest_first = [candidate("2", old - timedelta(1)), candidate("3", old)]
    recent = [candidate("3", SUBMITTED), candidate("2", old)]
    assert reconcile.search_exhausted(newest_first, SUBMITTED)
    assert not reconcile.search_exhausted(oldest_first, SUBMITTED)
    assert not reconcile.search_exhausted(recent, SUBMITTED)
    assert not reconcile.search_exhausted([], SUBMITTED)
    undated = [{**newest_first[0], "created_at": None}]
    assert not reconcile.search_exhausted(undated, SUBMITTED)
