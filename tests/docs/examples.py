"""The documentation's runnable examples: how they are marked, collected, run and compared.

A fenced block is an example when the line before it (blank lines aside) is a marker comment:

    <!-- doctest -->                 run this block
    <!-- doctest: exit=3 -->         ... and expect this exit status (shell scripts)
    <!-- doctest: file=NAME -->      write the block to NAME in the document's working directory
    <!-- doctest: output -->         the expected stdout of the example just before it
    <!-- doctest: requires=grpcurl --> skip the block when that program is not installed

Shell blocks (`sh`, `bash`, `console`, `shell`) run in bash. A block whose lines start with `$ `
is a session: each command runs on its own (a line ending in `\\` continues it) and what follows
it, up to the next `$ `, is its expected output; without expected output it must exit 0. Any
other shell block is a script run with `set -e -o pipefail`. `python` blocks run with the test's
interpreter. Expected output matches when it equals the actual output with all whitespace runs
(line breaks included) made one space; `…` stands for any text. The blocks of one document run
in order, in one working directory, with the environment the test gives (PINSCHED_TARGET ...).

Examples keep the default addresses a reader uses (`127.0.0.1:50051`, the sandbox's
`http://127.0.0.1:8081/v5`); the test passes `addresses`, a map from each default address to the
live one on a free port, and the text of a block is rewritten with it before it runs. A new door
(an HTTP API, say) adds its default address and its live one there, and its `curl` examples run
as written.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

MARKER = re.compile(r"^\s*<!--\s*doctest(?::\s*(?P<opts>.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
SHELLS = frozenset({"sh", "bash", "console", "shell"})
ELLIPSIS = "…"


@dataclass
class Block:
    """One marked fenced block of a document."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    options: dict[str, str] = field(default_factory=dict)
    expected_output: str | None = None  # from a following `<!-- doctest: output -->` block

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def parse_options(text: str | None) -> dict[str, str]:
    """`exit=3 file=x.toml output` → {"exit": "3", "file": "x.toml", "output": ""}."""
    options: dict[str, str] = {}
    for word in (text or "").split():
        key, _, value = word.partition("=")
        options[key] = value
    return options


def collect(path: Path) -> list[Block]:
    """The marked blocks of the Markdown file at *path*, in order; an `output` block is attached
    to the example before it instead of being listed."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: dict[str, str] | None = None
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        fence = FENCE.match(lines[i])
        if marker:
            pending = parse_options(marker["opts"])
        elif fence:
            close = fence["fence"]
            end = next(
                (j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(close)),
                len(lines),
            )
            if pending is not None:
                indent = len(fence["indent"])
                text = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
                if "output" in pending:
                    if not blocks:
                        raise ValueError(f"{path}:{i + 1}: an output block with no example")
                    blocks[-1].expected_output = text
                else:
                    blocks.append(Block(path, i + 1, fence["lang"], text, pending))
            pending = None
            i = end
        elif lines[i].strip():
            pending = None
        i += 1
    return blocks


def normalise(text: str) -> str:
    """*text* with every whitespace run made one space, trimmed."""
    return " ".join(text.split())


def matches(expected: str, actual: str) -> bool:
    """Whether *actual* is *expected* up to whitespace, with `…` matching any text."""
    parts = [re.escape(p) for p in normalise(expected).split(ELLIPSIS)]
    return re.fullmatch(".*?".join(parts), normalise(actual), re.DOTALL) is not None


def session(text: str) -> list[tuple[str, str]]:
    """A `$ ` session as (command, expected output) pairs."""
    steps: list[tuple[str, list[str]]] = []
    continued = False
    for line in text.splitlines():
        if continued and steps:
            steps[-1] = (steps[-1][0] + "\n" + line, steps[-1][1])
        elif line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        continued = line.endswith("\\") and bool(steps) and not steps[-1][1]
    return [(command, "\n".join(out)) for command, out in steps]


@dataclass
class Outcome:
    """What running a block gave; `problem` is empty when it behaved as documented."""

    problem: str = ""
    skipped: str = ""


def _run(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False
    )


def _report(what: str, proc: subprocess.CompletedProcess[str], expected: str | None = None) -> str:
    text = f"{what}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    return text + (f"--- expected\n{expected}" if expected is not None else "")


def run_block(
    block: Block,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float = 60.0,
    addresses: Mapping[str, str] | None = None,
) -> Outcome:
    """Run *block* in *cwd* with *env*, its default *addresses* replaced by the live ones, and
    say whether it behaved as documented."""
    for default, live in (addresses or {}).items():
        block = replace(block, text=block.text.replace(default, live))
    if (tool := block.options.get("requires")) and shutil.which(tool, path=env.get("PATH")) is None:
        return Outcome(skipped=f"{block.where}: needs {tool}")
    if "file" in block.options:
        (cwd / block.options["file"]).write_text(block.text, encoding="utf-8")
        return Outcome()
    timeout_s = float(block.options.get("timeout", timeout_s))
    if block.lang == "python":
        script = cwd / f"example_{block.line}.py"
        script.write_text(block.text, encoding="utf-8")
        proc = _run([sys.executable, str(script)], cwd, env, timeout_s)
        return _judge(block, proc, block.where)
    if block.lang not in SHELLS:
        return Outcome(problem=f"{block.where}: cannot run a {block.lang!r} block")
    if not any(line.startswith("$ ") for line in block.text.splitlines()):
        proc = _run(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd, env, timeout_s)
        return _judge(block, proc, block.where)
    for command, expected in session(block.text):
        proc = _run(["bash", "-o", "pipefail", "-c", command], cwd, env, timeout_s)
        where = f"{block.where}: $ {command}"
        if not expected.strip():
            if proc.returncode != 0:
                return Outcome(problem=_report(where, proc))
        elif not matches(expected, proc.stdout + proc.stderr):
            return Outcome(problem=_report(where, proc, expected))
    return Outcome()


def _judge(block: Block, proc: subprocess.CompletedProcess[str], where: str) -> Outcome:
    want = int(block.options.get("exit") or 0)
    if proc.returncode != want:
        return Outcome(problem=_report(f"{where}: expected exit {want}", proc))
    if block.expected_output is not None and not matches(block.expected_output, proc.stdout):
        return Outcome(problem=_report(f"{where}: output differs", proc, block.expected_output))
    return Outcome()
