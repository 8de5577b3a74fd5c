"""The sandbox learns Pinterest's token lifetimes, a Trial app's refusal and strict ids: over
real HTTP on loopback, through the v5 API, the admin API and the command line."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from pinsched.sandbox import FaultRule, Sandbox
from pinsched.testing import FakeClock
from tests.integration.sandbox.conftest import admin, cli_args, send

PIN = {
    "board_id": "111",
    "media_source": {"source_type": "image_url", "url": "https://example.com/a.jpg"},
}


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A started sandbox on *clock*: alice (tok-a, ref-a) owns board 111; client app/secret."""
    sb = Sandbox(now=clock.now)
    await sb.start()
    sb.add_user("alice", access_token="tok-a", refresh_token="ref-a", board_ids=["111"])
    sb.set_client("app", "secret")
    try:
        yield sb
    finally:
        await sb.stop()


async def refresh(
    http: aiohttp.ClientSession, sandbox: Sandbox, token: str
) -> tuple[int, dict[str, object]]:
    basic = base64.b64encode(b"app:secret").decode()
    async with http.post(
        f"{sandbox.base_url}/oauth/token",
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "refresh_token", "refresh_token": token},
    ) as resp:
        return resp.status, await resp.json()


async def test_short_lifetimes_are_issued_and_enforced(
    sandbox: Sandbox, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """With lifetimes of 30 s and 90 s set through the admin API, a refresh answers them (both
    refresh fields), and the tokens stop working when they run out on the sandbox clock."""
    status, answer = await send(
        http,
        "POST",
        admin(sandbox, "settings"),
        {"access_token_ttl_s": 30, "refresh_token_ttl_s": 90},
    )
    assert status == 200
    assert (answer["access_token_ttl_s"], answer["refresh_token_ttl_s"]) == (30, 90)
    status, body = await refresh(http, sandbox, "ref-a")
    assert status == 200
    assert (body["expires_in"], body["refresh_token_expires_in"]) == (30, 90)
    assert body["refresh_token_expires_at"] == int(
        (clock.now() + timedelta(seconds=90)).timestamp()
    )
    access, rotated = str(body["access_token"]), str(body["refresh_token"])
    assert (await send(http, "GET", f"{sandbox.base_url}/user_account", token=access))[0] == 200
    await clock.advance(30)
    assert (await send(http, "GET", f"{sandbox.base_url}/user_account", token=access))[0] == 401
    await clock.advance(60)
    assert (await refresh(http, sandbox, rotated))[0] == 400


async def test_trial_app_mode_refuses_pin_writes_with_code_29(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """In Trial-app mode a pin create is 403 code 29 with Pinterest's message, and creates
    nothing; reads still work; turning it off lets the create through."""
    sandbox.configure(trial_app=True)
    status, body = await send(http, "POST", f"{sandbox.base_url}/pins", PIN, token="tok-a")
    assert status == 403
    assert body["code"] == 29
    assert body["message"].startswith("Apps with Trial access may not create Pins in production")
    assert sandbox.pins() == []
    assert (await send(http, "GET", f"{sandbox.base_url}/boards/111", token="tok-a"))[0] == 200
    status, answer = await send(http, "POST", admin(sandbox, "settings"), {"trial_app": False})
    assert (status, answer["trial_app"]) == (200, False)
    assert (await send(http, "POST", f"{sandbox.base_url}/pins", PIN, token="tok-a"))[0] == 201


@pytest.mark.parametrize("board_id", ["111\n", "\u0661\u0661\u0661", "111 ", ""])
async def test_ids_are_matched_strictly(
    sandbox: Sandbox, http: aiohttp.ClientSession, board_id: str
) -> None:
    """An id with a trailing newline, non-ASCII digits or a space is not `^\\d+$`: 400."""
    status, body = await send(
        http, "POST", f"{sandbox.base_url}/pins", {**PIN, "board_id": board_id}, token="tok-a"
    )
    assert status == 400
    assert "does not match" in body["message"]


async def test_rate_limit_headers_only_when_asked(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A 429 fault carries no x-ratelimit-* headers unless it is given a retry_after_s."""
    sandbox.add_fault(FaultRule(kind="rate_limit", times=1))
    async with http.post(
        f"{sandbox.base_url}/pins", json=PIN, headers={"Authorization": "Bearer tok-a"}
    ) as resp:
        assert resp.status == 429
        assert not [h for h in resp.headers if h.lower().startswith("x-ratelimit")]
    sandbox.add_fault(FaultRule(kind="rate_limit", times=1, retry_after_s=7))
    async with http.post(
        f"{sandbox.base_url}/pins", json=PIN, headers={"Authorization": "Bearer tok-a"}
    ) as resp:
        assert resp.headers["x-ratelimit-remaining"] == "0"
        assert resp.headers["x-ratelimit-reset"] == "7"


@pytest.mark.parametrize(
    "body",
    [
        {"access_token_ttl_s": 0},
        {"refresh_token_ttl_s": "90"},
        {"trial_app": "yes"},
        {"access_token_ttl_s": True},
        {"lifetime": 5},
    ],
)
async def test_bad_settings_are_400_and_change_nothing(
    sandbox: Sandbox, http: aiohttp.ClientSession, body: dict[str, object]
) -> None:
    """Bad admin settings are a 400 naming the problem; the lifetimes stay as they were."""
    status, answer = await send(http, "POST", admin(sandbox, "settings"), body)
    assert status == 400
    assert answer["error"]
    assert (sandbox.state.access_ttl_s, sandbox.state.refresh_ttl_s) == (30 * 86400, 60 * 86400)
    assert not sandbox.state.trial_app


def test_cli_lifetime_and_trial_flags() -> None:
    """`--access-token-ttl`, `--refresh-token-ttl` and `--trial-app` parse; a non-positive or
    non-numeric lifetime is an argparse error."""
    args = cli_args("--access-token-ttl", "30", "--refresh-token-ttl", "90", "--trial-app")
    assert (args.access_token_ttl, args.refresh_token_ttl, args.trial_app) == (30, 90, True)
    for argv in (["--access-token-ttl", "0"], ["--refresh-token-ttl", "soon"]):
        with pytest.raises(SystemExit):
            cli_args(*argv)
