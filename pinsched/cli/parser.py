"""The `pinsched` argument parser: every command, its flags, and what each one runs.

Each command sets `verb` (a gRPC verb in `cli.verbs`), `handler` (a local command in
`cli.commands`) or `sandbox`; connection flags given before the command are moved after it
(`cli.args`).
"""

from __future__ import annotations

import argparse
from typing import Any

from pinsched.cli import cluster as cli_cluster
from pinsched.cli import commands, verbs
from pinsched.cli import video as cli_video
from pinsched.cli.args import ShowVersion
from pinsched.cli.commands import SANDBOX_HELP
from pinsched.cli.requests import (
    AMBIGUOUS,
    NONEXISTENT,
    arg_type,
    count_arg,
)
from pinsched.cli.verbs import WEBHOOK_STATES, Verb
from pinsched.config import add_serve_arguments
from pinsched_client import (
    DEFAULT_TARGET,
    parse_duration,
    parse_states,
)


def _connection_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument("--target", help=f"daemon address [env PINSCHED_TARGET; {DEFAULT_TARGET}]")
    g.add_argument("--api-token", help="bearer token [env PINSCHED_API_TOKEN]")
    g.add_argument("--tls", action="store_true", help="use TLS with the system's CA roots")
    g.add_argument("--tls-ca", metavar="FILE", help="use TLS, trusting this CA bundle")
    g.add_argument("--tls-client-cert", metavar="FILE", help="client certificate (mutual TLS)")
    g.add_argument("--tls-client-key", metavar="FILE", help="its private key")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds per call (%(default)s)")
    g.add_argument("--json", action="store_true", help="print proto JSON")
    return p


def _pin_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("pin")
    g.add_argument("--board", help="board id (digits)")
    for flag in ("--board-section", "--title", "--description", "--link", "--alt-text"):
        g.add_argument(flag)
    g.add_argument("--dominant-color", metavar="HEX")
    g.add_argument("--image-url", action="append", metavar="URL", help="repeat for a carousel")
    g.add_argument("--image-file", metavar="PATH", help="a .jpg or .png sent inline")
    g.add_argument("--video-id", metavar="MEDIA_ID", help="a video uploaded to Pinterest")
    g.add_argument("--cover-image-url", metavar="URL", help="cover of a video")
    cli_video.add_flags(g)
    t = p.add_argument_group("time")
    instant = t.add_mutually_exclusive_group()
    instant.add_argument("--at", metavar="ISO8601", help="an instant with Z or an offset")
    instant.add_argument("--local", metavar="YYYY-MM-DDTHH:MM", help="a wall-clock time")
    instant.add_argument(
        "--next-free-slot",
        nargs="?",
        const="now",
        metavar="NOT_BEFORE",
        help="the account's next free posting slot (at or after NOT_BEFORE)",
    )
    zone = t.add_mutually_exclusive_group()
    zone.add_argument("--tz", metavar="ZONE", help="IANA zone of --local: America/New_York")
    zone.add_argument(
        "--utc-offset", metavar="+HH:MM", help="fixed offset of --local (--utc-offset=-04:00)"
    )
    t.add_argument("--window", type=arg_type(parse_duration), help="90s, 10m, 2h, 1d")
    t.add_argument("--nonexistent", choices=list(NONEXISTENT), help="--local in a DST gap")
    t.add_argument("--ambiguous", choices=list(AMBIGUOUS), help="--local in a DST overlap")
    t.add_argument(
        "--also-board",
        action="append",
        default=[],
        metavar="BOARD",
        help="the same pin on more boards, spaced by --board-interval (repeat)",
    )
    t.add_argument("--board-interval", type=arg_type(parse_duration), help="like 7d")
    return p


def _account_flags(p: argparse.ArgumentParser, *, create: bool) -> None:
    count = arg_type(count_arg)
    p.add_argument("--access-token", required=create, help="OAuth access token ('-': stdin)")
    p.add_argument("--refresh-token", help="OAuth refresh token ('-': stdin)")
    p.add_argument("--display-name")
    p.add_argument("--ad-account-id", help="business access: act as this ad account's member")
    p.add_argument(
        "--api-base",
        help="this account's Pinterest API base (e.g. Pinterest's API sandbox); '' = the daemon's",
    )
    p.add_argument("--min-spacing", type=arg_type(parse_duration), help="like 10m")
    p.add_argument("--max-per-hour", type=count, help="0 = no cap")
    p.add_argument("--max-per-day", type=count, help="0 = no cap")
    p.add_argument("--writes-per-minute", type=count, help="write budget (default 100)")
    p.add_argument(
        "--posting-schedule",
        metavar="SLOTS",
        help="weekly slots: 'Mon-Fri 09:00,12:30; Sat 10:00' ('' removes them)",
    )
    p.add_argument("--schedule-tz", metavar="ZONE", help="IANA zone of the slots (default UTC)")
    p.add_argument("--max-per-slot", type=count, help="pins per slot (default 1)")
    if not create:
        paused = p.add_mutually_exclusive_group()
        paused.add_argument("--pause", dest="pause", action="store_true", default=None)
        paused.add_argument("--resume", dest="pause", action="store_false")


def build_parser() -> argparse.ArgumentParser:
    """Return the `pinsched` parser; each command sets `handler`, `verb` or `sandbox`."""
    parser = argparse.ArgumentParser(
        prog="pinsched",
        description="Schedules Pinterest pins.",
        epilog="Connection flags (--target, --api-token, --tls, --tls-ca, --timeout, --json) "
        "go before or after the command.",
    )
    parser.add_argument("--version", action=ShowVersion)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection, pin_flags = _connection_flags(), _pin_flags()
    states = arg_type(lambda text: parse_states([text]))
    count = arg_type(count_arg)

    def verb(name: str, fn: Verb, help: str, *parents: argparse.ArgumentParser) -> Any:
        p = sub.add_parser(name, help=help, parents=[connection, *parents])
        p.set_defaults(verb=fn)
        return p

    serve = sub.add_parser("serve", help="run the daemon")
    config = sub.add_parser("config", help="configuration").add_subparsers(required=True)
    check = config.add_parser("check", help="print the effective config (secrets masked)")
    for p, handler in ((serve, commands.serve), (check, commands.config_check)):
        add_serve_arguments(p)
        p.add_argument("--config", metavar="FILE", help="TOML file [env PINSCHED_CONFIG]")
        p.set_defaults(handler=handler)
    sub.add_parser("sandbox", help=SANDBOX_HELP, add_help=False).set_defaults(sandbox=True)
    demo = sub.add_parser("demo", help="daemon + sandbox + a few pins, with the live feed")
    demo.add_argument("--pins", type=count, default=5, help="how many pins (%(default)s)")
    demo.add_argument("--keep-db", metavar="PATH", help="keep the database at PATH")
    demo.set_defaults(handler=commands.demo)
    health = sub.add_parser(
        "health", help="exit 0 when the daemon is SERVING (for healthchecks)", parents=[connection]
    )
    health.add_argument("--service", default="", help="a service name (default: the server)")
    health.set_defaults(handler=commands.health)
    mcp = sub.add_parser("mcp", help="MCP server on stdio, for AI agents", parents=[connection])
    mcp.set_defaults(handler=commands.mcp)
    cli_cluster.add_parser(sub)

    for name, fn in (("schedule", verbs.schedule), ("preview", verbs.preview)):
        p = verb(name, fn, f"{name} a pin", pin_flags)
        p.add_argument("--account", required=True)
        p.add_argument("--request-id", help="idempotency key (default: a new uuid4)")
        p.add_argument(
            "--retry-for",
            type=arg_type(parse_duration),
            metavar="DURATION",
            help="retry transient failures this long after the planned time "
            "(default: the window's end, else 1d)",
        )
        if name == "schedule":
            p.add_argument(
                "--validate-only",
                action="store_true",
                help="check everything, with Pinterest too; schedule nothing",
            )
    verb("get", verbs.get, "one job with its history").add_argument("job_id")
    verb("explain", verbs.explain, "why a job is not sent yet, and what happens next").add_argument(
        "job_id"
    )
    p = verb("list", verbs.list_jobs, "list jobs, newest first")
    p.add_argument("--account")
    p.add_argument("--state", type=states, action="extend", default=[], help="delivered, ...")
    p.add_argument("--board")
    p.add_argument("--page-size", type=count, default=0)
    p.add_argument("--page-token", default="")
    p.add_argument("--all", action="store_true", help="every page")
    p = verb("update", verbs.update, "change a job's pin, time or window", pin_flags)
    p.add_argument("job_id")
    p.add_argument(
        "--validate-only",
        action="store_true",
        help="check everything, with Pinterest too; change nothing",
    )
    p.add_argument("--expected-version", type=count, default=0)
    p = verb("cancel", verbs.cancel, "cancel a job (deletes a delivered pin)")
    p.add_argument("job_id")
    p.add_argument("--expected-version", type=count, default=0)
    verb("retry", verbs.retry, "send a failed job round again").add_argument("job_id")
    p = verb("watch", verbs.watch, "follow job events (resumes after a reconnect)")
    p.add_argument("--account")
    p.add_argument("--job", action="append", default=[], metavar="JOB_ID")
    p.add_argument("--state", type=states, action="extend", default=[])
    p.add_argument("--since", type=count, metavar="SEQ", help="replay the events after SEQ")
    p.add_argument("--count", type=count, default=0, metavar="N", help="stop after N events")
    p.add_argument(
        "--until-terminal",
        action="store_true",
        help="stop once every job seen (or each --job) is DELIVERED, FAILED, "
        "PERMANENTLY_FAILED or CANCELLED; exit 1 if one of them failed",
    )

    p = verb("slots", verbs.slots, "the account's next free posting slots")
    p.add_argument("account_id", metavar="ACCOUNT")
    p.add_argument("--not-before", metavar="ISO8601", help="default: now")
    p.add_argument("--count", type=count, default=0, help="1-100 (default 10)")
    p = verb(
        "import",
        verbs.import_file,
        "schedule the pins of a CSV or JSON Lines file, a result per row",
    )
    p.add_argument("file", metavar="FILE", help="CSV with a header, or JSON Lines (.jsonl)")
    p.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default="",
        help="default: from the file name (.csv, else JSON Lines)",
    )

    accounts = sub.add_parser("accounts", help="manage Pinterest accounts")
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, fn, help in (
        ("create", verbs.accounts_create, "add an account"),
        ("get", verbs.accounts_get, "show an account"),
        ("list", verbs.accounts_list, "list accounts"),
        ("update", verbs.accounts_update, "change tokens, pacing; pause or resume"),
        ("delete", verbs.accounts_delete, "delete an account"),
    ):
        p = actions.add_parser(name, help=help, parents=[connection])
        p.set_defaults(verb=fn)
        if name != "list":
            p.add_argument("account_id", metavar="ID")
        if name in ("create", "update"):
            _account_flags(p, create=name == "create")
        if name == "delete":
            p.add_argument("--force", action="store_true", help="cancel its active jobs first")

    webhooks = sub.add_parser("webhooks", help="inspect and re-send webhook deliveries")
    actions = webhooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("list", help="list deliveries, oldest first", parents=[connection])
    p.set_defaults(verb=verbs.webhooks_list)
    p.add_argument("--endpoint", metavar="URL", help="one endpoint (its configured URL)")
    p.add_argument("--state", choices=list(WEBHOOK_STATES))
    p.add_argument("--page-size", type=count, default=0)
    p.add_argument("--page-token", default="")
    p.add_argument("--all", action="store_true", help="every page")
    p.add_argument("--payload", action="store_true", help="include the JSON bodies (--json)")
    p = actions.add_parser(
        "redeliver", help="send dead deliveries again (same webhook-id)", parents=[connection]
    )
    p.set_defaults(verb=verbs.webhooks_redeliver)
    p.add_argument("ids", nargs="*", type=count, metavar="ID", help="delivery ids")
    p.add_argument("--endpoint", metavar="URL", help="every dead delivery of this endpoint")
    return parser
