"""How the `pinsched` command line reports a failure: once, in its own words, with an exit code.

Owns the translation of the daemon's hints from API names to the CLI's flags and verbs
(`nonexistent_time_policy` → `--nonexistent`, `CreateAccount` → `pinsched accounts create`,
`pin.title` → `--title`), the rendering of a failed call, and the one-line endings of the
failures that are not a gRPC status: a daemon that cannot be reached, a pipe closed by the
reader (`pinsched list | head`), Ctrl-C.

Exit codes: 0 OK; 1 `watch --until-terminal` saw a job end FAILED or PERMANENTLY_FAILED; 2 bad
local input or configuration (including an address `serve` cannot listen on); the numeric gRPC
status of a failed call (3 INVALID_ARGUMENT, 5 NOT_FOUND, 14 UNAVAILABLE: the daemon cannot be
reached, ...); 130 Ctrl-C; 141 output pipe closed (128 + SIGPIPE, what a shell reports for a
tool that SIGPIPE ended).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Final

import grpc
from rich.console import Console

from pinsched_client import ErrorDetails, error_details

EXIT_JOBS_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 14  # grpc.StatusCode.UNAVAILABLE
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 141

# Whole phrases first: the daemon's hints, as a CLI user would act on them.
PHRASES: Final = (
    (
        "choose with nonexistent_time_policy or send scheduled_at",
        "choose with --nonexistent shift-forward, or give --at",
    ),
    ("choose one with ambiguous_time_policy", "choose with --ambiguous earlier or later"),
    ("(SHIFT_FORWARD,", "(--nonexistent shift-forward,"),
    ("with CreateAccount", "with `pinsched accounts create`"),
    ("with UpdateAccount", "with `pinsched accounts update`"),
    ("then RetryJob", "then `pinsched retry JOB_ID`"),
)
# API field path → flag, for messages and violations that start with a field path.
FIELD_FLAGS: Final = {
    "local_time": "--local",
    "scheduled_at": "--at",
    "delivery_window": "--window",
    "nonexistent_time_policy": "--nonexistent",
    "ambiguous_time_policy": "--ambiguous",
    "account_id": "--account",
    "request_id": "--request-id",
    "expected_version": "--expected-version",
    "page_token": "--page-token",
    "page_size": "--page-size",
    "since_sequence": "--since",
    "pin.board_id": "--board",
    "pin.board_section_id": "--board-section",
    "pin.title": "--title",
    "pin.description": "--description",
    "pin.link": "--link",
    "pin.alt_text": "--alt-text",
    "pin.dominant_color": "--dominant-color",
    "pin.media_source": "--image-url/--image-file/--video-id",
    "account.access_token": "--access-token",
    "account.refresh_token": "--refresh-token",
    "account.display_name": "--display-name",
    "account.pacing.min_spacing": "--min-spacing",
    "account.pacing.max_per_hour": "--max-per-hour",
    "account.pacing.max_per_day": "--max-per-day",
    "account.pacing.writes_per_minute": "--writes-per-minute",
}
_FIELD_RE: Final = re.compile(
    r"^(?P<field>"
    + "|".join(re.escape(f) for f in sorted(FIELD_FLAGS, key=len, reverse=True))
    + r")(?P<rest>[.\[][^:\s]*)?:"
)


def cli_words(text: str) -> str:
    """*text* with the API's names replaced by the command line's flags and verbs."""
    for api, cli in PHRASES:
        text = text.replace(api, cli)
    return _FIELD_RE.sub(lambda m: f"{FIELD_FLAGS[m['field']]}:", text, count=1)


def error_lines(details: ErrorDetails) -> list[str]:
    """The lines to print for a failed call, in the CLI's words: the status with the message,
    or, when the message only lists the field violations, the status with one violation per
    line (never both)."""
    violations = [f"{v.field}: {v.description}" for v in details.field_violations]
    if violations and all(v in details.message for v in violations):
        if len(violations) == 1:
            return [f"{details.code.name}: {cli_words(violations[0])}"]
        head = f"{details.code.name}: {len(violations)} invalid fields"
        return [head, *(f"  {cli_words(v)}" for v in violations)]
    message = cli_words(details.message)
    out = [f"{details.code.name}: {message}" if message else details.code.name]
    out += [f"  {cli_words(v)}" for v in violations]
    out += [f"  {p}" for p in details.precondition_violations]
    return out


class JobsFailed(Exception):
    """`watch --until-terminal` ended with jobs in FAILED or PERMANENTLY_FAILED."""

    def __init__(self, failed: dict[str, str]) -> None:
        listed = ", ".join(f"{job_id} {state}" for job_id, state in sorted(failed.items()))
        noun = "job" if len(failed) == 1 else "jobs"
        super().__init__(
            f"pinsched: {len(failed)} {noun} did not publish: {listed} (see `pinsched get JOB_ID`)"
        )


def unreachable_line(target: str) -> str:
    """The one line printed when no daemon answers at *target*."""
    return (
        f"pinsched: cannot reach the daemon at {target}: is `pinsched serve` running there? "
        "(set --target or PINSCHED_TARGET)"
    )


def print_rpc_error(console: Console, err: grpc.aio.AioRpcError, target: str) -> int:
    """Print a failed call on *console* (stderr) and return its exit code."""
    details = error_details(err)
    if err.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (err.details() or ""):
        console.print(unreachable_line(target), style="bold red")
        return EXIT_UNAVAILABLE
    first, *rest = error_lines(details)
    console.print(first, style="bold red")
    for line in rest:
        console.print(line)
    return details.exit_code


class StdoutConsole(Console):
    """A rich Console whose closed pipe reaches `main` as BrokenPipeError (rich would exit 1)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def broken_pipe() -> int:
    """The reader of stdout went away (`| head`): stop quietly, as a SIGPIPE would."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def interrupted() -> int:
    """Ctrl-C: one line on stderr, exit 130."""
    print("pinsched: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED
