"""The sandbox's video media over real HTTP: `POST /v5/media`, the loopback upload target,
`GET /v5/media/{id}` with processing on the sandbox clock (and failing on demand), pins refused
while their video is not processed; responses checked against Pinterest's official description,
and the bad input of every route, admin setting and flag."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import yaml  # type: ignore[import-untyped]

from pinsched.sandbox import Sandbox
from pinsched.sandbox.cli import build_sandbox
from pinsched.testing import FakeClock
from tests.integration.sandbox.conftest import cli_args

AUTH = {"Authorization": "Bearer tok-alice"}
SPEC = Path(__file__).resolve().parents[4] / "shared" / "pinterest" / "openapi-v5.yaml"


@functools.cache
def _components() -> dict[str, Any]:
    with SPEC.open() as f:
        spec = yaml.safe_load(f)
    return {"components": {"schemas": spec["components"]["schemas"]}}


def check_schema(instance: Any, name: str) -> None:
    """Validate *instance* against the official schema *name* (components/schemas)."""
    if not SPEC.exists():
        pytest.skip("the official API description is not beside the project")
    jsonschema.validate(instance, {**_components(), "$ref": f"#/components/schemas/{name}"})


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A started sandbox on *clock*: alice owns board 111, bob board 222; processing takes 300 s."""
    sb = Sandbox(now=clock.now)
    sb.add_user("alice", access_token="tok-alice", board_ids=["111"])
    sb.add_user("bob", access_token="tok-bob", board_ids=["222"])
    sb.state.media.configure(processing_s=300)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.request(
        method, url, json=body, headers=AUTH if headers is None else headers
    ) as resp:
        text = await resp.text()
        return resp.status, (await resp.json(content_type=None) if text else None)


async def upload(
    http: aiohttp.ClientSession,
    registered: dict[str, Any],
    data: bytes = b"vid",
    **override: str | None,
) -> tuple[int, str]:
    """POST the form Pinterest describes to `upload_url`: every upload parameter plus `file`."""
    form = aiohttp.FormData(default_to_multipart=True)
    for key, value in {**registered["upload_parameters"], **override}.items():
        if value is not None:
            form.add_field(key, value)
    if data:
        form.add_field("file", data, filename="v.mp4", content_type="video/mp4")
    async with http.post(registered["upload_url"], data=form) as resp:
        return resp.status, await resp.text()


def admin(sandbox: Sandbox, path: str = "/_admin/media") -> str:
    """The URL of a loopback-only route of *sandbox*."""
    return sandbox.base_url.removesuffix("/v5") + path


def video_pin(media_id: str) -> dict[str, Any]:
    return {
        "board_id": "111",
        "media_source": {
            "source_type": "video_id",
            "media_id": media_id,
            "cover_image_key_frame_time": 1,
        },
    }


async def test_register_upload_process_and_pin(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    clock: FakeClock,
) -> None:
    """A video goes registered → processing → succeeded on the sandbox clock, every answer
    matches the official schemas, and a pin can use it only once it succeeded."""
    base = sandbox.base_url
    status, reg = await call(http, "POST", f"{base}/media", {"media_type": "video"})
    assert status == 201
    check_schema(reg, "MediaUpload")
    assert reg["upload_url"].startswith("http://127.0.0.1:")
    _, media = await call(http, "GET", f"{base}/media/{reg['media_id']}")
    check_schema(media, "Media")
    assert media["status"] == "registered"
    assert (await upload(http, reg))[0] == 204
    _, media = await call(http, "GET", f"{base}/media/{reg['media_id']}")
    assert media["status"] == "processing"
    status, err = await call(http, "POST", f"{base}/pins", video_pin(reg["media_id"]))
    assert status == 400
    assert "processing" in err["message"]
    assert err["code"] == 1
    await clock.advance(300)
    _, media = await call(http, "GET", f"{base}/media/{reg['media_id']}")
    assert media["status"] == "succeeded"
    status, listed = await call(http, "GET", f"{base}/media")
    assert status == 200
    assert [m["media_id"] for m in listed["items"]] == [reg["media_id"]]
    status, pin = await call(http, "POST", f"{base}/pins", video_pin(reg["media_id"]))
    assert status == 201
    assert pin["media"]["media_type"] == "video"
    assert sandbox.state.media.uploads == [reg["media_id"]]


async def test_processing_can_be_made_to_fail(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    clock: FakeClock,
) -> None:
    """With failing switched on through the admin API, processing ends `failed` and the video
    cannot make a pin; the admin view shows it."""
    status, settings = await call(
        http, "POST", admin(sandbox), {"fail": True, "processing_s": 10}, headers={}
    )
    assert status == 200
    assert settings["fail"] is True
    assert settings["processing_s"] == 10
    _, reg = await call(http, "POST", f"{sandbox.base_url}/media", {"media_type": "video"})
    await upload(http, reg)
    await clock.advance(10)
    _, media = await call(http, "GET", f"{sandbox.base_url}/media/{reg['media_id']}")
    assert media["status"] == "failed"
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", video_pin(reg["media_id"]))
    assert status == 400
    assert "failed" in err["message"]
    _, view = await call(http, "GET", admin(sandbox), headers={})
    assert view["items"][0]["status"] == "failed"
    assert view["uploads"] == [reg["media_id"]]


async def test_other_users_media_is_not_found(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
) -> None:
    """Bob cannot read alice's media (404) nor pin it (400), and a pin with an unknown media
    id is refused."""
    _, reg = await call(http, "POST", f"{sandbox.base_url}/media", {"media_type": "video"})
    bob = {"Authorization": "Bearer tok-bob"}
    status, _ = await call(http, "GET", f"{sandbox.base_url}/media/{reg['media_id']}", headers=bob)
    assert status == 404
    status, err = await call(http, "POST", f"{sandbox.base_url}/pins", video_pin("777"))
    assert status == 400
    assert "not found" in err["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "'media_type' is a required property"),
        ({"media_type": "image"}, "'image' is not one of ['video'] - 'media_type'"),
        ([], "is not of type 'object'"),
    ],
)
async def test_bad_registrations(
    sandbox: Sandbox, http: aiohttp.ClientSession, body: Any, needle: str
) -> None:
    """A registration without a valid media_type is Pinterest's 400 code 1 naming the field."""
    status, err = await call(http, "POST", f"{sandbox.base_url}/media", body)
    assert status == 400
    assert err["code"] == 1
    assert needle in err["message"]


async def test_bad_media_id_and_no_token(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """A non-digit media id is a 400 naming media_id; no bearer token is a 401."""
    status, err = await call(http, "GET", f"{sandbox.base_url}/media/abc")
    assert status == 400
    assert "'media_id'" in err["message"]
    status, _ = await call(
        http, "POST", f"{sandbox.base_url}/media", {"media_type": "video"}, headers={}
    )
    assert status == 401


@pytest.mark.parametrize(
    ("override", "data", "status", "needle"),
    [
        ({"key": "uploads/nope"}, b"v", 400, "'key'"),
        ({"key": None}, b"v", 400, "'key'"),
        ({"policy": "forged"}, b"v", 400, "'policy'"),
        ({}, b"", 400, "'file'"),
    ],
)
async def test_bad_uploads(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    override: dict[str, str | None],
    data: bytes,
    status: int,
    needle: str,
) -> None:
    """An upload with a wrong key or policy, or without a file, is a 400 saying which, and
    nothing is uploaded."""
    _, reg = await call(http, "POST", f"{sandbox.base_url}/media", {"media_type": "video"})
    got, text = await upload(http, reg, data, **override)
    assert (got, needle in text) == (status, True)
    assert sandbox.state.media.uploads == []


async def test_second_upload_conflicts(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Uploading twice to one registration is a 409; the first upload stands."""
    _, reg = await call(http, "POST", f"{sandbox.base_url}/media", {"media_type": "video"})
    assert (await upload(http, reg))[0] == 204
    assert (await upload(http, reg, b"other"))[0] == 409
    assert sandbox.state.media.uploads == [reg["media_id"]]


async def test_upload_must_be_multipart(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """A raw-body upload is a 400."""
    async with http.post(admin(sandbox, "/_upload/media"), data=b"x") as resp:
        assert resp.status == 400
        assert "multipart" in await resp.text()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"processing_s": -1}, "'processing_s'"),
        ({"processing_s": "soon"}, "'processing_s'"),
        ({"fail": "yes"}, "'fail'"),
        ({"colour": 1}, "unknown media settings"),
        ({"seed": {"username": "alice", "media_id": "9", "status": "done"}}, "'status'"),
        ({"seed": {"username": "alice", "media_id": "x9"}}, "'media_id'"),
        ({"seed": "9"}, "'seed'"),
    ],
)
async def test_bad_admin_media_settings(
    sandbox: Sandbox, http: aiohttp.ClientSession, body: dict[str, Any], needle: str
) -> None:
    """Bad admin media settings are a 400 naming the setting, and change nothing."""
    status, err = await call(http, "POST", admin(sandbox), body, headers={})
    assert status == 400
    assert needle in err["error"]
    assert (sandbox.state.media.processing_s, sandbox.state.media.fail) == (300, False)


def test_media_flags_configure_processing() -> None:
    """`--media-processing-s` and `--media-fail` configure the sandbox they build."""
    book = build_sandbox(cli_args("--media-processing-s", "90", "--media-fail")).state.media
    assert (book.processing_s, book.fail) == (90.0, True)


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_bad_media_flag_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --media-processing-s exits 2 naming the flag."""
    with pytest.raises(SystemExit) as exc:
        cli_args("--media-processing-s", value)
    assert exc.value.code == 2
    assert "--media-processing-s" in capsys.readouterr().err
