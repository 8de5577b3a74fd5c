"""Runs the chaos soak (`bench/soak.py`, owned by another engineer) when it exists, and reports
its lost / duplicate counts and lateness. Its interface is not ours: we run
`python -m bench.soak` (with `--quick` in a quick run), take the last JSON object it prints, and
pick the figures by name (keys containing `lost`, `dup`, `late`); anything else is shown as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import procs
from bench.context import Ctx
from bench.report import Row

SOAK = Path(__file__).resolve().parent / "soak.py"


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = obj
    return out


async def run(ctx: Ctx, timeout_s: float = 300.0) -> None:
    if not SOAK.exists():
        ctx.add(Row("soak", "chaos soak (bench/soak.py)", None, "", notes="not present: skipped"))
        return
    args = ["bench.soak", *(["--quick"] if ctx.quick else [])]
    proc = procs.spawn(args, "soak", ctx.workdir)
    timed_out = not await proc.wait_exit(timeout_s)
    if timed_out:
        await proc.stop()
    found: dict[str, Any] = {}
    for line in reversed(proc.lines()):
        text = line.strip()
        if text.startswith("{"):
            try:
                found = json.loads(text)
                break
            except json.JSONDecodeError:
                continue
    ctx.details["soak"] = {
        "returncode": proc.popen.returncode,
        "timed_out": timed_out,
        "result": found,
        "tail": proc.tail(20),
    }
    flat = _flatten(found)
    lost = next((v for k, v in flat.items() if "lost" in k.lower()), None)
    dup = next((v for k, v in flat.items() if "dup" in k.lower()), None)
    late = {k: v for k, v in flat.items() if "late" in k.lower()}
    ok = proc.popen.returncode == 0 and not timed_out
    context = ", ".join(
        f"{k} {v}"
        for k, v in flat.items()
        if isinstance(v, int | float)
        and "late" not in k.lower()
        and "lost" not in k.lower()
        and "dup" not in k.lower()
    )
    for name, value in (("lost jobs", lost), ("duplicate pins", dup)):
        num = float(value) if isinstance(value, int | float) else None
        ctx.add(
            Row(
                "soak",
                f"chaos soak: {name}",
                num,
                "",
                target="0",
                passed=None if num is None else (num == 0 and ok),
                notes=(context if name == "lost jobs" else "")
                if num is not None
                else f"exit {proc.popen.returncode}{', timed out' if timed_out else ''}; "
                "no figure found in its output (see details.soak)",
            )
        )
    if late:
        ctx.add(
            Row(
                "soak",
                "chaos soak: lateness",
                None,
                "",
                notes=", ".join(f"{k} {v}" for k, v in late.items()),
            )
        )
