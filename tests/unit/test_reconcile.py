"""Finding the pin of an unknown outcome (`reconcile.py`): normalized matching, media type,
ownership, horizon, ambiguity of bare jobs, paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pinsched.core import reconcile
from pinsched.core.jobs import Carousel, CarouselItem, ImageUrl, PinSpec, Video

SUBMITTED = datetime(2026, 3, 1, 12, 0, 0, 900_000, tzinfo=UTC)
PIN = PinSpec(
    board_id="1001",
    media=ImageUrl(url="https://x.test/a.jpg"),
    title="T",
    description="D",
    link="https://x.test/p",
    alt_text="A",
)
BARE = PinSpec(board_id="1001", media=ImageUrl(url="https://x.test/a.jpg"))


def candidate(pin_id: str, created: datetime, **changes: Any) -> dict[str, Any]:
    """A `Pin` JSON as Pinterest renders it (whole seconds, no offset)."""
    body: dict[str, Any] = {
        "id": pin_id,
        "board_id": "1001",
        "board_section_id": None,
        "title": "T",
        "description": "D",
        "link": "https://x.test/p",
        "alt_text": "A",
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S"),
        "is_owner": True,
        "media": {"media_type": "image"},
    }
    body.update(changes)
    return body


def pick(
    pin: PinSpec, items: list[dict[str, Any]], owned: set[str] | None = None
) -> str | reconcile.Ambiguous | None:
    return reconcile.pick(pin, items, submitted_at=SUBMITTED, owned=owned or set())


def test_a_pin_created_in_the_same_second_is_found() -> None:
    """A second-resolution `created_at` equal to the truncated submission second never hides
    the pin."""
    assert pick(PIN, [candidate("9", SUBMITTED.replace(microsecond=0))]) == "9"


def test_every_echoed_field_must_match() -> None:
    """A pin differing in title, description, link, alt text, board or section is not ours."""
    at = SUBMITTED + timedelta(seconds=1)
    for change in (
        {"title": "other"},
        {"description": None},
        {"link": "https://x.test/q"},
        {"alt_text": "B"},
        {"board_id": "1002"},
        {"board_section_id": "77"},
    ):
        assert pick(PIN, [candidate("9", at, **change)]) is None, change
    in_section = PinSpec(
        board_id="1001",
        board_section_id="77",
        media=PIN.media,
        title="T",
        description="D",
        link="https://x.test/p",
        alt_text="A",
    )
    assert pick(in_section, [candidate("9", at, board_section_id="77")]) == "9"


@pytest.mark.parametrize(
    ("field", "sent", "stored"),
    [
        ("title", "  Hello   world ", "Hello world"),
        ("description", "line one\n\nline two\t", "line one line two"),
        ("alt_text", "Cafe\u0301", "Caf\u00e9"),
        ("link", "HTTPS://Shop.Example.COM/p/", "https://shop.example.com/p"),
        ("link", "https://x.test", "https://x.test/"),
        ("link", "http://x.test:80/a?b=1", "http://x.test/a?b=1"),
    ],
    ids=[
        "title-spaces",
        "description-whitespace",
        "alt-unicode",
        "link-case-slash",
        "link-root-slash",
        "link-default-port",
    ],
)
def test_text_and_links_are_compared_normalized(field: str, sent: str, stored: str) -> None:
    """Pinterest trims text and may rewrite links (whitespace, trailing slash, scheme/host
    case): the rewritten pin is still found, where an exact compare would miss it and re-send."""
    pin = PinSpec(
        **{
            **{
                f: getattr(PIN, f)
                for f in ("board_id", "media", "title", "description", "link", "alt_text")
            },
            field: sent,
        }
    )
    assert pick(pin, [candidate("9", SUBMITTED, **{field: stored})]) == "9"


def test_normalizing_keeps_what_makes_links_different() -> None:
    """Paths, queries and non-default ports still tell links apart."""
    assert reconcile.norm_link("https://x.test/a") != reconcile.norm_link("https://x.test/b")
    assert reconcile.norm_link("https://x.test/a?q=1") != reconcile.norm_link("https://x.test/a")
    assert reconcile.norm_link("https://x.test:8443/") != reconcile.norm_link("https://x.test/")


@pytest.mark.parametrize(
    ("pin", "media_type"),
    [
        (PIN, "video"),
        (PIN, "multiple_images"),
        (
            PinSpec(
                board_id="1001",
                media=Video(media_id="5"),
                title="T",
                description="D",
                link="https://x.test/p",
                alt_text="A",
            ),
            "image",
        ),
    ],
    ids=["image-vs-video", "image-vs-carousel", "video-vs-image"],
)
def test_a_pin_of_another_media_type_is_never_claimed(pin: PinSpec, media_type: str) -> None:
    """Same text, other media type (image / video / carousel): not the job's pin."""
    assert pick(pin, [candidate("9", SUBMITTED, media={"media_type": media_type})]) is None


def test_a_carousel_matches_only_with_as_many_items() -> None:
    """A carousel job claims a carousel pin with the same number of items, not another."""
    carousel = PinSpec(
        board_id="1001",
        title="T",
        description="D",
        link="https://x.test/p",
        alt_text="A",
        media=Carousel(
            items=(CarouselItem(url="https://x.test/1"), CarouselItem(url="https://x.test/2"))
        ),
    )
    two = {"media_type": "multiple_images", "items": [{}, {}]}
    three = {"media_type": "multiple_images", "items": [{}, {}, {}]}
    assert pick(carousel, [candidate("8", SUBMITTED, media=three)]) is None
    assert pick(carousel, [candidate("9", SUBMITTED, media=two)]) == "9"


def test_a_pin_not_owned_by_the_account_is_never_claimed() -> None:
    """`is_owner: false` (another user's pin on a shared board) is not the job's pin."""
    assert pick(PIN, [candidate("9", SUBMITTED, is_owner=False)]) is None


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
    assert pick(PIN, [too_old, owned, later, first, tie, no_time], owned={"2"}) == "3"
    assert pick(PIN, [too_old, owned], owned={"2"}) is None


def test_the_earliest_wins_across_pages() -> None:
    """Candidates gathered from several pages are ranked together: a newest-first listing puts
    the earliest on a later page, and it is still the one claimed."""
    page1 = reconcile.candidates(
        PIN, [candidate("7", SUBMITTED + timedelta(seconds=9))], submitted_at=SUBMITTED, owned=set()
    )
    page2 = reconcile.candidates(
        PIN, [candidate("6", SUBMITTED + timedelta(seconds=2))], submitted_at=SUBMITTED, owned=set()
    )
    assert reconcile.choose(PIN, page1 + page2) == "6"


def test_twins_take_candidates_in_submission_order() -> None:
    """With *rank* twins submitted earlier and still unsettled, a job takes the candidate at
    that rank, or none when there are not that many yet."""
    found = [
        reconcile.Candidate("7", SUBMITTED + timedelta(seconds=2)),
        reconcile.Candidate("6", SUBMITTED + timedelta(seconds=1)),
    ]
    assert reconcile.choose(PIN, found, rank=0) == "6"
    assert reconcile.choose(PIN, found, rank=1) == "7"
    assert reconcile.choose(PIN, found[:1], rank=1) is None


def test_same_content_is_what_a_listing_cannot_tell_apart() -> None:
    """Twins: same board, section, media type and normalized text; any visible difference (or
    another media type) makes them distinct, while the image URL does not count."""
    twin = PinSpec(
        board_id="1001",
        media=ImageUrl(url="https://x.test/other.jpg"),
        title=" T ",
        description="D",
        link="HTTPS://X.TEST/p/",
        alt_text="A",
    )
    assert reconcile.same_content(PIN, twin)
    for change in (
        {"title": "U"},
        {"board_section_id": "5"},
        {"link": "https://x.test/q"},
        {"media": Video(media_id="1")},
    ):
        other = PinSpec(
            **{
                **{
                    f: getattr(PIN, f)
                    for f in ("board_id", "media", "title", "description", "link", "alt_text")
                },
                **change,
            }
        )
        assert not reconcile.same_content(PIN, other), change


def test_a_bare_job_claims_a_lone_candidate_and_never_guesses_among_several() -> None:
    """A job without title, description, link or alt text matches on board, section and media:
    a lone candidate is claimed; two are `Ambiguous` (none claimed); another section or media
    type does not count as a candidate."""
    nulls = {"title": None, "description": None, "link": None, "alt_text": None}
    one = candidate("9", SUBMITTED, **nulls)
    two = candidate("10", SUBMITTED + timedelta(seconds=1), **nulls)
    elsewhere = candidate("11", SUBMITTED, **nulls, board_section_id="77")
    video = candidate("12", SUBMITTED, **nulls, media={"media_type": "video"})
    assert reconcile.bare(BARE)
    assert pick(BARE, [one, elsewhere, video]) == "9"
    assert pick(BARE, [one, two, elsewhere]) == reconcile.Ambiguous(("9", "10"))
    assert pick(BARE, [one, two], owned={"10"}) == "9"


def test_a_job_with_whitespace_only_text_is_bare() -> None:
    """Text that is only whitespace gives nothing to match on."""
    assert reconcile.bare(PinSpec(board_id="1", media=BARE.media, title="  ", link=" "))
    assert not reconcile.bare(PIN)


def test_paging_stops_once_a_newest_first_page_reaches_past_the_horizon() -> None:
    """Later pages are skipped only when the listing is provably newest-first and its oldest pin
    is older than the horizon; an unordered or wholly recent page keeps the search going."""
    old = SUBMITTED - reconcile.SKEW - timedelta(hours=1)
    newest_first = [candidate("3", SUBMITTED), candidate("2", old)]
    oldest_first = [candidate("2", old), candidate("3", SUBMITTED)]
    recent = [candidate("3", SUBMITTED + timedelta(1)), candidate("2", SUBMITTED)]
    assert reconcile.search_exhausted(newest_first, SUBMITTED)
    assert not reconcile.search_exhausted(oldest_first, SUBMITTED)
    assert not reconcile.search_exhausted(recent, SUBMITTED)
    assert not reconcile.search_exhausted([], SUBMITTED)
    undated = [{**newest_first[0], "created_at": None}]
    assert not reconcile.search_exhausted(undated, SUBMITTED)
