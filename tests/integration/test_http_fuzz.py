"""Property-based fuzzing of the whole HTTP API from its OpenAPI document with Schemathesis,
against a real daemon (real SQLite, real sandbox) on loopback: no request, valid or not, yields a
5xx, and every response matches the document. Bounded for CI (`FUZZ_EXAMPLES` per operation);
`WatchJobs` is left out (an endless stream; tests/integration/test_http_watch.py covers it)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from pinsched.app import Daemon
from pinsched.config import Config
from pinsched.http.openapi import openapi_document
from pinsched.sandbox import Sandbox
from tests.conftest import ACCESS, BOARD, start_sandbox

FUZZ_EXAMPLES = int(os.environ.get("PINSCHED_FUZZ_EXAMPLES", "15"))


@schemathesis.serializer("video/mp4", "video/quicktime", "video/x-m4v")
def _video_bytes(ctx: Any, value: Any) -> bytes:
    """`POST /v1/media` takes raw video bytes: whatever the fuzzer drew, as bytes (a bad video
    must be a 4xx, never a 5xx)."""
    return value if isinstance(value, bytes) else str(value).encode()


schema = schemathesis.openapi.from_dict(json.loads(openapi_document())).exclude(
    operation_id="PinScheduler_WatchJobs"
)


class Background:
    """A sandbox and a daemon on their own event loop in a thread (the fuzzer's HTTP client is
    synchronous)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-daemon")
        self.sandbox: Sandbox
        self.daemon: Daemon

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def _start(self) -> None:
        self.sandbox = await start_sandbox()
        self.daemon = Daemon(
            Config(
                listen="127.0.0.1:0",
                http_listen="127.0.0.1:0",
                db_path=str(self.tmp / "fuzz.db"),
                pinterest_api_base=self.sandbox.base_url,
                pinterest_client_id="client-1",
                pinterest_client_secret="client-secret-1",
                log_level="critical",
                shutdown_grace_s=1.0,
            )
        )
        await self.daemon.start()

    async def _stop(self) -> None:
        await self.daemon.stop(grace_s=1.0)
        await self.sandbox.stop()

    def __enter__(self) -> Background:
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="pinsched-fuzz-") as tmp, Background(Path(tmp)) as bg:
        base = f"http://127.0.0.1:{bg.daemon.http_port}"
        import requests

        later = datetime.now(UTC) + timedelta(days=30)
        requests.post(
            f"{base}/v1/accounts",
            timeout=10,
            json={"account_id": "acme", "account": {"access_token": ACCESS}},
        ).raise_for_status()
        requests.post(
            f"{base}/v1/jobs",
            timeout=10,
            json={
                "account_id": "acme",
                "scheduled_at": later.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "pin": {
                    "board_id": BOARD,
                    "media_source": {"image_url": {"url": "https://example.com/a.jpg"}},
                },
            },
        ).raise_for_status()
        yield base


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_responses_match_the_document(case: Any, base_url: str) -> None:
    """Any generated request (valid or not) gets a non-5xx answer that matches the document."""
    case.call_and_validate(
        base_url=base_url, checks=[not_a_server_error, response_schema_conformance]
    )
