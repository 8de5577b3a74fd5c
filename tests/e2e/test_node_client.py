"""The Node.js example client (clients/node) against a live daemon and the sandbox: it creates an
account, schedules a pin and follows WatchJobs until the pin is delivered."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from tests.conftest import ACCESS, BOARD, REFRESH

NODE_DIR = Path(__file__).parents[2] / "clients" / "node"
API_TOKEN = "node-client-api-token-5e2c71"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="`node` is not on PATH (Node.js 18+ runs clients/node)"
)


async def run(
    *argv: str, env: dict[str, str] | None = None, timeout_s: float = 60.0
) -> tuple[int, str, str]:
    """Run a command in clients/node; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=NODE_DIR, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ensure_node_modules() -> None:
    """`npm ci` once (from package-lock.json); later runs reuse clients/node/node_modules."""
    if (NODE_DIR / "node_modules" / "@grpc" / "grpc-js" / "package.json").exists() and (
        NODE_DIR / "node_modules" / "@grpc" / "proto-loader" / "package.json"
    ).exists():
        return
    npm = shutil.which("npm")
    assert npm is not None, "node is installed but npm is not: install npm to run clients/node"
    code, out, err = await run(npm, "ci", "--no-audit", "--no-fund", timeout_s=300.0)
    assert code == 0, f"npm ci failed:\n{out}\n{err}"


async def test_node_client_schedules_and_sees_delivery(
    make_daemon: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """`node index.js` creates the account, schedules a pin with the API token, and exits 0
    after the stream shows it DELIVERED; the pin is on the sandbox board."""
    await ensure_node_modules()
    daemon = make_daemon(api_token=API_TOKEN)
    await daemon.start()
    env = {**os.environ, "PINSCHED_API_TOKEN": API_TOKEN}
    try:
        code, out, err = await run(
            "node",
            "index.js",
            "--target",
            f"127.0.0.1:{daemon.port}",
            "--account",
            "acme",
            "--access-token",
            ACCESS,
            "--refresh-token",
            REFRESH,
            "--board",
            BOARD,
            "--title",
            "From Node",
            "--image-url",
            "https://example.com/node.jpg",
            "--timeout",
            "30",
            env=env,
        )
    finally:
        await daemon.stop(grace_s=1.0)
    assert code == 0, f"node client failed ({code}):\n{out}\n{err}"
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    assert events[0] == "account_created"
    assert events[1] == "scheduled"
    assert events[-1] == "delivered"
    states = [line["to_state"] for line in lines if line["event"] == "job_event"]
    assert states == ["STATE_PENDING", "STATE_QUEUED", "STATE_SUBMITTED", "STATE_DELIVERED"]
    pins = sandbox.pins()
    assert [(p["title"], p["board_id"]) for p in pins] == [("From Node", BOARD)]
    assert lines[-1]["pinterest_pin_id"] == pins[0]["id"]
