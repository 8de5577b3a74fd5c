"""Integration tests for sandbox authentication, OAuth refresh, rate limiting and request log."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from pinsched.sandbox import Sandbox
from pinsched.testing import FakeClock

ALICE = "tok-alice"


def basic(client_id: str, secret: str) -> dict[str, str]:
    """Return an ``Authorization: Basic`` header for OAuth client credentials."""
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


CLIENT = basic("app-id", "app-secret")
CLOCK_START = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)
AUTH_FAILED = {"code": 2, "message": "Authentication failed."}
PIN = {
    "board_id": "111",
    "media_source": {"source_type": "image_url", "url": "https://example.com/a.jpg"},
}


async def _started(clock: FakeClock, write_limit: int) -> Sandbox:
    sb = Sandbox(now=clock.now, write_limit_per_minute=write_limit)
    sb.add_user("alice", access_token=ALICE, refresh_token="ref-alice", board_ids=["111"])
    sb.add_user("bob", access_token="tok-bob", board_ids=["999"])
    sb.set_client("app-id", "app-secret")
    await sb.start()
    return sb


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A started sandbox with OAuth client app-id/app-secret and no rate limit."""
    sb = await _started(clock, 0)
    try:
        yield sb
    finally:
        await sb.stop()


@pytest.fixture
async def limited(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A started sandbox allowing 3 pin writes per user per sliding minute."""
    sb = await _started(clock, 3)
    try:
        yield sb
    finally:
        await sb.stop()


def bearer(token: str) -> dict[str, str]:
    """Return a bearer Authorization header."""
    return {"Authorization": f"Bearer {token}"}


async def refresh(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    token: str,
    auth: dict[str, str] = CLIENT,
    **extra: str,
) -> tuple[int, Any]:
    """POST /oauth/token with the refresh_token grant."""
    form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    async with http.post(f"{sandbox.base_url}/oauth/token", data=form, headers=auth) as resp:
        assert resp.headers["x-pinterest-rid"]
        return resp.status, await resp.json()


async def test_refresh_rotates_refresh_token(
    sandbox: Sandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A refresh returns new tokens; the old refresh token then fails, the new one works."""
    status, body = await refresh(http, sandbox, "ref-alice", continuous_refresh="true")
    assert status == 200
    assert body["token_type"] == "bearer"
    assert body["response_type"] == "refresh_token"
    assert body["expires_in"] == 2592000
    assert body["refresh_token_expires_in"] == 60 * 86400
    assert body["refresh_token_expires_at"] == int(clock.now().timestamp()) + 60 * 86400
    assert "pins:write" in body["scope"]
    assert body["refresh_token"] != "ref-alice"
    assert body["access_token"] != ALICE
    async with http.get(
        f"{sandbox.base_url}/user_account", headers=bearer(body["access_token"])
    ) as r:
        assert (r.status, (await r.json())["username"]) == (200, "alice")
    status, err = await refresh(http, sandbox, "ref-alice")
    assert (status, err) == (400, {"code": 1, "message": "Invalid refresh token."})
    status, again = await refresh(http, sandbox, body["refresh_token"])
    assert status == 200
    assert again["refresh_token"] != body["refresh_token"]


async def test_old_access_token_survives_refresh(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """The access token issued before a refresh stays valid until its own expiry."""
    await refresh(http, sandbox, "ref-alice")
    async with http.get(f"{sandbox.base_url}/user_account", headers=bearer(ALICE)) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    "auth", [basic("app-id", "wrong"), basic("other", "app-secret"), {}, {"Authorization": "Basic"}]
)
async def test_refresh_needs_client_credentials(
    sandbox: Sandbox, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    """Wrong or missing Basic credentials are 401 code 2 and do not consume the token."""
    assert await refresh(http, sandbox, "ref-alice", auth=auth) == (401, AUTH_FAILED)
    status, _ = await refresh(http, sandbox, "ref-alice")
    assert status == 200


async def test_refresh_rejects_revoked_and_unknown_tokens(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A revoked or unknown refresh token is a 400 code 1."""
    sandbox.revoke_refresh_token("ref-alice")
    assert (await refresh(http, sandbox, "ref-alice"))[0] == 400
    assert (await refresh(http, sandbox, "never-issued"))[0] == 400


async def test_refresh_form_errors(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """A missing or unsupported grant_type is a 400 code 1."""
    url = f"{sandbox.base_url}/oauth/token"
    for form in ({}, {"grant_type": "authorization_code", "code": "c"}, {"grant_type": "x"}):
        async with http.post(url, data=form, headers=CLIENT) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == 1


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("nope"), {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "}],
)
async def test_bad_bearer_is_401(
    sandbox: Sandbox, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """Missing, unknown or non-bearer credentials are 401 code 2 on every /v5 route."""
    for method, path in (("POST", "/pins"), ("GET", "/boards"), ("GET", "/pins/1")):
        async with http.request(
            method, f"{sandbox.base_url}{path}", headers=headers, json=PIN
        ) as resp:
            assert (resp.status, await resp.json()) == (401, AUTH_FAILED)
    assert sandbox.pins() == []


async def test_expired_access_token(
    sandbox: Sandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A token expired by the clock or by expire_access_token is refused with 401."""
    sandbox.add_user("carol", access_token="short", access_expires_in_s=60)
    url = f"{sandbox.base_url}/user_account"
    async with http.get(url, headers=bearer("short")) as resp:
        assert resp.status == 200
    await clock.advance(60)
    async with http.get(url, headers=bearer("short")) as resp:
        assert (resp.status, await resp.json()) == (401, AUTH_FAILED)
    sandbox.expire_access_token(ALICE)
    async with http.post(f"{sandbox.base_url}/pins", headers=bearer(ALICE), json=PIN) as resp:
        assert resp.status == 401
    assert sandbox.pins() == []


async def test_write_rate_limit(
    limited: Sandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """The 4th pin write in a minute is 429 code 8 with rate-limit headers; reads are free."""
    remaining = []
    for _ in range(3):
        async with http.post(f"{limited.base_url}/pins", headers=bearer(ALICE), json=PIN) as r:
            assert r.status == 201
            assert r.headers["x-ratelimit-limit"] == "3"
            remaining.append(r.headers["x-ratelimit-remaining"])
        await clock.advance(10)
    assert remaining == ["2", "1", "0"]
    async with http.post(f"{limited.base_url}/pins", headers=bearer(ALICE), json=PIN) as r:
        assert r.status == 429
        body = await r.json()
        assert body["code"] == 8
        assert body["message"].startswith("This request exceeded a rate limit.")
        assert r.headers["Retry-After"] == r.headers["x-ratelimit-reset"] == "30"
        assert r.headers["x-ratelimit-remaining"] == "0"
    assert len(limited.pins()) == 3
    async with http.get(f"{limited.base_url}/boards/111/pins", headers=bearer(ALICE)) as r:
        assert r.status == 200
    async with http.post(f"{limited.base_url}/pins", headers=bearer("tok-bob"), json=PIN) as r:
        assert r.status == 404  # bob has his own budget; board 111 is not his
    await clock.advance(30)
    async with http.post(f"{limited.base_url}/pins", headers=bearer(ALICE), json=PIN) as r:
        assert r.status == 201


async def test_patch_and_delete_share_the_write_budget(
    limited: Sandbox, http: aiohttp.ClientSession
) -> None:
    """POST, PATCH and DELETE on pins draw on one org_write budget."""
    async with http.post(f"{limited.base_url}/pins", headers=bearer(ALICE), json=PIN) as r:
        pin_id = (await r.json())["id"]
    url = f"{limited.base_url}/pins/{pin_id}"
    async with http.patch(url, headers=bearer(ALICE), json={"title": "t"}) as r:
        assert r.status == 200
    async with http.delete(url, headers=bearer(ALICE)) as r:
        assert r.status == 204
    async with http.delete(url, headers=bearer(ALICE)) as r:
        assert r.status == 429


async def test_every_response_has_request_id(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """x-pinterest-rid is on successes, errors and admin responses, and differs per request."""
    rids = set()
    for url, headers in (
        (f"{sandbox.base_url}/user_account", bearer(ALICE)),
        (f"{sandbox.base_url}/user_account", {}),
        (f"{sandbox.base_url}/nowhere", bearer(ALICE)),
        (sandbox.base_url.removesuffix("/v5") + "/_admin/requests", {}),
    ):
        async with http.get(url, headers=headers) as resp:
            rids.add(resp.headers["x-pinterest-rid"])
    assert len(rids) == 4


async def test_request_log(sandbox: Sandbox, http: aiohttp.ClientSession, clock: FakeClock) -> None:
    """Every /v5 request is logged with method, path, user, status and arrival time."""
    async with http.post(f"{sandbox.base_url}/pins", headers=bearer(ALICE), json=PIN):
        pass
    await clock.advance(5)
    async with http.get(f"{sandbox.base_url}/boards", headers=bearer("bad")):
        pass
    first, second = sandbox.requests
    assert (first.method, first.path, first.username, first.status) == (
        "POST",
        "/v5/pins",
        "alice",
        201,
    )
    assert (second.method, second.username, second.status) == ("GET", None, 401)
    assert second.time - first.time == timedelta(seconds=5)
    assert first.request_id != second.request_id
