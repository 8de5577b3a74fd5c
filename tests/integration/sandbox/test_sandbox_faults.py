"""Integration tests for the sandbox's fault injection over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest

from pinsched.sandbox import FaultRule, Sandbox

ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}
PIN = {
    "board_id": "111",
    "media_source": {"source_type": "image_url", "url": "https://example.com/a.jpg"},
}
SERVER_ERROR = {"code": 2787, "message": "Sorry! Something went wrong on our end."}


def _seeded(seed: int = 0) -> Sandbox:
    sb = Sandbox(seed=seed)
    sb.add_user("alice", access_token="tok-alice", board_ids=["111"])
    sb.add_user("bob", access_token="tok-bob", board_ids=["999"])
    return sb


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A started sandbox where alice owns board 111 and bob owns board 999."""
    sb = _seeded()
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


async def post_pin(
    http: aiohttp.ClientSession, sandbox: Sandbox, headers: dict[str, str] = ALICE
) -> tuple[int, Any, Mapping[str, str]]:
    """POST a valid pin; return (status, JSON body, case-insensitive headers)."""
    async with http.post(f"{sandbox.base_url}/pins", headers=headers, json=PIN) as resp:
        return resp.status, await resp.json(), resp.headers.copy()


async def test_status_fault_applies_exactly_times(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A status fault with times=2 fails the next two creates with 503 code 2787, then stops."""
    sandbox.add_fault(FaultRule(kind="status", status=503, times=2))
    statuses = []
    for _ in range(3):
        status, _, headers = await post_pin(http, sandbox)
        statuses.append(status)
        assert headers["x-pinterest-rid"]
    assert statuses == [503, 503, 201]
    assert len(sandbox.pins()) == 1
    assert sandbox.faults() == []
    assert [r.fault for r in sandbox.requests] == ["status", "status", None]


@pytest.mark.parametrize(
    ("rule", "status", "body"),
    [
        (FaultRule(kind="status", status=502), 502, SERVER_ERROR),
        (FaultRule(kind="status", status=400), 400, {"code": 1, "message": "Invalid parameters."}),
        (FaultRule(kind="auth"), 401, {"code": 2, "message": "Authentication failed."}),
        (
            FaultRule(kind="spam"),
            429,
            {
                "code": 9,
                "message": "Sorry! You've hit a block (Pins) we have in place to combat spam. "
                "Please try again later!",
            },
        ),
        (FaultRule(kind="status", status=500, code=77, message="custom"), 500, None),
    ],
)
async def test_answering_faults_create_nothing(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
    rule: FaultRule,
    status: int,
    body: dict[str, Any] | None,
) -> None:
    """status, auth and spam faults answer with a Pinterest error body and create no pin."""
    sandbox.add_fault(rule)
    got_status, got_body, _ = await post_pin(http, sandbox)
    assert got_status == status
    assert got_body == (body or {"code": 77, "message": "custom"})
    assert sandbox.pins() == []


async def test_spam_fault_status_is_configurable(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A spam fault can be sent with HTTP 403 instead of the default 429."""
    sandbox.add_fault(FaultRule(kind="spam", status=403))
    status, body, _ = await post_pin(http, sandbox)
    assert (status, body["code"]) == (403, 9)


async def test_rate_limit_fault_headers(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """A rate_limit fault is 429 code 8, with Retry-After only when retry_after_s is set."""
    sandbox.add_fault(FaultRule(kind="rate_limit", times=1))
    sandbox.add_fault(FaultRule(kind="rate_limit", retry_after_s=7, times=1))
    status, body, headers = await post_pin(http, sandbox)
    assert (status, body["code"]) == (429, 8)
    assert "Retry-After" not in headers
    status, body, headers = await post_pin(http, sandbox)
    assert (status, body["code"]) == (429, 8)
    assert headers["Retry-After"] == headers["x-ratelimit-reset"] == "7"
    assert sandbox.pins() == []


async def test_latency_fault_delays_the_answer(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A latency fault holds the request for latency_ms before it is handled."""
    rule = FaultRule(kind="latency", latency_ms=150, method="GET", path_prefix="/v5/user_account")
    sandbox.add_fault(rule)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.get(f"{sandbox.base_url}/user_account", headers=ALICE) as resp:
        assert resp.status == 200
    assert loop.time() - started >= 0.15


async def test_lost_response_drop_creates_the_pin(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """lost_response/drop creates the pin and then cuts the connection without an answer."""
    sandbox.add_fault(FaultRule(kind="lost_response", mode="drop", times=1))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_pin(http, sandbox)
    await sandbox.wait_for_pins(1, timeout_s=2)
    assert (sandbox.requests[0].status, sandbox.requests[0].fault) == (0, "lost_response")
    status, _, _ = await post_pin(http, sandbox)
    assert status == 201


async def test_lost_response_hang_times_the_client_out(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """lost_response/hang creates the pin and holds the request until the client gives up."""
    sandbox.add_fault(FaultRule(kind="lost_response", mode="hang", hold_s=60))
    timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(TimeoutError):
        async with http.post(
            f"{sandbox.base_url}/pins", headers=ALICE, json=PIN, timeout=timeout
        ) as resp:
            await resp.read()
    await sandbox.wait_for_pins(1, timeout_s=2)
    assert sandbox.pins()[0]["board_id"] == "111"


async def test_lost_response_hang_ends_in_disconnect(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """After hold_s a hanging request is aborted, which a patient client sees as a disconnect."""
    sandbox.add_fault(FaultRule(kind="lost_response", mode="hang", hold_s=0.1))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_pin(http, sandbox)
    assert len(sandbox.pins()) == 1


async def test_status_after_create(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """status_after_create returns a 5xx although the pin was created."""
    sandbox.add_fault(FaultRule(kind="status_after_create", status=504, times=1))
    status, body, _ = await post_pin(http, sandbox)
    assert (status, body) == (504, SERVER_ERROR)
    assert len(sandbox.pins()) == 1


async def test_faults_match_method_path_and_user(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A rule only hits requests with its method, path prefix and (if set) username."""
    sandbox.add_fault(FaultRule(kind="status", status=500, username="bob"))
    sandbox.add_fault(FaultRule(kind="status", status=503, method="GET", path_prefix="/v5/boards"))
    assert (await post_pin(http, sandbox))[0] == 201
    bob_pin = {**PIN, "board_id": "999"}
    async with http.post(f"{sandbox.base_url}/pins", headers=BOB, json=bob_pin) as resp:
        assert resp.status == 500
    async with http.get(f"{sandbox.base_url}/boards", headers=ALICE) as resp:
        assert resp.status == 503
    async with http.get(f"{sandbox.base_url}/user_account", headers=ALICE) as resp:
        assert resp.status == 200
    sandbox.clear_faults()
    async with http.get(f"{sandbox.base_url}/boards", headers=ALICE) as resp:
        assert resp.status == 200


async def test_first_firing_rule_wins(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    """With two matching rules only the first fires, and the second keeps its count."""
    sandbox.add_fault(FaultRule(kind="status", status=502, times=1))
    sandbox.add_fault(FaultRule(kind="auth", times=1))
    assert (await post_pin(http, sandbox))[0] == 502
    assert (await post_pin(http, sandbox))[0] == 401
    assert (await post_pin(http, sandbox))[0] == 201


async def _statuses(http: aiohttp.ClientSession, seed: int, probability: float) -> list[int]:
    sb = _seeded(seed)
    sb.add_fault(
        FaultRule(
            kind="status", status=503, method="GET", path_prefix="/v5/", probability=probability
        )
    )
    await sb.start()
    try:
        out = []
        for _ in range(20):
            async with http.get(f"{sb.base_url}/user_account", headers=ALICE) as resp:
                out.append(resp.status)
        return out
    finally:
        await sb.stop()


async def test_probability_faults_are_seeded(http: aiohttp.ClientSession) -> None:
    """Probabilistic faults use the seeded RNG: same seed, same outcomes; 0 and 1 are exact."""
    first = await _statuses(http, 7, 0.5)
    assert first == await _statuses(http, 7, 0.5)
    assert set(first) == {200, 503}
    assert set(await _statuses(http, 7, 0.0)) == {200}
    assert set(await _statuses(http, 7, 1.0)) == {503}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "explode"},
        {"kind": "status", "times": 0},
        {"kind": "status", "probability": 1.5},
        {"kind": "latency"},
        {"kind": "lost_response", "mode": "later"},
        {"kind": "status", "status": "500"},
        {"kind": "status", "times": True},
    ],
)
def test_invalid_fault_rules_are_refused(kwargs: dict[str, Any]) -> None:
    """FaultRule rejects unknown kinds and out-of-range parameters."""
    with pytest.raises(ValueError, match=r"."):
        FaultRule.from_json(kwargs)
