"""What a daemon's start-up leaves out (imports that cost start-up time and that only some
requests need): the MCP SDK is loaded by the first request to `/mcp`, the distribution metadata
by `pinsched --version`. A fresh interpreter, a real daemon on a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, json, sys
import aiohttp
import pinsched.cli.main  # the console script's own imports
from pinsched.app import Daemon
from pinsched.config import Config

def loaded(*names):
    return sorted(n for n in names if n in sys.modules)

async def main(db):
    d = Daemon(Config(listen="127.0.0.1:0", http_listen="127.0.0.1:0", db_path=db,
                      pinterest_api_base="http://127.0.0.1:9/v5", log_level="warning"))
    await d.start()
    try:
        at_ready = loaded("mcp", "pinsched.mcp.http", "importlib.metadata")
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{d.http_port}/mcp"
            async with http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                 headers={"Accept": "application/json, text/event-stream"}) as r:
                status = r.status
        print("PROBE", json.dumps({"at_ready": at_ready, "status": status,
                          "after": loaded("mcp", "pinsched.mcp.http")}))
    finally:
        await d.stop(grace_s=0.5)

asyncio.run(main(sys.argv[1]))
"""


def test_start_up_loads_no_mcp_sdk_until_mcp_is_asked(tmp_path: Path) -> None:
    """At ready neither the MCP SDK nor the distribution metadata is imported; the first
    request to `/mcp` loads the SDK and is answered by it."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "lean.db")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    (line,) = [x for x in out.splitlines() if x.startswith("PROBE ")]
    seen = json.loads(line.removeprefix("PROBE "))
    assert seen["at_ready"] == []
    assert seen["status"] == 200
    assert seen["after"] == ["mcp", "pinsched.mcp.http"]
