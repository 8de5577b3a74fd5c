"""The n8n example (examples/n8n/pinsched-workflow.json) against a live daemon: its HTTP Request
node's route and body shape schedule a pin over the HTTP door, and its "Verify signature" Code
node, run in Node.js the way n8n runs it, accepts the real signed webhooks of that pin and
refuses a tampered body, a wrong secret and a stale timestamp."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pinsched.app import Daemon
from tests.conftest import ACCESS, BOARD
from tests.integration.test_webhooks import SECRET, Hit, hook, receiver

WORKFLOW = Path(__file__).parents[2] / "examples" / "n8n" / "pinsched-workflow.json"
#: Runs a Code node's JavaScript with n8n's globals: `$env`, `$input.first()` (the Webhook
#: node's item: lower-case headers and the parsed body) and `this.helpers.getBinaryDataBuffer`
#: (the raw body, with the Webhook node's "Raw Body" option).
HARNESS = r"""
const fs = require('fs');
const [code, hitJson, secret] = process.argv.slice(-3);
const hit = JSON.parse(hitJson);
const headers = Object.fromEntries(
  Object.entries(hit.headers).map(([k, v]) => [k.toLowerCase(), v]));
const $env = { PINSCHED_WEBHOOK_SECRET: secret };
const $input = { first: () => ({ json: { headers, body: JSON.parse(hit.body) } }) };
const helpers = { getBinaryDataBuffer: async () => Buffer.from(hit.body, 'utf8') };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('$env', '$input', 'require', fs.readFileSync(code, 'utf8'))
  .call({ helpers }, $env, $input, require)
  .then((out) => console.log(JSON.stringify(out)));
"""

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="`node` is not on PATH (it runs the Code node)"
)


def _node(name: str) -> dict[str, Any]:
    workflow = json.loads(WORKFLOW.read_text())
    (node,) = [n for n in workflow["nodes"] if n["name"] == name]
    return dict(node)


async def verify(tmp_path: Path, hit: Hit, secret: str = SECRET) -> dict[str, Any]:
    code = tmp_path / "verify.js"
    code.write_text(_node("Verify signature")["parameters"]["jsCode"])
    proc = await asyncio.create_subprocess_exec(
        "node",
        "-e",
        HARNESS,
        str(code),
        json.dumps({"headers": hit.headers, "body": hit.body}),
        secret,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    (item,) = json.loads(out)
    return dict(item["json"])


def test_workflow_shape() -> None:
    """The HTTP Request node POSTs to /v1/jobs with a JSON body and the bearer header; the
    Webhook node keeps the raw body and answers from the workflow; every connection names a
    node of the workflow."""
    workflow = json.loads(WORKFLOW.read_text())
    names = {n["name"] for n in workflow["nodes"]}
    schedule = _node("Schedule pin")["parameters"]
    assert schedule["method"] == "POST"
    assert schedule["url"].endswith("/v1/jobs' }}")
    assert schedule["specifyBody"] == "json"
    assert "Bearer" in schedule["headerParameters"]["parameters"][0]["value"]
    hook_params = _node("pinsched webhook")["parameters"]
    assert hook_params["options"]["rawBody"] is True
    assert hook_params["responseMode"] == "responseNode"
    for source, outputs in workflow["connections"].items():
        assert source in names
        assert all(t["node"] in names for branch in outputs["main"] for t in branch)


async def test_code_node_verifies_real_webhooks(
    make_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """Deliveries of a pin scheduled over HTTP verify in the Code node (type and data read
    back); a changed body, another secret or a stale timestamp do not."""
    async with receiver() as r:
        daemon = make_daemon(webhooks=hook(r.url))
        await daemon.start()
        try:
            base = f"http://127.0.0.1:{daemon.http_port}"
            async with aiohttp.ClientSession() as session:
                created = await session.post(
                    f"{base}/v1/accounts",
                    json={"account_id": "acme", "account": {"access_token": ACCESS}},
                )
                assert created.status == 200
                job = await (
                    await session.post(
                        f"{base}/v1/jobs",
                        json={
                            "account_id": "acme",
                            "scheduled_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                            "request_id": "n8n-1",
                            "pin": {
                                "board_id": BOARD,
                                "title": "Café ☕ from n8n",
                                "media_source": {"image_url": {"url": "https://example.com/a.jpg"}},
                            },
                        },
                    )
                ).json()
                assert job["state"] == "STATE_PENDING", job
            await r.wait_until(lambda: len(r.acked) >= 1)
        finally:
            await daemon.stop(grace_s=1.0)
    hit = r.acked[0]
    ok = await verify(tmp_path, hit)
    assert ok["valid"] is True
    assert ok["type"] == "job.scheduled"
    assert ok["data"]["job_id"] == job["id"]
    assert ok["data"]["job"]["pin"]["title"] == "Café ☕ from n8n"
    tampered = Hit(hit.headers, hit.body.replace("n8n-1", "n8n-2"))
    assert (await verify(tmp_path, tampered))["valid"] is False
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    assert (await verify(tmp_path, hit, other))["valid"] is False
    stale = Hit({**hit.headers, "webhook-timestamp": "1700000000"}, hit.body)
    assert (await verify(tmp_path, stale))["valid"] is False
