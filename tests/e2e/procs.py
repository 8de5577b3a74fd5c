"""Helpers to run pinsched processes (sandbox, daemon) as real subprocesses on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

ROOT = str(Path(__file__).resolve().parents[2])


class Proc:
    """A subprocess whose output lines are collected; `wait_line` waits for one to match."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._readers = [
            asyncio.create_task(self._read(s)) for s in (proc.stdout, proc.stderr) if s is not None
        ]

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()

    async def wait_line(self, needle: str, timeout_s: float = 20.0) -> str:
        """The first output line containing *needle* (waiting for it)."""

        async def find() -> str:
            async with self._changed:
                while True:
                    for line in self.lines:
                        if needle in line:
                            return line
                    if self.proc.returncode is not None:
                        raise AssertionError(f"{self.name} exited: {self.output()}")
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout_s)

    def output(self) -> str:
        return "\n".join(self.lines[-50:])

    async def terminate(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code


async def spawn(args: Sequence[str], name: str, env: dict[str, str] | None = None) -> Proc:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    return Proc(proc, name)


async def start_sandbox(*extra: str) -> tuple[Proc, str]:
    """`pinsched sandbox` on a free port with user acme (boards 1001, 1002); returns its URL."""
    proc = await spawn(
        [
            "pinsched",
            "sandbox",
            "--port",
            "0",
            "--seed-user",
            "acme:pina_e2e_access:pinr_e2e_refresh",
            "--seed-board",
            "acme:1001",
            "--seed-board",
            "acme:1002",
            "--client-id",
            "e2e-client",
            "--client-secret",
            "e2e-secret",
            *extra,
        ],
        "sandbox",
    )
    line = await proc.wait_line("sandbox listening on ")
    return proc, line.split("sandbox listening on ", 1)[1].strip()


async def start_daemon(
    db: Path, api_base: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[Proc, int]:
    """`pinsched serve` on a free port; returns the process and its gRPC port."""
    proc = await spawn(
        [
            "pinsched",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--db",
            str(db),
            "--pinterest-api-base",
            api_base,
            *extra,
        ],
        "daemon",
        env={
            "PINSCHED_PREFLIGHT_LEAD_TIME_S": "0",  # no probe of other hosts
            "PINSCHED_PINTEREST_CLIENT_ID": "e2e-client",
            "PINSCHED_PINTEREST_CLIENT_SECRET": "e2e-secret",
            **(env or {}),
        },
    )
    line = await proc.wait_line('"pinsched_ready"')
    return proc, int(json.loads(line)["port"])


async def sandbox_pins(base_url: str) -> list[dict[str, Any]]:
    """Every pin the sandbox holds, via its admin API."""
    root = base_url.rsplit("/v5", 1)[0]
    async with aiohttp.ClientSession() as session, session.get(f"{root}/_admin/pins") as resp:
        resp.raise_for_status()
        data = await resp.json()
    return list(data["items"] if isinstance(data, dict) else data)
