"""Integration tests for the sandbox's admin API, waiting helper and command line."""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pinsched.sandbox import FaultRule, Sandbox
from pinsched.sandbox.cli import build_sandbox, run
from tests.integration.sandbox.conftest import admin, cli_args, send

PIN = {
    "board_id": "111",
    "media_source": {"source_type": "image_url", "url": "https://example.com/a.jpg"},
}
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A started, empty sandbox."""
    sb = Sandbox()
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


async def seed_alice(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    """Create alice (token tok-a, refresh ref-a) with board 111 through the admin API."""
    user = {"username": "alice", "access_token": "tok-a", "refresh_token": "ref-a"}
    assert await send(http, "POST", admin(sandbox, "users"), {**user, "boards": ["111"]}) == (
        201,
        {"username": "alice"},
    )


async def test_admin_seeds_users_boards_and_sections(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """Users, boards and sections created via /_admin are usable through the v5 API."""
    await seed_alice(http, sandbox)
    status, board = await send(
        http,
        "POST",
        admin(sandbox, "boards"),
        {"username": "alice", "board_id": "222", "name": "Two", "sections": ["9"]},
    )
    assert (status, board["sections"]) == (201, ["9"])
    status, _ = await send(
        http, "POST", admin(sandbox, "sections"), {"board_id": "111", "section_id": "8"}
    )
    assert status == 201
    status, pin = await send(
        http, "POST", f"{sandbox.base_url}/pins", {**PIN, "board_section_id": "8"}, "tok-a"
    )
    assert (status, pin["board_section_id"]) == (201, "8")
    status, page = await send(http, "GET", f"{sandbox.base_url}/boards", token="tok-a")
    assert [b["name"] for b in page["items"]] == ["Board 111", "Two"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("users", {"username": "x"}),
        ("users", {"username": "x", "access_token": "t", "boards": "111"}),
        ("boards", {"username": "ghost", "board_id": "1"}),
        ("boards", ["not", "an", "object"]),
        ("faults", {"kind": "status", "colour": "red"}),
        ("faults", {"kind": "bogus"}),
        ("clients", {"client_id": "only"}),
    ],
)
async def test_admin_rejects_bad_input(
    sandbox: Sandbox, http: aiohttp.ClientSession, path: str, body: Any
) -> None:
    """Malformed admin requests are a 400 with an error text."""
    status, err = await send(http, "POST", admin(sandbox, path), body)
    assert status == 400
    assert err["error"]


async def test_admin_faults_roundtrip(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Faults can be added, listed with their remaining count, applied and cleared over HTTP."""
    await seed_alice(http, sandbox)
    rule = {"kind": "status", "status": 502, "times": 2}
    status, created = await send(http, "POST", admin(sandbox, "faults"), rule)
    assert (status, created["kind"], created["method"]) == (201, "status", "POST")
    _, listed = await send(http, "GET", admin(sandbox, "faults"))
    assert [(f["status"], f["remaining"]) for f in listed["items"]] == [(502, 2)]
    assert (await send(http, "POST", f"{sandbox.base_url}/pins", PIN, "tok-a"))[0] == 502
    _, listed = await send(http, "GET", admin(sandbox, "faults"))
    assert listed["items"][0]["remaining"] == 1
    assert await send(http, "DELETE", admin(sandbox, "faults")) == (204, None)
    assert (await send(http, "POST", f"{sandbox.base_url}/pins", PIN, "tok-a"))[0] == 201


async def test_admin_tokens_and_clients(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Admin can register an OAuth client, expire an access token and revoke a refresh token."""
    await seed_alice(http, sandbox)
    body = {"client_id": "cid", "client_secret": "sec"}
    assert await send(http, "POST", admin(sandbox, "clients"), body) == (204, None)
    basic = base64.b64encode(b"cid:sec").decode()
    form = {"grant_type": "refresh_token", "refresh_token": "ref-a"}
    async with http.post(
        f"{sandbox.base_url}/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"}
    ) as resp:
        assert resp.status == 200
        new_refresh = (await resp.json())["refresh_token"]
    expire = {"access_token": "tok-a"}
    assert await send(http, "POST", admin(sandbox, "tokens/expire"), expire) == (204, None)
    assert (await send(http, "GET", f"{sandbox.base_url}/user_account", token="tok-a"))[0] == 401
    revoke = {"refresh_token": new_refresh}
    assert await send(http, "POST", admin(sandbox, "tokens/revoke"), revoke) == (204, None)
    assert new_refresh not in sandbox.state.refresh_tokens
    status, _ = await send(http, "POST", admin(sandbox, "tokens/expire"), {"access_token": "?"})
    assert status == 404


async def test_admin_pins_requests_and_reset(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """Admin lists pins with their owner, the request log, and reset forgets everything."""
    await seed_alice(http, sandbox)
    sandbox.add_board("alice", "112")
    await send(http, "POST", f"{sandbox.base_url}/pins", PIN, "tok-a")
    await send(http, "POST", f"{sandbox.base_url}/pins", {**PIN, "board_id": "112"}, "tok-a")
    _, pins = await send(http, "GET", admin(sandbox, "pins"))
    assert [(p["owner"], p["board_id"]) for p in pins["items"]] == [
        ("alice", "111"),
        ("alice", "112"),
    ]
    _, only = await send(http, "GET", admin(sandbox, "pins?board_id=112"))
    assert [p["board_id"] for p in only["items"]] == ["112"]
    _, log = await send(http, "GET", admin(sandbox, "requests"))
    assert [(r["method"], r["path"], r["username"], r["status"]) for r in log["items"]] == [
        ("POST", "/v5/pins", "alice", 201),
        ("POST", "/v5/pins", "alice", 201),
    ]
    sandbox.add_fault(FaultRule(kind="auth"))
    assert await send(http, "POST", admin(sandbox, "reset")) == (204, None)
    assert (sandbox.pins(), sandbox.requests, sandbox.faults()) == ([], [], [])
    assert (await send(http, "GET", f"{sandbox.base_url}/user_account", token="tok-a"))[0] == 401


async def test_wait_for_pins_wakes_on_create(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """wait_for_pins returns once a concurrent request has created enough pins."""
    sandbox.add_user("alice", access_token="tok-a", board_ids=["111"])
    waiter = asyncio.create_task(sandbox.wait_for_pins(2, timeout_s=5))
    for _ in range(2):
        await send(http, "POST", f"{sandbox.base_url}/pins", PIN, "tok-a")
    await waiter
    assert len(sandbox.pins(board_id="111")) == 2


async def test_wait_for_pins_times_out(sandbox: Sandbox) -> None:
    """wait_for_pins raises TimeoutError when the pins never come."""
    with pytest.raises(TimeoutError):
        await sandbox.wait_for_pins(1, timeout_s=0.05)


def test_cli_rejects_bad_specs() -> None:
    """Malformed --seed-user, --seed-board and probabilities are argparse errors."""
    for argv in (
        ["--seed-user", "alice"],
        ["--seed-board", "alice:abc"],
        ["--fault-rate-5xx", "2"],
    ):
        with pytest.raises(SystemExit):
            cli_args(*argv)


async def test_build_sandbox_from_flags(http: aiohttp.ClientSession) -> None:
    """Seeding flags create users, boards, the OAuth client and the probability faults."""
    args = cli_args(
        "--port",
        "0",
        "--seed-user",
        "alice:tok-a:ref-a",
        "--seed-board",
        "alice:111",
        "--fault-rate-5xx",
        "1",
        "--latency-ms",
        "5",
        "--write-limit-per-minute",
        "10",
    )
    sandbox = build_sandbox(args)
    assert [rule.kind for rule, _ in sandbox.faults()] == ["latency", "status"]
    sandbox.clear_faults()
    await sandbox.start(args.host, args.port)
    try:
        status, pin = await send(http, "POST", f"{sandbox.base_url}/pins", PIN, "tok-a")
        assert (status, pin["board_owner"]) == (201, {"username": "alice"})
        assert sandbox.state.check_client("sandbox-client", "sandbox-secret")
        assert "ref-a" in sandbox.state.refresh_tokens
    finally:
        await sandbox.stop()


async def test_run_prints_the_url_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    """run() prints one 'sandbox listening on' line and returns once stop is set."""
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(run(cli_args("--port", "0"), stop), timeout=5)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith("sandbox listening on http://127.0.0.1:")
    assert out[0].endswith("/v5")


async def test_python_m_sandbox_serves_until_sigterm(http: aiohttp.ClientSession) -> None:
    """`python -m pinsched.sandbox` serves seeded users and exits cleanly on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pinsched.sandbox",
        "--port",
        "0",
        "--seed-user",
        "alice:tok-a",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=10)).decode().strip()
        base_url = line.removeprefix("sandbox listening on ")
        status, account = await send(http, "GET", f"{base_url}/user_account", token="tok-a")
        assert (status, account["username"]) == (200, "alice")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
