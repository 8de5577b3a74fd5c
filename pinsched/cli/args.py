"""Where the `pinsched` command line accepts its flags, and what `--version` says.

The connection flags (`--target`, `--api-token`, `--tls`, `--tls-ca`, `--tls-client-cert`,
`--tls-client-key`, `--timeout`, `--json`) belong to every client verb. Users put them before the
verb too (`pinsched --tls-ca ca.pem health`), so `hoist_connection_flags` moves the ones given
before the command to the end of the argument list, where the verb's parser reads them. Pure.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final

import pinsched

WITH_VALUE: Final = frozenset(
    {"--target", "--api-token", "--tls-ca", "--tls-client-cert", "--tls-client-key", "--timeout"}
)
SWITCHES: Final = frozenset({"--tls", "--json"})


def hoist_connection_flags(argv: Sequence[str]) -> list[str]:
    """*argv* with the connection flags that precede the command moved after it.

    Anything else before the command (`--help`, `--version`, an unknown flag) stops the scan
    and leaves *argv* as it is, so argparse reports it as usual.
    """
    moved: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag = argv[i].split("=", 1)[0]
        if flag in SWITCHES or (flag in WITH_VALUE and "=" in argv[i]):
            moved.append(argv[i])
            i += 1
        elif flag in WITH_VALUE and i + 1 < len(argv):
            moved += argv[i : i + 2]
            i += 2
        else:
            return list(argv)
    if not moved or i == len(argv):
        return list(argv)
    rest = list(argv[i:])
    if "--" in rest:  # keep positional arguments after `--` last
        cut = rest.index("--")
        return rest[:cut] + moved + rest[cut:]
    return rest + moved


def version_text() -> str:
    """`pinsched X.Y.Z` from the installed distribution (the package's own version otherwise)."""
    # Imported here: reading distribution metadata loads `email` and friends, which no other
    # command (the daemon's start-up least of all) needs.
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        number = dist_version("pinsched")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        number = pinsched.__version__
    return f"pinsched {number}"


class ShowVersion(argparse.Action):
    """`--version`: print `version_text()` and exit; the version is looked up only then."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(version_text())
        parser.exit()
