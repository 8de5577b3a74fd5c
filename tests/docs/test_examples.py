"""The documented examples run as written against `pinsched sandbox --seed-demo` and a daemon.

One sandbox and one daemon per module, as subprocesses on free loopback ports, started the way
README "Try it locally" says: the daemon gets the settings the sandbox prints. Each document's
marked examples (see tests/docs/examples.py) then run in order with PINSCHED_TARGET pointing at
that daemon and the virtualenv's `bin` first on PATH, as after `source .venv/bin/activate`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pinsched_client import DEFAULT_TARGET
from tests.docs.examples import collect, run_block

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "clients" / "README.md",
    *sorted((ROOT / "clients").glob("*/README.md")),
]
START_TIMEOUT_S = 30.0
SANDBOX_DEFAULT = "http://127.0.0.1:8081/v5"
HTTP_DEFAULT = "127.0.0.1:8080"  # the HTTP/JSON door (`http_listen`)
HTTP_DEFAULT_NAME = "localhost:8080"  # `pinsched sandbox` without --port


class Service:
    """A subprocess whose output lines are collected by a thread (so its pipes never fill)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, needle: str) -> int:
        """Index of the first output line containing *needle*, waiting for it."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(needle in line for line in self.lines) or self.proc.poll() is not None,
                timeout=START_TIMEOUT_S,
            )
            for index, line in enumerate(self.lines):
                if needle in line:
                    return index
        raise AssertionError(f"no {needle!r} (found={found}): " + "\n".join(self.lines[-30:]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def exports(lines: list[str]) -> dict[str, str]:
    """The `export NAME=value` lines the sandbox printed, as a mapping."""
    found = {}
    for line in lines:
        text = line.strip()
        if text.startswith("export "):
            name, _, value = text.removeprefix("export ").partition("=")
            found[name] = value
    return found


@dataclass(frozen=True)
class Live:
    """What the examples run with: their environment, and each default address (what a reader
    types) mapped to the live one on a free port (see tests/docs/examples.py)."""

    env: dict[str, str]
    addresses: dict[str, str]


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """Sandbox + daemon started as the README says; what the examples run with."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PINSCHED_")}
    venv_bin = str(Path(sys.executable).parent)
    base["PATH"] = f"{venv_bin}{os.pathsep}{base.get('PATH', '')}"
    with tempfile.TemporaryDirectory(prefix="pinsched-docs-") as tmp:
        work = Path(tmp)
        python = [sys.executable, "-m", "pinsched"]
        sandbox = Service([*python, "sandbox", "--seed-demo", "--port", "0"], base, work)
        daemon = None
        try:
            printed = sandbox.lines[sandbox.wait_for("  .venv/bin/pinsched serve") :]
            settings = exports(sandbox.lines)
            assert set(settings) == {
                "PINSCHED_PINTEREST_API_BASE",
                "PINSCHED_PINTEREST_CLIENT_ID",
                "PINSCHED_PINTEREST_CLIENT_SECRET",
            }, printed
            daemon = Service(
                [*python, "serve", "--db", str(work / "pinsched.db")],
                {
                    **base,
                    **settings,
                    "PINSCHED_LISTEN": "127.0.0.1:0",
                    "PINSCHED_HTTP_LISTEN": "127.0.0.1:0",
                },
                work,
            )
            ready = json.loads(daemon.lines[daemon.wait_for('"pinsched_ready"')])
            target = f"127.0.0.1:{ready['port']}"
            http = f"127.0.0.1:{ready['http_port']}"
            yield Live(
                env={**base, "PINSCHED_TARGET": target, "PINSCHED_HTTP_URL": f"http://{http}"},
                addresses={
                    DEFAULT_TARGET: target,
                    HTTP_DEFAULT: http,
                    HTTP_DEFAULT_NAME: http,
                    SANDBOX_DEFAULT: settings["PINSCHED_PINTEREST_API_BASE"],
                },
            )
        finally:
            if daemon is not None:
                daemon.stop()
            sandbox.stop()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_examples_run_as_written(document: Path, live: Live, tmp_path: Path) -> None:
    """Every marked example of the document runs and prints what the document shows."""
    blocks = collect(document)
    venv = Path(sys.executable).parents[1]
    (tmp_path / ".venv").symlink_to(venv, target_is_directory=True)  # `.venv/bin/pinsched`
    skipped = []
    for block in blocks:
        outcome = run_block(block, tmp_path, live.env, addresses=live.addresses)
        assert not outcome.problem, outcome.problem
        skipped += [outcome.skipped] if outcome.skipped else []
    if not blocks or len(skipped) == len(blocks):
        pytest.skip(f"no runnable example in {document.name}: {skipped}")


def test_the_readme_and_the_python_client_have_tested_examples() -> None:
    """The documents a newcomer follows first keep marked examples of both kinds."""
    readme = collect(ROOT / "README.md")
    client = collect(ROOT / "clients" / "python" / "README.md")
    assert any(b.lang == "sh" and "pinsched schedule" in b.text for b in readme)
    assert any(b.lang == "sh" and "--nonexistent" in b.text for b in readme)
    assert any(b.lang == "python" and b.expected_output for b in client)
