"""Rows of `pinsched import` → SchedulePin requests: fields, time forms, row errors, derived ids."""

from __future__ import annotations

from typing import Any

import pytest

from pinsched.cli.import_rows import RowError, build_request, derived_request_id

BASE = {"account": "acme", "board": "1001", "image_url": "https://e.com/a.jpg"}


def test_a_row_becomes_its_request_with_a_stable_derived_id() -> None:
    """Every column lands in its field; the same row always derives the same request_id, and a
    different title a different one."""
    req = build_request(
        {
            **BASE,
            "title": "t",
            "description": "d",
            "link": "https://e.com",
            "alt_text": "a",
            "scheduled_at": "2027-01-04T09:00:00+01:00",
            "delivery_window": "2h",
            "also_boards": "1002; 1003",
            "board_interval": "7d",
        }
    )
    assert (req.pin.title, req.pin.description, req.pin.link, req.pin.alt_text) == (
        "t",
        "d",
        "https://e.com",
        "a",
    )
    assert req.scheduled_at.seconds == 1799049600
    assert req.delivery_window.seconds == 7200
    assert list(req.also_boards) == ["1002", "1003"]
    assert req.board_interval.seconds == 7 * 86400
    again = build_request(
        {
            **BASE,
            "title": "t",
            "description": "d",
            "link": "https://e.com",
            "alt_text": "a",
            "scheduled_at": "2027-01-04T09:00:00+01:00",
            "delivery_window": "2h",
            "also_boards": "1002; 1003",
            "board_interval": "7d",
        }
    )
    assert req.request_id == again.request_id == derived_request_id(req)
    assert req.request_id.startswith("import-")
    other = build_request({**BASE, "title": "u", "scheduled_at": "2027-01-04T09:00:00Z"})
    assert other.request_id != req.request_id
    given = build_request({**BASE, "request_id": "mine", "next_free_slot": "true"})
    assert given.request_id == "mine"


def test_json_values_and_time_forms() -> None:
    """JSON booleans, numbers (seconds) and lists are accepted; local_time takes time_zone;
    next_free_slot takes an instant to start from."""
    req = build_request(
        {**BASE, "next_free_slot": True, "also_boards": [1002], "board_interval": 86400}
    )
    assert req.WhichOneof("time") == "next_free_slot"
    assert not req.next_free_slot.HasField("not_before")
    assert (list(req.also_boards), req.board_interval.seconds) == (["1002"], 86400)
    local = build_request(
        {**BASE, "local_time": "2027-03-14T02:30", "time_zone": "America/New_York"}
    )
    assert (local.local_time.hours, local.local_time.time_zone.id) == (2, "America/New_York")
    later = build_request({**BASE, "next_free_slot": "2027-01-04T00:00:00Z"})
    assert later.next_free_slot.not_before.seconds == 1799020800  # 2027-01-04T00:00Z


def test_a_video_url_row_is_a_staged_video() -> None:
    """A row with `video_url` (and no image_url) becomes a video_url source, with its
    cover_image_url or, without one, the first frame as the cover."""
    row = {k: v for k, v in BASE.items() if k != "image_url"}
    plain = build_request({**row, "video_url": "https://e.com/v.mp4", "next_free_slot": "now"})
    assert plain.pin.media_source.video_url.url == "https://e.com/v.mp4"
    assert plain.pin.media_source.video_url.WhichOneof("cover") == "cover_image_key_frame_time"
    covered = build_request(
        {
            **row,
            "video_url": "https://e.com/v.mp4",
            "next_free_slot": "now",
            "cover_image_url": "https://e.com/c.jpg",
        }
    )
    assert covered.pin.media_source.video_url.cover_image_url == "https://e.com/c.jpg"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({**BASE, "video_url": "https://e.com/v.mp4", "next_free_slot": "now"}, "video_url"),
        (
            {
                "account": "a",
                "board": "1",
                "video_url": "",
                "image_url": "",
                "next_free_slot": "now",
            },
            "image_url",
        ),
        ({"board": "1", "image_url": "https://e.com/a.jpg", "next_free_slot": "now"}, "account"),
        ({**BASE, "image_url": "", "next_free_slot": "now"}, "image_url"),
        ({**BASE}, "scheduled_at"),
        (
            {**BASE, "scheduled_at": "2027-01-04T09:00Z", "local_time": "2027-01-04T09:00"},
            "scheduled_at",
        ),
        ({**BASE, "scheduled_at": "2027-01-04T09:00"}, "scheduled_at"),
        ({**BASE, "local_time": "2027-01-04T09:00"}, "time_zone"),
        ({**BASE, "next_free_slot": "soon"}, "next_free_slot"),
        ({**BASE, "next_free_slot": "now", "delivery_window": "two hours"}, "delivery_window"),
        ({**BASE, "next_free_slot": "now", "also_boards": [{"id": 1}]}, "also_boards"),
        ({**BASE, "next_free_slot": "now", "title": {"x": 1}}, "title"),
    ],
)
def test_bad_rows_name_the_field(row: dict[str, Any], field: str) -> None:
    """A row that cannot become a request raises RowError naming its field."""
    with pytest.raises(RowError) as err:
        build_request(row)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
