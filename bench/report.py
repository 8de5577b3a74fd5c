"""Result rows, the printed table, `bench/results/<timestamp>.json` and `bench/results/latest.md`.

A `Row` is one measured figure: pinsched's value, optionally a reference measured in the same
run (the echo server, APScheduler) and the ratio between them, and optionally a target with its
pass/fail. Rows without a target are context (latencies, CPU, the reference's own figures).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    group: str
    name: str
    value: float | None
    unit: str
    reference: float | None = None
    reference_name: str = ""
    ratio: float | None = None  # value / reference, or the ratio the target is about
    target: str = ""
    passed: bool | None = None
    #: Compared with the alternative (APScheduler): is pinsched ahead? None: not compared.
    ahead: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit in ("ms",) and abs(value) < 10:
        text = f"{value:.2f}"
    elif abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: ""}[passed]


def table_lines(rows: list[Row], *, markdown: bool) -> list[str]:
    head = [
        "group",
        "benchmark",
        "pinsched",
        "reference",
        "ratio",
        "target",
        "result",
        "vs APScheduler",
        "notes",
    ]
    body = []
    for r in rows:
        ref = f"{fmt(r.reference, r.unit)} ({r.reference_name})" if r.reference is not None else ""
        ratio = "" if r.ratio is None else f"{r.ratio:.3g}x"
        vs = {True: "ahead", False: "BEHIND", None: ""}[r.ahead]
        body.append(
            [
                r.group,
                r.name,
                fmt(r.value, r.unit),
                ref,
                ratio,
                r.target,
                verdict(r.passed),
                vs,
                r.notes,
            ]
        )
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "/") for c in line) + " |" for line in body]
        return out
    widths = [
        max(len(h), *(len(line[i]) for line in body)) if body else len(h)
        for i, h in enumerate(head)
    ]
    widths[-1] = min(widths[-1], 60)
    sep = "  "
    out = [sep.join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out.append(sep.join("-" * w for w in widths))
    for line in body:
        out.append(sep.join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return out


def summary_line(rows: list[Row]) -> str:
    met = sum(r.passed is True for r in rows)
    missed = sum(r.passed is False for r in rows)
    compared = [r for r in rows if r.ahead is not None]
    ahead = sum(bool(r.ahead) for r in compared)
    return (
        f"{met} targets met, {missed} missed; ahead of APScheduler on {ahead} of "
        f"{len(compared)} compared rows."
    )


def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=RESULTS.parent.parent,
            check=False,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain"],
                capture_output=True,
                text=True,
                cwd=RESULTS.parent.parent,
                check=False,
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    if os.environ.get("BENCH_GIT"):  # a run from a copy of the tree (no .git) says what it is
        commit, dirty = os.environ["BENCH_GIT"], False
    import sqlite3

    import grpc

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
        "sqlite": sqlite3.sqlite_version,
        "git": f"{commit}{'+dirty' if dirty else ''}",
    }


def write(rows: list[Row], meta: dict[str, Any], details: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = RESULTS / f"{stamp}.json"
    doc = _clean({"meta": meta, "rows": [asdict(r) for r in rows], "details": details})
    json_path.write_text(json.dumps(doc, indent=2, default=str, allow_nan=False))
    md = [f"# pinsched benchmarks — {meta.get('mode', '')} run {stamp}", ""]
    m = meta.get("machine", {})
    md.append(
        f"Machine: {m.get('cpus')} x {m.get('cpu_model')}, {m.get('memory_gib')} GiB, "
        f"Linux {m.get('kernel')}, Python {m.get('python')}, grpcio {m.get('grpcio')}, "
        f"SQLite {m.get('sqlite')}, git {m.get('git')}. Took {meta.get('seconds', 0):.0f} s."
    )
    md.append("")
    md += table_lines(rows, markdown=True)
    md += [
        "",
        summary_line(rows),
        "",
        "ratio = pinsched ÷ reference. Reference: the echo server (RPC ceiling) or "
        "APScheduler 3 measured in the same run.",
    ]
    for note in meta.get("notes", []):
        md += ["", note]
    latest = RESULTS / "latest.md"
    latest.write_text("\n".join(md) + "\n")
    return json_path, latest


def _clean(obj: Any) -> Any:
    """NaN and infinities become null (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj
