"""The production image's contract, checked without a Docker engine: the HEALTHCHECK works with
mutual TLS on the API port (plain-text health-only port), the default command never brings up
the sandbox, and the Dockerfile's inputs are pinned (base digest, hashed locks, .dockerignore)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from pinsched.app import Daemon
from pinsched.cli.main import main as cli_main
from pinsched.v1 import scheduler_pb2, scheduler_pb2_grpc
from tests.integration.test_security_tls import Pki, pki  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


async def test_healthcheck_works_with_mutual_tls(
    make_daemon: Callable[..., Daemon],
    pki: Pki,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With mutual TLS on the API port, the image's HEALTHCHECK (`pinsched health` with only
    the image's environment) reports SERVING through PINSCHED_HEALTH_LISTEN; that port serves
    health only: an API call on it is UNIMPLEMENTED."""
    daemon = make_daemon(
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.ca),
        health_listen="127.0.0.1:0",
    )
    await daemon.start()
    try:
        monkeypatch.setenv("PINSCHED_LISTEN", f"0.0.0.0:{daemon.port}")
        monkeypatch.setenv("PINSCHED_HEALTH_LISTEN", f"127.0.0.1:{daemon.health_port}")
        assert await asyncio.to_thread(cli_main, ["health", "--timeout", "5"]) == 0
        assert "SERVING" in capsys.readouterr().out
        monkeypatch.delenv("PINSCHED_HEALTH_LISTEN")
        assert await asyncio.to_thread(cli_main, ["health", "--timeout", "5"]) == 1
        async with grpc.aio.insecure_channel(f"127.0.0.1:{daemon.health_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await scheduler_pb2_grpc.PinSchedulerStub(channel).GetJob(
                    scheduler_pb2.GetJobRequest(job_id="x"), timeout=5
                )
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await daemon.stop(grace_s=0.5)


def test_serving_never_loads_the_sandbox(tmp_path: Path) -> None:
    """Starting and stopping the daemon the way `pinsched serve` does imports no module of the
    sandbox (whose admin routes are unauthenticated)."""
    script = f"""
import asyncio, sys
from pinsched.app import Daemon
from pinsched.config import load_config
async def main():
    cfg = load_config(None, {{"PINSCHED_DB": {str(tmp_path / "p.db")!r},
                              "PINSCHED_LISTEN": "127.0.0.1:0",
                              "PINSCHED_HEALTH_LISTEN": "127.0.0.1:0"}}, None)
    d = Daemon(cfg)
    await d.start()
    await d.stop(grace_s=0)
asyncio.run(main())
loaded = sorted(m for m in sys.modules if m.startswith("pinsched.sandbox"))
print("SANDBOX:", loaded)
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    ).stdout
    assert "SANDBOX: []" in out


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_pins_its_inputs() -> None:
    """The base image is pinned by digest, dependencies are installed from hashed locks, and the
    default command is `serve` with a HEALTHCHECK on the health-only port."""
    text = dockerfile()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11[\w.-]*@sha256:[0-9a-f]{64}\n", text)
    assert text.count("FROM ${PYTHON_IMAGE}") == 2
    assert re.search(r"pip install [^\n]*--require-hashes [^\n]*-r requirements\.lock", text)
    assert re.search(r"pip install [^\n]*--require-hashes [^\n]*-r build\.lock", text)
    assert 'CMD ["serve"]' in text
    assert "PINSCHED_HEALTH_LISTEN=127.0.0.1:" in text
    assert 'CMD ["pinsched", "health"' in text
    for lock in ("requirements.lock", "build.lock"):
        lines = (ROOT / lock).read_text().splitlines()
        pins = [ln for ln in lines if re.match(r"^[A-Za-z0-9_.-]+==", ln)]
        assert pins, lock
        assert all(ln.rstrip().endswith("\\") for ln in pins), "every pin carries hashes"


def test_lock_covers_every_runtime_dependency() -> None:
    """Every dependency named in pyproject.toml is pinned in requirements.lock."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=;\[ ]", d, maxsplit=1)[0].lower() for d in deps}
    locked = {
        ln.split("==")[0].lower()
        for ln in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in ln
    }
    assert names <= locked


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    """The build context admits only what the Dockerfile copies; databases, keys, .git and
    virtualenvs stay out."""
    rules = [
        ln
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert rules[0] == "*"  # deny by default
    for needed in ("!pyproject.toml", "!pinsched/", "!requirements.lock", "!build.lock"):
        assert needed in rules
    for secret in ("**/*.db", "**/*.pem", "**/*.key", "**/.env"):
        assert secret in rules
