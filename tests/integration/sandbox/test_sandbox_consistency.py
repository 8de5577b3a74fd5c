"""The sandbox's eventual consistency over real HTTP: creates that land after their 5xx
(`late_create`), reads that lag writes (`read_lag_s`), and text stored as Pinterest may
rewrite it; with the admin setting and flags that control them, and their bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from pinsched.sandbox import FaultRule, Sandbox
from pinsched.sandbox.cli import build_sandbox
from pinsched.testing import FakeClock
from tests.integration.sandbox.conftest import cli_args

ALICE = {"Authorization": "Bearer tok-alice"}
PIN = {
    "board_id": "111",
    "title": "  Spaced title  ",
    "link": "HTTPS://Shop.Example.COM/P",
    "media_source": {"source_type": "image_url", "url": "https://example.com/a.jpg"},
}


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A started sandbox on *clock* where alice owns board 111."""
    sb = Sandbox(now=clock.now)
    sb.add_user("alice", access_token="tok-alice", board_ids=["111"])
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
    async with http.request(method, url, json=body, headers=headers) as resp:
        return resp.status, (await resp.json() if await resp.read() else None)


async def listed(http: aiohttp.ClientSession, sandbox: Sandbox) -> list[str]:
    status, body = await call(http, "GET", f"{sandbox.base_url}/boards/111/pins", None, ALICE)
    assert status == 200
    return [p["id"] for p in body["items"]]


async def test_a_late_create_answers_503_and_lands_later(
    sandbox: Sandbox,
    clock: FakeClock,
    http: aiohttp.ClientSession,
) -> None:
    """`late_create` answers 503 code 2787 at once; the pin exists (admin view) but reads see it
    only from its landing time on, and its created_at is that time."""
    sandbox.add_fault(
        FaultRule(kind="late_create", land_after_min_s=7, land_after_max_s=7, times=1)
    )
    status, body = await call(http, "POST", f"{sandbox.base_url}/pins", PIN, ALICE)
    assert (status, body["code"]) == (503, 2787)
    (pin,) = sandbox.pins()
    assert await listed(http, sandbox) == []
    assert (await call(http, "GET", f"{sandbox.base_url}/pins/{pin['id']}", None, ALICE))[0] == 404
    await clock.advance(6.9)
    assert await listed(http, sandbox) == []
    await clock.advance(0.1)
    assert await listed(http, sandbox) == [pin["id"]]
    assert pin["created_at"] == (clock.now()).strftime("%Y-%m-%dT%H:%M:%S")
    assert [r.fault for r in sandbox.requests if r.method == "POST"] == ["late_create"]


async def test_reads_lag_writes_but_writes_see_everything(
    sandbox: Sandbox,
    clock: FakeClock,
    http: aiohttp.ClientSession,
) -> None:
    """With a read lag of 3 s a created pin is missing from GET and the board listing for 3 s,
    while a DELETE finds it at once."""
    sandbox.set_read_lag(3.0)
    status, pin = await call(http, "POST", f"{sandbox.base_url}/pins", PIN, ALICE)
    assert status == 201
    assert await listed(http, sandbox) == []
    url = f"{sandbox.base_url}/pins/{pin['id']}"
    assert (await call(http, "GET", url, None, ALICE))[0] == 404
    await clock.advance(3)
    assert (await call(http, "GET", url, None, ALICE))[0] == 200
    assert await listed(http, sandbox) == [pin["id"]]
    sandbox.set_read_lag(60.0)
    _, second = await call(http, "POST", f"{sandbox.base_url}/pins", PIN, ALICE)
    assert (await call(http, "DELETE", f"{sandbox.base_url}/pins/{second['id']}", None, ALICE))[
        0
    ] == 204


async def test_text_is_stored_trimmed_and_links_with_lower_case_host(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
) -> None:
    """Like Pinterest may, the sandbox trims the title and lower-cases the link's scheme and
    host (the path is kept)."""
    _, pin = await call(http, "POST", f"{sandbox.base_url}/pins", PIN, ALICE)
    assert (pin["title"], pin["link"]) == ("Spaced title", "https://shop.example.com/P")


async def test_admin_settings_read_lag_and_bad_input(
    sandbox: Sandbox,
    http: aiohttp.ClientSession,
) -> None:
    """`/_admin/settings` reads and sets the read lag; a negative, non-numeric or unknown
    setting is a 400 naming it, and changes nothing."""
    url = sandbox.base_url.removesuffix("/v5") + "/_admin/settings"
    status, answer = await call(http, "POST", url, {"read_lag_s": 2.5})
    assert (status, answer["read_lag_s"]) == (200, 2.5)
    status, answer = await call(http, "GET", url)
    assert (status, answer["read_lag_s"]) == (200, 2.5)
    for body, word in (
        ({"read_lag_s": -1}, "read_lag_s"),
        ({"read_lag_s": "1"}, "read_lag_s"),
        ({"read_lag_s": True}, "read_lag_s"),
        ({"lag": 1}, "lag"),
        ([], "object"),
        ({"read_lag_s": 1, "trial_app": "no"}, "trial_app"),
    ):
        status, err = await call(http, "POST", url, body)
        assert status == 400, body
        assert word in err["error"]
    assert sandbox.read_lag_s == 2.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "late_create", "land_after_min_s": 5, "land_after_max_s": 1},
        {"kind": "late_create", "land_after_min_s": -1},
        {"kind": "late_create", "land_after_max_s": "20"},
    ],
)
def test_invalid_late_create_rules_are_refused(kwargs: dict[str, Any]) -> None:
    """A landing range that is negative, reversed or not a number is refused."""
    with pytest.raises(ValueError, match="land_after"):
        FaultRule.from_json(kwargs)


@pytest.mark.parametrize(
    "argv",
    [
        ["--read-lag-s", "-1"],
        ["--read-lag-s", "soon"],
        ["--read-lag-s", "nan"],
        ["--fault-rate-late-create", "2"],
    ],
)
def test_bad_consistency_flags_are_usage_errors(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad --read-lag-s or --fault-rate-late-create values exit 2 naming the flag."""
    with pytest.raises(SystemExit) as caught:
        cli_args(*argv)
    assert caught.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_flags_set_the_read_lag_and_the_late_create_fault() -> None:
    """`--read-lag-s` and `--fault-rate-late-create` configure the sandbox they build."""
    sandbox = build_sandbox(cli_args("--read-lag-s", "1.5", "--fault-rate-late-create", "0.25"))
    assert sandbox.read_lag_s == 1.5
    ((rule, _),) = sandbox.faults()
    assert (rule.kind, rule.probability, rule.land_after_min_s, rule.land_after_max_s) == (
        "late_create",
        0.25,
        1.0,
        20.0,
    )
