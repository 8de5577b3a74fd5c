"""The documentation test's own rules: marked blocks are found, outputs compared, drift caught."""

from __future__ import annotations

import os
from pathlib import Path

from tests.docs.examples import collect, matches, run_block, session

DOC = """# Title

<!-- doctest: exit=3 -->
```sh
exit 3
```

```sh
echo not marked
```

<!-- doctest -->
```python
print("hello")
```

<!-- doctest: output -->
```text
hello
```

<!-- doctest: file=settings.toml -->
```toml
a = 1
```
"""


def test_collect_finds_marked_blocks_and_attaches_outputs(tmp_path: Path) -> None:
    """Only marked blocks are collected, with their options, and an output block joins its
    example."""
    path = tmp_path / "doc.md"
    path.write_text(DOC)
    blocks = collect(path)
    assert [(b.lang, b.options) for b in blocks] == [
        ("sh", {"exit": "3"}),
        ("python", {}),
        ("toml", {"file": "settings.toml"}),
    ]
    assert blocks[1].expected_output == "hello\n"
    assert blocks[0].line == 4


def test_matching_ignores_wrapping_and_honours_the_ellipsis() -> None:
    """Expected output matches across re-wrapped lines, `…` matches any text, and a changed word
    does not match."""
    assert matches("INVALID_ARGUMENT: a b\nc d", "INVALID_ARGUMENT: a b c d\n")
    assert matches('…\n  "planned_at": "X",\n…', '{\n  "id": "1",\n  "planned_at": "X",\n}')
    assert not matches("state PENDING", "state QUEUED")
    assert not matches("a", "a b")


def test_session_splits_commands_with_continuations() -> None:
    """`$ ` lines start commands, a trailing backslash continues one, other lines are output."""
    steps = session("$ echo a \\\n    b\na b\n$ true\n")
    assert steps == [("echo a \\\n    b", "a b"), ("true", "")]


def test_drifted_or_failing_examples_are_reported(tmp_path: Path) -> None:
    """An example whose output drifted, whose exit status differs, or that fails, is a problem;
    the documented behaviour is not."""
    path = tmp_path / "doc.md"
    drifted = DOC.replace("```text\nhello", "```text\nbye")
    path.write_text(drifted + "\n<!-- doctest -->\n```sh\n$ echo one\ntwo\n$ false\n```\n")
    blocks = collect(path)
    env = dict(os.environ)
    assert run_block(blocks[0], tmp_path, env).problem == ""  # exit 3 as documented
    assert "output differs" in run_block(blocks[1], tmp_path, env).problem
    assert run_block(blocks[2], tmp_path, env).problem == ""
    assert (tmp_path / "settings.toml").read_text() == "a = 1\n"
    problem = run_block(blocks[3], tmp_path, env).problem
    assert "$ echo one" in problem
    assert "--- expected\ntwo" in problem


def test_default_addresses_are_replaced_by_live_ones(tmp_path: Path) -> None:
    """A block that names a default address runs against the live address the test gives."""
    path = tmp_path / "doc.md"
    path.write_text("<!-- doctest -->\n```sh\n$ echo 127.0.0.1:50051\n127.0.0.1:6\n```\n")
    (block,) = collect(path)
    env = dict(os.environ)
    live = {"127.0.0.1:50051": "127.0.0.1:6"}
    assert run_block(block, tmp_path, env, addresses=live).problem == ""
    assert run_block(block, tmp_path, env).problem != ""
