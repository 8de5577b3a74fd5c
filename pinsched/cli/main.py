"""The `pinsched` console script and `python -m pinsched`: parse, run the command, return its
exit code.

Exit codes: 0 OK; 2 bad local input (nothing was sent), bad configuration, or a database `serve`
cannot use (in use by another daemon, newer schema, corrupted, read-only); otherwise the
numeric gRPC status of the failed call (INVALID_ARGUMENT → 3, NOT_FOUND → 5, ...), with the
status message and every `google.rpc.BadRequest` field violation on stderr, once, in the CLI's
words; 14 no daemon at the target; 130 on Ctrl-C; 141 stdout closed (`cli.errors` owns these).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pinsched.cli import commands, verbs
from pinsched.cli import errors as cli_errors
from pinsched.cli.args import hoist_connection_flags
from pinsched.cli.parser import build_parser
from pinsched.cli.requests import (
    UsageError,
)
from pinsched.config import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pinsched` console script; returns the exit code."""
    parser = build_parser()
    argv = hoist_connection_flags(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "sandbox", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    try:
        if getattr(args, "sandbox", False):
            return commands.sandbox(extra)
        if hasattr(args, "verb"):
            return commands.run(verbs.run_verb(args.verb, args, verbs.client_options(args)))
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (UsageError, ConfigError) as exc:
        print(f"pinsched: error: {exc}", file=sys.stderr)
        return cli_errors.EXIT_USAGE
    except KeyboardInterrupt:
        return cli_errors.interrupted()
    except BrokenPipeError:
        return cli_errors.broken_pipe()


if __name__ == "__main__":
    sys.exit(main())
