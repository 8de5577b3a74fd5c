"""No secret is ever logged: the daemon runs as a subprocess (`python -m pinsched serve`, debug
logs) through a full flow against the sandbox, and its whole output is searched for every token
and secret it handled."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cryptography.fernet import Fernet

from pinsched.sandbox import Sandbox
from pinsched.v1 import account_pb2, account_pb2_grpc, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, BOARD, REFRESH, jobs_stub, soon

API_TOKEN = "api-token-for-the-log-test-8c1f2e"
WRONG_TOKEN = "wrong-api-token-presented-7d3a9b"
CLIENT_SECRET = "client-secret-1"  # registered in the sandbox by tests.conftest
SECRET_KEY = Fernet.generate_key().decode()
OLD_KEY = Fernet.generate_key().decode()  # a rotation in progress: new key first
AUTH = (("authorization", f"Bearer {API_TOKEN}"),)
HOOK_PASSWORD, HOOK_TOKEN = "hook-password-5511", "hook-query-token-7733"
#: Nothing listens on port 9: every POST fails, and the failures are logged.
HOOK_URL = f"http://hookuser:{HOOK_PASSWORD}@127.0.0.1:9/hook?token={HOOK_TOKEN}"
DELIVERED = job_pb2.Job.STATE_DELIVERED


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    port: int = 0
    metrics_port: int = 0
    lines: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


async def _pump(stream: asyncio.StreamReader, served: Served, ready: asyncio.Event) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip("\n")
        served.lines.append(text)
        with contextlib.suppress(ValueError):
            record = json.loads(text)
            if record.get("event") == "metrics_ready":
                served.metrics_port = int(record["port"])
            if record.get("event") == "pinsched_ready":
                served.port = int(record["port"])
                ready.set()
    ready.set()  # the process ended: let the test fail with the output


@pytest.fixture
async def served(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Served]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINSCHED_")}
    env.update(
        {
            "PINSCHED_API_TOKEN": API_TOKEN,
            "PINSCHED_SECRET_KEY": f"{SECRET_KEY},{OLD_KEY}",
            "PINSCHED_PINTEREST_CLIENT_ID": "client-1",
            "PINSCHED_PINTEREST_CLIENT_SECRET": CLIENT_SECRET,
            "PINSCHED_LOG_LEVEL": "debug",
            "PINSCHED_LOG_FORMAT": "json",
            "PINSCHED_SHUTDOWN_GRACE_S": "2",
            "PINSCHED_RETRY_BASE_DELAY_S": "0.05",
            "PINSCHED_WEBHOOK_URL": HOOK_URL,
            "PINSCHED_WEBHOOK_SECRET": "whsec_"
            + base64.b64encode(b"log-test-webhook-key-01").decode(),
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pinsched",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--db",
        str(tmp_path / "pinsched.db"),
        "--pinterest-api-base",
        sandbox.base_url,
        "--metrics-listen",
        "127.0.0.1:0",
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    served, ready = Served(proc), asyncio.Event()
    served.readers = [
        asyncio.create_task(_pump(s, served, ready)) for s in (proc.stdout, proc.stderr)
    ]
    try:
        await asyncio.wait_for(ready.wait(), 20)
        assert served.port, f"daemon did not start:\n{served.output}"
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await asyncio.gather(*served.readers)


async def watch_until_delivered(jobs: Any, job_ids: list[str]) -> None:
    """Follow the watch stream (authenticated) of *jobs*, a `jobs_stub` that reads it event by
    event, until every job is DELIVERED."""
    pending = set(job_ids)
    call = jobs.WatchJobs(
        scheduler_pb2.WatchJobsRequest(job_ids=job_ids, since_sequence=0), metadata=AUTH
    )

    async def follow() -> None:
        async for event in call:
            if event.to_state == DELIVERED:
                pending.discard(event.job_id)
            if not pending:
                call.cancel()
                return

    await asyncio.wait_for(follow(), 20)


def pin(title: str) -> scheduler_pb2.SchedulePinRequest:
    """A pin request for account `acme`, due now."""
    req = scheduler_pb2.SchedulePinRequest(
        account_id="acme",
        pin=job_pb2.Pin(
            board_id=BOARD,
            title=title,
            media_source=job_pb2.MediaSource(
                image_url=job_pb2.ImageUrl(url="https://example.com/a.jpg")
            ),
        ),
    )
    req.scheduled_at.FromDatetime(soon())
    return req


async def test_no_token_or_secret_reaches_the_logs(served: Served, sandbox: Sandbox) -> None:
    """Account creation, deliveries, refused calls, a 401 → token refresh, failing webhook
    POSTs, a metrics scrape and a SIGTERM drain leave no access/refresh token (original or
    rotated), API token, presented wrong token, client secret, encryption key nor credential of
    the webhook URL in the daemon's output."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        accounts = account_pb2_grpc.AccountServiceStub(channel)
        jobs = jobs_stub(channel)  # WatchJobs read event by event
        for metadata in ((), (("authorization", f"Bearer {WRONG_TOKEN}"),)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await accounts.ListAccounts(account_pb2.ListAccountsRequest(), metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="acme",
                account=account_pb2.Account(
                    display_name="Acme", access_token=ACCESS, refresh_token=REFRESH
                ),
            ),
            metadata=AUTH,
        )
        first = [await jobs.SchedulePin(pin(f"pin {i}"), metadata=AUTH) for i in range(2)]
        await watch_until_delivered(jobs, [j.id for j in first])
        sandbox.expire_access_token(ACCESS)  # next publish: 401 → refresh → retry
        after = await jobs.SchedulePin(pin("after the refresh"), metadata=AUTH)
        await watch_until_delivered(jobs, [after.id])
        with pytest.raises(grpc.aio.AioRpcError):  # an error path, logged or not
            await accounts.CreateAccount(
                account_pb2.CreateAccountRequest(
                    account_id="acme", account=account_pb2.Account(access_token=ACCESS)
                ),
                metadata=AUTH,
            )
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{served.metrics_port}/metrics") as resp,
    ):
        metrics_text = await resp.text()
    served.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.proc.wait(), 15) == 0
    await asyncio.gather(*served.readers)

    output = served.output
    assert output.count('"pin_delivered"') == 3, output
    assert '"token_refreshed"' in output
    assert '"pinsched_stopped"' in output
    assert "127.0.0.1:9/hook" in output  # the webhook URL was logged, without its credentials
    assert len(sandbox.pins()) == 3
    rotated = set(sandbox.state.access_tokens) | set(sandbox.state.refresh_tokens)
    assert rotated - {ACCESS, REFRESH}, "the sandbox issued no new tokens"
    secrets = {
        ACCESS,
        REFRESH,
        API_TOKEN,
        WRONG_TOKEN,
        CLIENT_SECRET,
        SECRET_KEY,
        OLD_KEY,
        HOOK_PASSWORD,
        HOOK_TOKEN,
        *rotated,
    }
    for secret in secrets:
        assert secret not in output, f"a secret ({secret[:5]}…) was logged"
        assert secret not in metrics_text
    assert "pina_" not in output
    assert "pinr_" not in output
