"""The MCP streamable HTTP transport at `/mcp` on the daemon's own HTTP door, behind its token,
driven by the MCP SDK's own streamable HTTP client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from pinsched.app import Daemon
from pinsched_client import AsyncClient, account_pb2
from tests.conftest import ACCESS, BOARD

TOKEN = "http-door-token"


async def test_streamable_http_at_mcp_schedules_a_pin(make_daemon: Callable[..., Daemon]) -> None:
    """Over streamable HTTP at /mcp, behind the API token, an agent lists the tools, schedules a
    pin, gets the same job on a retry and a structured tool error for a bad board id; a request
    without the token is refused with 401."""
    daemon = make_daemon(api_token=TOKEN)
    await daemon.start()
    target = f"127.0.0.1:{daemon.port}"
    try:
        async with AsyncClient(target, api_token=TOKEN) as client:
            await client.create_account("acme", account_pb2.Account(access_token=ACCESS))
        url = f"http://127.0.0.1:{daemon.http_port}/mcp"
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with http.post(
                    url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers
                ) as reply:
                    assert reply.status == 401
        bearer = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        async with (
            bearer,
            streamable_http_client(url, http_client=bearer) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"schedule_pin", "get_job", "cancel_job"} <= names
            tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            args: dict[str, Any] = {
                "account_id": "acme",
                "scheduled_at": tomorrow,
                "pin": {
                    "board_id": BOARD,
                    "title": "Over HTTP",
                    "media_source": {"image_url": {"url": "https://example.com/a.jpg"}},
                },
            }
            first = await session.call_tool("schedule_pin", args)
            again = await session.call_tool("schedule_pin", args)
            assert not first.is_error, first.content
            assert isinstance(first.structured_content, dict)
            assert isinstance(again.structured_content, dict)
            assert again.structured_content["id"] == first.structured_content["id"]
            bad = await session.call_tool(
                "schedule_pin", {**args, "pin": {**args["pin"], "board_id": "not-a-number"}}
            )
            assert bad.is_error
            assert isinstance(bad.structured_content, dict)
            fields = [v["field"] for v in bad.structured_content["error"]["field_violations"]]
            assert "pin.board_id" in fields
    finally:
        await daemon.stop(grace_s=1.0)
