"""The import contract of the `pinsched` package, read from the source (AST, nothing imported):
no import cycle among its modules, each package's `__init__` states its rule, and the packages
keep the dependencies their rules promise."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "pinsched"
#: Generated code (pinsched/v1) is outside the contract.
EXCLUDED = ("pinsched.v1",)

Graph = dict[str, set[str]]


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module under *root* (the directory of *package*) by dotted name; a package is its
    `__init__`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if not name.startswith(EXCLUDED):
            found[name] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the nodes under `if TYPE_CHECKING:` (never executed, so not a dependency)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return skip


def _imported(tree: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    """Dotted names *tree* imports, anywhere (a function-level import is a dependency too)."""
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, base] if base else here)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path, package: str) -> Graph:
    """Module → the modules it imports, within *package*. Importing `a.b.c` also runs the
    `__init__` of `a.b`, so the packages on the way count as imported too (except the module's
    own enclosing packages, which are always loaded first)."""
    known = modules(root, package)
    graph: Graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        deps: set[str] = set()
        for target in _imported(tree, name, path.name == "__init__.py"):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in known and not name.startswith(prefix + ".") and prefix != name:
                    deps.add(prefix)
        graph[name] = deps
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


GRAPH = import_graph(ROOT, "pinsched")


def test_no_import_cycle() -> None:
    """No two pinsched modules import each other, directly or through others, not even through
    a function-level import."""
    found = cycles(GRAPH)
    described = ["; ".join(f"{m} -> {sorted(GRAPH[m] & set(c))}" for m in c) for c in found]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_the_cycle_finder_sees_lazy_and_package_cycles(tmp_path: Path) -> None:
    """The finder reports a cycle made by a function-level import and one through a package
    `__init__`, and ignores imports under `if TYPE_CHECKING:`."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("import pkg.a\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.leaf import X\n")
    (pkg / "sub" / "leaf.py").write_text("X = 1\n")
    (pkg / "c.py").write_text("from pkg.sub.leaf import X\n")
    (pkg / "sub" / "other.py").write_text("from .. import c\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.e\n"
    )
    (pkg / "e.py").write_text("import pkg.d\n")
    graph = import_graph(pkg, "pkg")
    assert "pkg.sub" in graph["pkg.c"]  # importing pkg.sub.leaf runs pkg/sub/__init__
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import other\n")
    assert sorted(cycles(import_graph(pkg, "pkg"))) == [
        ["pkg.a", "pkg.b"],
        ["pkg.c", "pkg.sub", "pkg.sub.other"],
    ]


PACKAGES = sorted(p.parent for p in ROOT.rglob("__init__.py") if p.parent != ROOT)


@pytest.mark.parametrize("package", [p for p in PACKAGES if p.name != "v1"], ids=lambda p: p.name)
def test_each_package_states_its_rule(package: Path) -> None:
    """Every package's `__init__` has a docstring with a `Rule:` paragraph: what may live
    there and what it may depend on."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    assert doc, f"{package.name}/__init__.py has no docstring"
    assert any(line.startswith("Rule:") for line in doc.splitlines()), (
        f"{package.name}/__init__.py: its docstring states no `Rule:`"
    )


def _importers_of(prefix: str) -> dict[str, set[str]]:
    return {
        m: {d for d in deps if d == prefix or d.startswith(prefix + ".")}
        for m, deps in GRAPH.items()
        if any(d == prefix or d.startswith(prefix + ".") for d in deps)
    }


#: package → packages/modules it must never import (its `__init__` rule says why).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "pinsched.api": (
        "pinsched.app",
        "pinsched.cli",
        "pinsched.dispatch",
        "pinsched.http",
        "pinsched.mcp",
        "pinsched.scheduler",
    ),
    "pinsched.http": ("pinsched.cli", "pinsched.dispatch", "pinsched.store"),
    "pinsched.mcp": (
        "pinsched.api",
        "pinsched.app",
        "pinsched.dispatch",
        "pinsched.service",
        "pinsched.store",
    ),
    "pinsched.store": (
        "pinsched.api",
        "pinsched.dispatch",
        "pinsched.pinterest",
        "pinsched.service",
    ),
    "pinsched.webhooks": ("pinsched.api", "pinsched.app", "pinsched.cli"),
    "pinsched.pinterest": (
        "pinsched.store",
        "pinsched.api",
        "pinsched.app",
        "pinsched.cli",
        "pinsched.dispatch",
    ),
    "pinsched.ops": ("pinsched.cli", "pinsched.app", "pinsched.http", "pinsched.mcp"),
    "pinsched.accounts": (
        "pinsched.api",
        "pinsched.app",
        "pinsched.cli",
        "pinsched.dispatch",
        "pinsched.http",
        "pinsched.mcp",
    ),
    "pinsched.checks": (
        "pinsched.api",
        "pinsched.app",
        "pinsched.cli",
        "pinsched.dispatch",
        "pinsched.http",
        "pinsched.mcp",
    ),
    "pinsched.media": (
        "pinsched.api",
        "pinsched.app",
        "pinsched.cli",
        "pinsched.http",
        "pinsched.mcp",
    ),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_keep_their_dependency_rules(package: str) -> None:
    """No module of *package* imports what its rule forbids (for example the webhooks get
    their job JSON injected instead of importing `pinsched.api`)."""
    offending = {
        m: sorted(d for d in deps if d.startswith(FORBIDDEN[package]))
        for m, deps in GRAPH.items()
        if m == package or m.startswith(package + ".")
    }
    assert not {m: d for m, d in offending.items() if d}


#: What the API may take from the store at run time: row types it converts and the timestamp
#: codec. Never `Store` itself: servicers only convert, the services read and write.
API_FROM_STORE: frozenset[str] = frozenset(
    {"pinsched.store.Event", "pinsched.store.JobFilter", "pinsched.store.codec"}
)


def _store_names(tree: ast.AST) -> Iterator[str]:
    """`pinsched.store…` names *tree* imports at run time (`from m import n` gives `m.n`)."""
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("pinsched.store"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full.startswith("pinsched.store"):
                    yield full


def test_the_api_holds_no_store() -> None:
    """No `pinsched.api` module imports `Store` (or anything of the store but the row types it
    converts and the codec) outside `if TYPE_CHECKING:`, so servicers reach the data through
    the services only."""
    found = {
        name: sorted(set(_store_names(ast.parse(path.read_text(encoding="utf-8")))))
        for name, path in modules(ROOT, "pinsched").items()
        if name == "pinsched.api" or name.startswith("pinsched.api.")
    }
    assert found  # the scan saw the API modules
    assert {m: [n for n in names if n not in API_FROM_STORE] for m, names in found.items()} == {
        m: [] for m in found
    }


def test_only_the_entry_points_and_the_demo_import_the_cli() -> None:
    """The command line is a client: outside `pinsched.cli`, only `python -m pinsched` and the
    demo's printing helpers import it."""
    importers = {m for m in _importers_of("pinsched.cli") if not m.startswith("pinsched.cli")}
    assert importers <= {"pinsched.__main__", "pinsched.demo", "pinsched.demo_paths"}


def test_the_sandbox_imports_nothing_of_the_daemon() -> None:
    """The sandbox stands in for Pinterest: none of its modules imports pinsched outside
    `pinsched.sandbox`."""
    outside = {
        m: sorted(d for d in deps if not d.startswith("pinsched.sandbox"))
        for m, deps in GRAPH.items()
        if m.startswith("pinsched.sandbox")
    }
    assert not {m: d for m, d in outside.items() if d}


def test_the_core_imports_only_the_core_and_the_standard_library() -> None:
    """`pinsched.core` is pure: every import in it (type-checking ones included) names the
    standard library or another `pinsched.core` module: no asyncio, aiohttp, grpc, sqlite,
    no store, clock or Pinterest client."""
    shell = {"asyncio", "sqlite3", "socket", "ssl", "threading", "subprocess", "time"}
    offending: dict[str, list[str]] = {}
    for path in sorted((ROOT / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                core = name == "pinsched.core" or name.startswith("pinsched.core.")
                stdlib = top in sys.stdlib_module_names and top not in shell
                if not (core or stdlib or top == "__future__"):
                    offending.setdefault(path.name, []).append(name)
    assert offending == {}
