"""`pinsched cluster status`: the daemons sharing a database, who publishes which account, and
the recent takeovers, read from the database itself (so it works while every daemon is down).

The database comes from `--db`, else `PINSCHED_DB`, else the `--config` file's `db_path`, like
`pinsched serve`'s (`database`); no other setting is read or checked. A member is *live* while
its heartbeat (`alive until`) is in the future; a lease is *held* while it has not expired. On
SQLite there is one daemon per file: the command says so and shows whether a daemon holds the
file now.

Failures (no such database, unreachable server, bad flags) are one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from pinsched.cli import errors as cli_errors
from pinsched.cli.requests import UsageError, arg_type, count_arg
from pinsched.config import Config
from pinsched.config_fields import FIELDS, ConfigError


def add_parser(sub: Any) -> None:
    """Register `cluster status` on the top-level subparsers *sub*."""
    cluster = sub.add_parser("cluster", help="daemons sharing a PostgreSQL database")
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "status", help="members, account leases and recent takeovers, read from the database"
    )
    p.add_argument(
        "--db", dest="db_path", metavar="DB", help=f"{FIELDS['db_path'].help} [env PINSCHED_DB]"
    )
    p.add_argument("--config", metavar="FILE", help="TOML file [env PINSCHED_CONFIG]")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--takeovers",
        type=arg_type(count_arg),
        default=20,
        metavar="N",
        help="how many recent takeovers (%(default)s; at most the 500 kept)",
    )
    p.add_argument(
        "--timeout",
        type=arg_type(_seconds),
        default=5.0,
        metavar="SECONDS",
        help="to connect (%(default)s)",
    )
    p.set_defaults(handler=status)


def database(flag: str | None, env: Mapping[str, str], config_path: str | None) -> str:
    """The daemon's `db_path` as `pinsched serve` resolves it (`--db` over `PINSCHED_DB` over
    the TOML file over the default), and nothing else: the other settings of the environment
    or the file are not checked here. ConfigError names the source of a bad value."""
    parse = FIELDS["db_path"].parse
    if flag is not None:
        return str(parse(flag, "--db"))
    if env.get("PINSCHED_DB", "").strip():
        return str(parse(env["PINSCHED_DB"], "PINSCHED_DB"))
    if config_path:
        try:
            with Path(config_path).open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(
                f"{config_path}: cannot read the config file: {exc.strerror}"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: invalid TOML: {exc}") from None
        if "db_path" in data:
            return str(parse(data["db_path"], f"{config_path}: db_path"))
    return Config().db_path


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 600:
        raise ValueError(f"must be more than 0 and at most 600 seconds, not {text}")
    return value


def status(args: argparse.Namespace) -> int:
    """Print the cluster's state; 0, or 2 when the database cannot be read."""
    from pinsched.cli.commands import run
    from pinsched.store.cluster_view import read_cluster
    from pinsched.store.opening import StoreOpenError
    from pinsched.store.schema import MIGRATIONS

    db = database(args.db_path, os.environ, args.config or os.environ.get("PINSCHED_CONFIG"))
    try:
        view = run(
            read_cluster(db, len(MIGRATIONS), takeovers=args.takeovers, timeout_s=args.timeout)
        )
    except StoreOpenError as exc:
        raise UsageError(str(exc)) from None
    data = as_data(view, now_us=int(time.time() * 1_000_000))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        render(data)
    return 0


def as_data(view: Any, *, now_us: int) -> dict[str, Any]:
    """*view* (`store.cluster_view.ClusterView`) as JSON-ready data, judged at *now_us*."""
    from pinsched.store.cluster_view import us_to_iso

    data: dict[str, Any] = {
        "backend": view.backend,
        "database": view.database,
        "at": us_to_iso(now_us),
        "members": [
            {
                "id": m.member_id,
                "started_at": us_to_iso(m.started_at_us),
                "alive_until": us_to_iso(m.alive_until_us),
                "live": m.alive_until_us > now_us,
            }
            for m in view.members
        ],
        "leases": [
            {
                "account_id": lease.account_id,
                "owner": lease.owner,
                "epoch": lease.epoch,
                "expires_at": us_to_iso(lease.expires_at_us),
                "held": lease.expires_at_us > now_us and bool(lease.owner),
            }
            for lease in view.leases
        ],
        "takeovers": [
            {
                "account_id": t.account_id,
                "previous_owner": t.previous_owner,
                "new_owner": t.new_owner,
                "epoch": t.epoch,
                "reason": t.reason,
                "at": us_to_iso(t.at_us),
            }
            for t in view.takeovers
        ],
    }
    if view.backend == "sqlite":
        data["single_daemon"] = True
        holder = view.holder
        data["daemon"] = {
            "pid": holder.pid if holder else None,
            "running": holder.running if holder else False,
        }
    return data


def _short(iso: str, digits: int = 0) -> str:
    """An `as_data` time for a table: UTC to the second (*digits* decimals kept)."""
    if iso == "-":
        return iso
    whole, dot, fraction = iso.rstrip("Z").partition(".")
    return whole + (dot + fraction[:digits] if digits and dot else "") + "Z"


def render(data: dict[str, Any]) -> None:
    """Print *data* (`as_data`) as tables, times to the second (takeovers to the millisecond)."""
    console = cli_errors.StdoutConsole(
        highlight=False, width=None if sys.stdout.isatty() else 400, soft_wrap=True
    )
    engine = "PostgreSQL" if data["backend"] == "postgresql" else "SQLite"
    console.print(
        Text.assemble((engine, "bold"), f" {data['database']}  (at {_short(data['at'])})")
    )
    if data["backend"] == "sqlite":
        daemon = data["daemon"]
        running = {True: "running", False: "not running", None: "unknown"}[daemon["running"]]
        pid = f"pid {daemon['pid']}" if daemon["pid"] is not None else "no pid recorded"
        console.print(
            "A SQLite database has a single daemon (one process holds the file's lock); "
            "several daemons need PostgreSQL."
        )
        console.print(f"daemon: {running} ({pid})")
        return
    members = data["members"]
    live = sum(1 for m in members if m["live"])
    console.print(f"\nmembers: {live} live of {len(members)}", style="bold")
    table = Table("id", "started", "alive until", "state", box=None, header_style="dim")
    for m in members:
        state = Text("live", style="green") if m["live"] else Text("gone", style="dim")
        table.add_row(m["id"], _short(m["started_at"]), _short(m["alive_until"]), state)
    console.print(table)
    leases = data["leases"]
    held = sum(1 for lease in leases if lease["held"])
    console.print(f"\nleases: {held} held of {len(leases)} accounts", style="bold")
    table = Table("account", "owner", "epoch", "expires", "state", box=None, header_style="dim")
    for lease in leases:
        state = Text("held", style="green") if lease["held"] else Text("expired", style="yellow")
        table.add_row(
            lease["account_id"],
            lease["owner"] or "-",
            str(lease["epoch"]),
            _short(lease["expires_at"]),
            state,
        )
    console.print(table)
    console.print(f"\nrecent takeovers: {len(data['takeovers'])}", style="bold")
    table = Table("at", "account", "from", "to", "epoch", "why", box=None, header_style="dim")
    for t in data["takeovers"]:
        table.add_row(
            _short(t["at"], 3),
            t["account_id"],
            t["previous_owner"],
            t["new_owner"],
            str(t["epoch"]),
            t["reason"],
        )
    console.print(table)
