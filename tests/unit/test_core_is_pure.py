"""`pinsched.core` keeps its rule (its `__init__` docstring): importing every core module, in a
fresh interpreter, loads no asyncio, aiohttp, grpc, sqlite or logging framework, and no pinsched
module outside core but the pure domain ones."""

from __future__ import annotations

import json
import subprocess
import sys

#: The existing pure domain modules core may use until they move into it.
PURE_DOMAIN = {"pinsched", "pinsched.core.accounts", "pinsched.core.errors", "pinsched.core.jobs"}
PURE_DOMAIN |= {"pinsched.core.retry", "pinsched.core.video"}
FORBIDDEN = {"asyncio", "aiohttp", "grpc", "sqlite3", "aiosqlite", "structlog"}

PROBE = """
import json, pkgutil, importlib, sys
import pinsched.core as core
for info in pkgutil.iter_modules(core.__path__):
    importlib.import_module(f"pinsched.core.{info.name}")
print(json.dumps(sorted(sys.modules)))
"""


def test_core_imports_nothing_impure() -> None:
    """No forbidden package and no impure pinsched module is loaded by importing core."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    assert not {m for m in loaded if m.split(".")[0] in FORBIDDEN}
    ours = {m for m in loaded if m.split(".")[0] == "pinsched"}
    assert {m for m in ours if not m.startswith("pinsched.core")} <= PURE_DOMAIN
    assert "pinsched.core.route" in ours  # the probe really imported core
