"""The sandbox's own harness: the sandbox (`pinsched sandbox`) tested over HTTP on loopback, with
no daemon. Each module seeds its `sandbox` fixture as its tests need; the clock, the HTTP client
and the request helpers are shared here."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from pinsched.sandbox import Sandbox
from pinsched.sandbox.cli import add_arguments
from pinsched.testing import FakeClock

#: Where `clock` starts unless the test module sets its own `CLOCK_START`.
CLOCK_START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> FakeClock:
    """The sandbox's clock: it moves only when the test advances it."""
    return FakeClock(getattr(request.module, "CLOCK_START", CLOCK_START))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def admin(sandbox: Sandbox, path: str) -> str:
    """Return the URL of an admin endpoint."""
    return sandbox.base_url.removesuffix("/v5") + "/_admin/" + path


async def send(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """Send one JSON request; return (status, decoded body or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as resp:
        return resp.status, (await resp.json() if await resp.read() else None)


def cli_args(*argv: str) -> argparse.Namespace:
    """`pinsched sandbox` arguments parsed as its command line would be."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))
