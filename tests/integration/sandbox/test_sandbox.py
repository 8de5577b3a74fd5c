"""Integration tests for the sandbox's pin and board endpoints over real HTTP on loopback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from pinsched.sandbox import Sandbox
from pinsched.testing import FakeClock

ALICE = "tok-alice"
BOB = "tok-bob"
DIGITS_MESSAGE = "Invalid request: 'abc' does not match '^\\d+$' - 'board_id'"
CLOCK_START = datetime(2026, 11, 25, 14, 0, 3, tzinfo=UTC)
INVALID_URL = (
    "Whoops! It looks like you entered an invalid URL. Try creating a Pin again with a valid URL."
)


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A started sandbox: alice owns boards 111 (section 555) and 112, bob owns 999."""
    sb = Sandbox(now=clock.now)
    sb.add_user("alice", access_token=ALICE, refresh_token="ref-alice", board_ids=["111", "112"])
    sb.add_user("bob", access_token=BOB, board_ids=["999"])
    sb.add_section("111", "555")
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = ALICE,
    json: Any = None,
    data: Any = None,
) -> tuple[int, Any]:
    """Send one request; return (status, decoded JSON body or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, headers=headers, json=json, data=data) as resp:
        text = await resp.text()
        return resp.status, (await resp.json() if text else None)


def image_pin(board_id: str = "111", **extra: Any) -> dict[str, Any]:
    """Return a minimal valid PinCreate body."""
    body: dict[str, Any] = {
        "board_id": board_id,
        "title": "A pin",
        "media_source": {"source_type": "image_url", "url": "https://example.com/a.jpg"},
    }
    body.update(extra)
    return body


async def test_create_pin_returns_pin_like_pinterest(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A valid create answers 201 with a Pin whose fields echo the input and not media_source."""
    body = image_pin(description="d", link="https://shop.example/x", alt_text="alt")
    status, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=body)
    assert status == 201
    assert pin["id"] == "813000000000000001"
    assert pin["created_at"] == "2026-11-25T14:00:03"
    assert (pin["title"], pin["description"], pin["link"], pin["alt_text"]) == (
        "A pin",
        "d",
        "https://shop.example/x",
        "alt",
    )
    assert pin["board_id"] == "111"
    assert pin["board_section_id"] is None
    assert pin["board_owner"] == {"username": "alice"}
    assert pin["is_owner"] is True
    assert pin["is_standard"] is True
    assert pin["creative_type"] == "REGULAR"
    assert re.fullmatch(r"#[0-9A-F]{6}", pin["dominant_color"])
    assert "media_source" not in pin
    assert pin["media"]["media_type"] == "image"
    assert set(pin["media"]["images"]) == {"150x150", "400x300", "600x", "1200x"}
    assert pin["media"]["images"]["600x"]["url"].startswith("https://i.pinimg.com/600x/")


async def test_pin_ids_are_unique_and_increasing(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """Successive creates get strictly increasing numeric ids."""
    ids = []
    for _ in range(3):
        _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
        ids.append(int(pin["id"]))
    assert ids == sorted(set(ids))
    assert len(sandbox.pins()) == 3


async def test_unknown_fields_are_ignored(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Fields outside PinCreate do not cause an error and are not echoed."""
    status, pin = await call(
        http, "POST", f"{sandbox.base_url}/pins", json=image_pin(publish_date="2030-01-01")
    )
    assert status == 201
    assert "publish_date" not in pin


async def test_get_pin_and_not_found(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """GET returns the created pin; an unknown id is 404 code 50, a non-numeric id is 400."""
    _, created = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    status, got = await call(http, "GET", f"{sandbox.base_url}/pins/{created['id']}")
    assert (status, got) == (200, created)
    status, err = await call(http, "GET", f"{sandbox.base_url}/pins/42")
    assert (status, err) == (404, {"code": 50, "message": "Pin not found."})
    status, err = await call(http, "GET", f"{sandbox.base_url}/pins/x1")
    assert status == 400
    assert err["code"] == 1
    assert err["message"].endswith("- 'pin_id'")


async def test_other_users_pin_is_forbidden(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Another user's pin answers 403 code 29 for GET, PATCH and DELETE."""
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    url = f"{sandbox.base_url}/pins/{pin['id']}"
    for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
        status, err = await call(http, method, url, token=BOB, json=body)
        assert status == 403
        assert err["code"] == 29
    assert len(sandbox.pins()) == 1


async def test_patch_updates_only_mutable_fields(
    sandbox: Sandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """PATCH changes texts and keeps id, created_at and media."""
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    await clock.advance(30)
    body = {"title": "New", "description": None, "link": "https://x.example/", "alt_text": "a"}
    status, updated = await call(http, "PATCH", f"{sandbox.base_url}/pins/{pin['id']}", json=body)
    assert status == 200
    assert updated["title"] == "New"
    assert updated["description"] is None
    assert updated["link"] == "https://x.example/"
    assert updated["created_at"] == pin["created_at"]
    assert updated["media"] == pin["media"]


async def test_patch_moves_pin_between_boards(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """Moving a pin updates both boards' pin_count and clears the old board's section."""
    body = image_pin(board_section_id="555")
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=body)
    url = f"{sandbox.base_url}/pins/{pin['id']}"
    status, moved = await call(http, "PATCH", url, json={"board_id": "112"})
    assert status == 200
    assert (moved["board_id"], moved["board_section_id"]) == ("112", None)
    _, old = await call(http, "GET", f"{sandbox.base_url}/boards/111")
    _, new = await call(http, "GET", f"{sandbox.base_url}/boards/112")
    assert (old["pin_count"], new["pin_count"]) == (0, 1)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"board_id": "999"}, 404, 40),
        ({"board_id": "123"}, 404, 40),
        ({"board_section_id": "777"}, 404, 2031),
        ({"title": "t" * 101}, 400, 1),
        ({"link": "mailto:a@b.c"}, 400, 1),
        ({"board_id": None}, 400, 1),
        ({"carousel_slots": [{"title": "x"}]}, 400, 1),
    ],
)
async def test_patch_rejections(
    sandbox: Sandbox, http: aiohttp.ClientSession, body: dict[str, Any], status: int, code: int
) -> None:
    """PATCH validates like create and refuses foreign boards and unknown sections."""
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    got_status, err = await call(http, "PATCH", f"{sandbox.base_url}/pins/{pin['id']}", json=body)
    assert (got_status, err["code"]) == (status, code)
    assert sandbox.pins()[0] == pin


async def test_patch_carousel_slots(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """carousel_slots rewrite the texts of a carousel's images in order."""
    items = [{"url": f"https://example.com/{i}.jpg", "title": f"t{i}"} for i in range(3)]
    body = image_pin(media_source={"source_type": "multiple_image_urls", "items": items})
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=body)
    slots = {"carousel_slots": [{"title": "new0", "link": "https://l.example/"}]}
    status, updated = await call(http, "PATCH", f"{sandbox.base_url}/pins/{pin['id']}", json=slots)
    assert status == 200
    titles = [item["title"] for item in updated["media"]["items"]]
    assert titles == ["new0", "t1", "t2"]
    assert updated["media"]["items"][0]["link"] == "https://l.example/"


async def test_delete_pin(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """DELETE answers 204 with an empty body, then 404 code 50."""
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    url = f"{sandbox.base_url}/pins/{pin['id']}"
    assert await call(http, "DELETE", url) == (204, None)
    assert await call(http, "DELETE", url) == (404, {"code": 50, "message": "Pin not found."})
    assert sandbox.pins() == []


async def test_board_id_pattern_message(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """A non-numeric board_id gets Pinterest's exact jsonschema-style message."""
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin("abc"))
    assert (status, err) == (400, {"code": 1, "message": DIGITS_MESSAGE})


def _carousel(n: int) -> dict[str, Any]:
    items = [{"url": f"https://example.com/{i}.jpg"} for i in range(n)]
    return {"source_type": "multiple_image_urls", "items": items}


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"title": "t" * 101}, "(constraint: maxLength=100) - 'title'"),
        ({"description": "d" * 801}, "(constraint: maxLength=800) - 'description'"),
        ({"link": "https://e.com/" + "l" * 2040}, "(constraint: maxLength=2048) - 'link'"),
        ({"alt_text": "a" * 501}, "(constraint: maxLength=500) - 'alt_text'"),
        ({"title": 5}, "5 is not of type 'string' - 'title'"),
        ({"board_section_id": "s1"}, "'s1' does not match '^\\d+$' - 'board_section_id'"),
        ({"parent_pin_id": "p"}, "'p' does not match '^\\d+$' - 'parent_pin_id'"),
        ({"board_id": None}, "None is not of type 'string' - 'board_id'"),
        ({"media_source": None}, "None is not of type 'object' - 'media_source'"),
        ({"media_source": {}}, "'source_type' is a required property - 'media_source'"),
        ({"media_source": {"source_type": "gif"}}, "'gif' is not one of"),
        ({"media_source": {"source_type": "image_url"}}, "'url' is a required property"),
        (
            {"media_source": {"source_type": "image_base64", "content_type": "image/gif"}},
            "'image/gif' is not one of ['image/jpeg', 'image/png']",
        ),
        (
            {
                "media_source": {
                    "source_type": "image_base64",
                    "content_type": "image/png",
                    "data": "not base64!",
                }
            },
            "'not base64!' does not match '^[a-zA-Z0-9+/=]+$' - 'media_source.data'",
        ),
        ({"media_source": _carousel(1)}, "(constraint: minItems=2) - 'media_source.items'"),
        ({"media_source": _carousel(6)}, "(constraint: maxItems=5) - 'media_source.items'"),
        (
            {"media_source": {**_carousel(2), "index": -1}},
            "-1 is less than the minimum of 0 - 'media_source.index'",
        ),
        (
            {"media_source": {"source_type": "multiple_image_urls", "items": [{}, {}]}},
            "'url' is a required property - 'media_source.items.0'",
        ),
        (
            {
                "media_source": {
                    "source_type": "multiple_image_base64",
                    "items": [{"content_type": "image/png", "data": "QUJD"}, {"data": "QUJD"}],
                }
            },
            "'content_type' is a required property - 'media_source.items.1'",
        ),
        (
            {"media_source": {"source_type": "video_id", "media_id": "v1"}},
            "'v1' does not match '^\\d+$' - 'media_source.media_id'",
        ),
        (
            {"media_source": {"source_type": "video_id", "media_id": "12"}},
            "cover_image_url or cover_image_content_type",
        ),
        (
            {
                "media_source": {
                    "source_type": "video_id",
                    "media_id": "12",
                    "cover_image_data": "QUJD",
                }
            },
            "cover_image_url or cover_image_content_type",
        ),
    ],
)
async def test_create_validation_errors(
    sandbox: Sandbox, http: aiohttp.ClientSession, changes: dict[str, Any], needle: str
) -> None:
    """Each invalid PinCreate is a 400 code 1 naming the field, and creates nothing."""
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin(**changes))
    assert status == 400
    assert err["code"] == 1
    assert err["message"].startswith("Invalid request: ")
    assert needle in err["message"]
    assert sandbox.pins() == []


@pytest.mark.parametrize("missing", ["board_id", "media_source"])
async def test_required_fields(sandbox: Sandbox, http: aiohttp.ClientSession, missing: str) -> None:
    """Leaving out board_id or media_source is a 400 naming the property."""
    body = image_pin()
    del body[missing]
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", json=body)
    assert (status, err["code"]) == (400, 1)
    assert f"'{missing}' is a required property" in err["message"]


async def test_body_must_be_json(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """A body that is not JSON is a 400 code 1."""
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", data=b"{nope")
    assert (status, err["code"]) == (400, 1)


@pytest.mark.parametrize(
    "changes",
    [
        {"link": "ftp://example.com/x"},
        {"link": "not a url"},
        {"media_source": {"source_type": "image_url", "url": "javascript:alert(1)"}},
        {"media_source": {"source_type": "multiple_image_urls", "items": [{"url": "a"}] * 2}},
        {
            "media_source": {
                "source_type": "video_id",
                "media_id": "12",
                "cover_image_url": "file:///etc/passwd",
            }
        },
    ],
)
async def test_non_http_urls_are_invalid(
    sandbox: Sandbox, http: aiohttp.ClientSession, changes: dict[str, Any]
) -> None:
    """A link or media URL that is not http(s) gets the "Whoops! … invalid URL" 400."""
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin(**changes))
    assert (status, err) == (400, {"code": 1, "message": INVALID_URL})


@pytest.mark.parametrize(
    ("media_source", "creative_type", "media_type"),
    [
        (
            {"source_type": "image_base64", "content_type": "image/png", "data": "QUJD"},
            "REGULAR",
            "image",
        ),
        (_carousel(2), "CAROUSEL", "multiple_images"),
        ({**_carousel(5), "index": 0}, "CAROUSEL", "multiple_images"),
        (
            {
                "source_type": "multiple_image_base64",
                "items": [{"content_type": "image/jpeg", "data": "QUJD"}] * 2,
            },
            "CAROUSEL",
            "multiple_images",
        ),
        (
            {"source_type": "video_id", "media_id": "1", "cover_image_url": "https://e.com/c.jpg"},
            "VIDEO",
            "video",
        ),
        (
            {"source_type": "video_id", "media_id": "1", "cover_image_key_frame_time": 3},
            "VIDEO",
            "video",
        ),
        (
            {
                "source_type": "video_id",
                "media_id": "1",
                "cover_image_content_type": "image/png",
                "cover_image_data": "QUJD",
            },
            "VIDEO",
            "video",
        ),
    ],
)
async def test_media_variants(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    media_source: dict[str, Any],
    creative_type: str,
    media_type: str,
) -> None:
    """Every supported media_source variant creates a pin with the matching creative type."""
    sandbox.state.media.add("alice", "1", sandbox.now(), status="succeeded")
    body = image_pin(media_source=media_source)
    status, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=body)
    assert status == 201
    assert pin["creative_type"] == creative_type
    assert pin["media"]["media_type"] == media_type


@pytest.mark.parametrize("board_id", ["999", "123"])
async def test_board_not_owned_or_missing(
    sandbox: Sandbox, http: aiohttp.ClientSession, board_id: str
) -> None:
    """Creating on bob's board or a nonexistent board is 404 code 40."""
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin(board_id))
    assert (status, err) == (404, {"code": 40, "message": "Board not found."})
    assert sandbox.pins() == []


async def test_board_sections(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """A section on the board is accepted; one elsewhere is 404 code 2031."""
    sandbox.add_section("112", "666")
    status, pin = await call(
        http, "POST", f"{sandbox.base_url}/pins", json=image_pin(board_section_id="555")
    )
    assert (status, pin["board_section_id"]) == (201, "555")
    status, err = await call(
        http, "POST", f"{sandbox.base_url}/pins", json=image_pin(board_section_id="666")
    )
    assert (status, err) == (
        404,
        {"code": 2031, "message": "Sorry! We couldn't find this board section."},
    )
    status, page = await call(http, "GET", f"{sandbox.base_url}/boards/111/sections")
    assert (status, page) == (
        200,
        {"items": [{"id": "555", "name": "Section 555"}], "bookmark": None},
    )


@pytest.mark.parametrize(
    ("word", "status", "code", "message"),
    [
        (
            "sandbox-too-small",
            403,
            233,
            "Your image is too small. Please choose a larger image and try again.",
        ),
        ("sandbox-broken", 403, 235, "Sorry, this image is broken. Please pick a different image."),
        ("sandbox-unfetchable", 400, 1, "Sorry we could not fetch the image."),
    ],
)
async def test_magic_image_urls(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    word: str,
    status: int,
    code: int,
    message: str,
) -> None:
    """Magic words in an image URL reproduce Pinterest's media errors without creating a pin."""
    media = {"source_type": "image_url", "url": f"https://cdn.example/{word}/a.jpg"}
    got_status, err = await call(
        http, "POST", f"{sandbox.base_url}/pins", json=image_pin(media_source=media)
    )
    assert (got_status, err) == (status, {"code": code, "message": message})
    assert sandbox.pins() == []


async def test_board_pins_paging(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Three pages with a bookmark cover every pin once, newest first, sections included."""
    created = []
    for i in range(7):
        extra = {"board_section_id": "555"} if i == 3 else {}
        _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin(**extra))
        created.append(pin["id"])
    await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin("112"))
    seen: list[str] = []
    sizes = []
    bookmark: str | None = None
    for _ in range(3):
        query = f"?page_size=3&bookmark={bookmark}" if bookmark else "?page_size=3"
        status, page = await call(http, "GET", f"{sandbox.base_url}/boards/111/pins{query}")
        assert status == 200
        sizes.append(len(page["items"]))
        seen += [p["id"] for p in page["items"]]
        bookmark = page["bookmark"]
    assert sizes == [3, 3, 1]
    assert bookmark is None
    assert seen == list(reversed(created))


async def test_paging_is_stable_under_new_pins(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A pin created between pages neither duplicates nor hides older pins."""
    for _ in range(4):
        await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    _, first = await call(http, "GET", f"{sandbox.base_url}/boards/111/pins?page_size=2")
    await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    url = f"{sandbox.base_url}/boards/111/pins?page_size=2&bookmark={first['bookmark']}"
    _, second = await call(http, "GET", url)
    ids = [p["id"] for p in first["items"] + second["items"]]
    assert len(set(ids)) == 4
    assert second["bookmark"] is None


@pytest.mark.parametrize("query", ["page_size=0", "page_size=251", "page_size=ten", "bookmark=zz"])
async def test_board_pins_bad_query(
    sandbox: Sandbox, http: aiohttp.ClientSession, query: str
) -> None:
    """page_size outside 1..250, a non-integer or a forged bookmark is a 400 code 1."""
    status, err = await call(http, "GET", f"{sandbox.base_url}/boards/111/pins?{query}")
    assert (status, err["code"]) == (400, 1)


async def test_board_pins_default_page_and_foreign_board(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """page_size defaults to 25 and listing bob's board is 404 code 40."""
    for _ in range(26):
        await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    _, page = await call(http, "GET", f"{sandbox.base_url}/boards/111/pins")
    assert len(page["items"]) == 25
    assert page["bookmark"] is not None
    status, err = await call(http, "GET", f"{sandbox.base_url}/boards/999/pins")
    assert (status, err["code"]) == (404, 40)


async def test_board_counters_follow_pins(
    sandbox: Sandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """pin_count and board_pins_modified_at move on create and delete."""
    _, before = await call(http, "GET", f"{sandbox.base_url}/boards/111")
    assert before["pin_count"] == 0
    assert before["owner"] == {"username": "alice"}
    assert before["privacy"] == "PUBLIC"
    await clock.advance(90)
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", json=image_pin())
    _, after = await call(http, "GET", f"{sandbox.base_url}/boards/111")
    assert after["pin_count"] == 1
    assert after["board_pins_modified_at"] == pin["created_at"] == "2026-11-25T14:01:33"
    assert after["created_at"] == before["created_at"]
    await clock.advance(60)
    await call(http, "DELETE", f"{sandbox.base_url}/pins/{pin['id']}")
    _, gone = await call(http, "GET", f"{sandbox.base_url}/boards/111")
    assert (gone["pin_count"], gone["board_pins_modified_at"]) == (0, "2026-11-25T14:02:33")


async def test_boards_list_and_create(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Boards are listed with bookmark paging; POST /boards needs a name and returns the board."""
    status, err = await call(http, "POST", f"{sandbox.base_url}/boards", json={})
    assert (status, err["code"]) == (400, 1)
    status, board = await call(
        http, "POST", f"{sandbox.base_url}/boards", json={"name": "Recipes", "privacy": "SECRET"}
    )
    assert status == 201
    assert (board["name"], board["privacy"], board["pin_count"]) == ("Recipes", "SECRET", 0)
    assert board["id"].isdigit()
    _, first = await call(http, "GET", f"{sandbox.base_url}/boards?page_size=2")
    _, rest = await call(
        http, "GET", f"{sandbox.base_url}/boards?page_size=2&bookmark={first['bookmark']}"
    )
    ids = [b["id"] for b in first["items"] + rest["items"]]
    assert ids == ["111", "112", board["id"]]
    assert rest["bookmark"] is None
    status, _ = await call(http, "GET", f"{sandbox.base_url}/boards/{board['id']}", token=BOB)
    assert status == 404


async def test_user_account(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """GET /user_account names the token's user."""
    status, account = await call(http, "GET", f"{sandbox.base_url}/user_account", token=BOB)
    assert status == 200
    assert account["username"] == "bob"
    assert account["account_type"] in ("PINNER", "BUSINESS")
    assert account["board_count"] == 1


async def test_unknown_route_is_json_404(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """An unknown /v5 route answers a JSON error, not HTML."""
    status, err = await call(http, "GET", f"{sandbox.base_url}/ad_accounts")
    assert status == 404
    assert set(err) == {"code", "message"}
