"""The `pinsched` command line: subcommands, their verbs, the parser and exit codes.

Owns the subcommands (`serve`, `config check`, `sandbox`, `demo`, `health`, `mcp`, and the gRPC
verbs `schedule`, `preview`, `get`, `list`, `update`, `cancel`, `retry`, `watch`, `accounts ...`,
`webhooks list|redeliver`, `slots`, `import` (in `pinsched.importer`)) and the event loop
policy. Flags become request messages in `cli_requests` (`build_schedule_request`,
`build_job_update`, `build_account`); what is printed is `cli_output` (rich, or proto JSON with
`--json`). uvloop
is installed here and nowhere else. The daemon, the sandbox and the demo are imported lazily when
their command runs; the gRPC verbs go through `pinsched_client.AsyncClient`.

Exit codes: 0 OK; 2 bad local input (nothing was sent), bad configuration, or a database `serve`
cannot use (in use by another daemon, newer schema, corrupted, read-only); otherwise the
numeric gRPC status of the failed call (INVALID_ARGUMENT → 3, NOT_FOUND → 5, ...), with the
status message and every `google.rpc.BadRequest` field violation on stderr, once, in the CLI's
words; 14 no daemon at the target; 130 on Ctrl-C; 141 stdout closed (`cli_errors` owns these).
Connection flags before the command are moved after it (`cli_args`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import grpc
from rich.table import Table
from rich.text import Text

from pinsched import cli_errors, cli_video
from pinsched.cli_args import hoist_connection_flags, version_text
from pinsched.cli_output import (
    Output,
    slot_text,
)
from pinsched.cli_output import (
    event_line as event_line,
)
from pinsched.cli_output import (
    short_id as short_id,
)
from pinsched.cli_output import (
    styled_state as styled_state,
)
from pinsched.cli_requests import (
    AMBIGUOUS,
    NONEXISTENT,
    arg_type,
    count_arg,
    next_free_slot_arg,
    time_policies,
)
from pinsched.cli_requests import (
    UsageError as UsageError,
)
from pinsched.cli_requests import (
    build_account as build_account,
)
from pinsched.cli_requests import (
    build_job_update as build_job_update,
)
from pinsched.cli_requests import (
    build_schedule_request as build_schedule_request,
)
from pinsched.config import Config, ConfigError, add_serve_arguments, load_config
from pinsched.v1 import job_pb2, scheduler_pb2, webhook_pb2, webhook_pb2_grpc
from pinsched_client import (
    DEFAULT_TARGET,
    AsyncClient,
    check_api_token,
    format_duration,
    is_terminal,
    parse_duration,
    parse_states,
    state_name,
)
from pinsched_client import format_timestamp as when

T = TypeVar("T")
Verb = Callable[[AsyncClient, argparse.Namespace, "Output"], Awaitable[int | None]]

EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
FAILED_STATES: Final = frozenset({job_pb2.Job.STATE_FAILED, job_pb2.Job.STATE_PERMANENTLY_FAILED})
WEBHOOK_STATES: Final = {
    "pending": webhook_pb2.WebhookDelivery.STATE_PENDING,
    "delivered": webhook_pb2.WebhookDelivery.STATE_DELIVERED,
    "dead": webhook_pb2.WebhookDelivery.STATE_DEAD,
}
SANDBOX_HELP: Final = "a local Pinterest-v5-compatible server with fault injection"


# -- gRPC verbs ----------------------------------------------------------------------------------


async def _schedule(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    request = build_schedule_request(args)
    await cli_video.upload(client, args)
    out.job(await client.schedule_pin(request))
    _checked_only(args, out)


def _checked_only(args: argparse.Namespace, out: Output) -> None:
    if args.validate_only and not out.as_json:
        out.console.print(
            "every check passed (with Pinterest too); nothing was changed (--validate-only)",
            style="dim",
        )


async def _preview(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    request = build_schedule_request(args)
    await cli_video.upload(client, args)
    reply = await client.preview_schedule(request)
    if out.as_json:
        out.json(reply)
        return
    out.console.print(f"planned at {when(reply.planned_at)}", style="bold")
    if reply.HasField("slot"):
        out.console.print(f"slot       {slot_text(reply.slot)}")
        return
    out.console.print(f"window     {when(reply.scheduled_at)} .. {when(reply.window_end)}")


async def _slots(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    not_before = next_free_slot_arg(args.not_before).not_before if args.not_before else None
    reply = await client.list_free_slots(args.account_id, not_before=not_before, count=args.count)
    if out.as_json:
        out.json(reply)
        return
    table = Table("slot (local)", "planned at (UTC)", "pins already in it", box=None)
    for s in reply.slots:
        table.add_row(slot_text(s.slot), when(s.planned_at), str(s.taken))
    out.console.print(table)


async def _get(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.job(await client.get_job(args.job_id), history=True)


async def _explain(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    x = await client.explain_job(args.job_id)
    if out.as_json:
        out.json(x)
        return
    E = scheduler_pb2.JobExplanation
    out.console.print(x.summary, highlight=False)
    rows: list[tuple[str, str | Text]] = [
        ("job", Text(x.job_id, style="bold")),
        ("state", styled_state(x.state)),
        ("phase", E.Phase.Name(x.phase).removeprefix("PHASE_").lower()),
    ]
    if x.hold_reason:
        rows.append(("held", E.HoldReason.Name(x.hold_reason).removeprefix("HOLD_REASON_")))
    if x.pacing_rule:
        rows.append(("pacing rule", E.PacingRule.Name(x.pacing_rule).removeprefix("PACING_RULE_")))
    if x.HasField("next_action_at"):
        rows.append(("next action", f"{when(x.next_action_at)} (in {format_duration(x.wait)})"))
    if x.HasField("retry_until"):
        rows.append(("retry until", when(x.retry_until)))
    grid = Table.grid(padding=(0, 2))
    for key, value in rows:
        grid.add_row(Text(key, style="dim"), value)
    out.console.print(grid)


async def _list(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    filters: dict[str, Any] = {
        "account_id": args.account or "",
        "states": args.state,
        "board_id": args.board or "",
        "page_size": args.page_size,
    }
    if args.all:
        out.jobs([job async for job in client.iter_jobs(**filters)])
    else:
        page = await client.list_jobs(**filters, page_token=args.page_token)
        out.jobs(page.jobs, page.next_page_token)


async def _update(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    job, paths = build_job_update(args)
    await cli_video.upload(client, args)
    policy = time_policies(args)
    updated = await client.update_job(
        job,
        paths,
        expected_version=args.expected_version,
        nonexistent=policy["nonexistent_time_policy"],
        ambiguous=policy["ambiguous_time_policy"],
        next_free_slot=(
            next_free_slot_arg(args.next_free_slot) if args.next_free_slot is not None else None
        ),
        validate_only=args.validate_only,
    )
    out.job(updated)
    _checked_only(args, out)


async def _cancel(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.job(await client.cancel_job(args.job_id, args.expected_version))


async def _retry(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.job(await client.retry_job(args.job_id))


async def _watch(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    # The stream reconnects on its own after a daemon restart, but a daemon that is not there
    # at all is reported, not waited for.
    await asyncio.wait_for(client._connect().channel_ready(), args.timeout)
    pending: dict[str, bool] = dict.fromkeys(args.job, False)  # job id → terminal yet?
    failed: dict[str, str] = {}  # job id → the failed state it ended in
    seen = 0
    since = 0 if args.since is None and args.until_terminal else args.since  # see ended jobs
    async for event in client.watch(args.account, args.job, args.state, since):
        if out.as_json:
            out.json(event, indent=None)
        else:
            out.console.print(event_line(event), soft_wrap=True)
            out.console.file.flush()
        seen += 1
        pending[event.job_id] = is_terminal(event.to_state)
        failed.pop(event.job_id, None)
        if event.to_state in FAILED_STATES:
            failed[event.job_id] = state_name(event.to_state)
        if args.count and seen >= args.count:
            return
        if args.until_terminal and all(pending.values()):
            if failed:
                raise cli_errors.JobsFailed(failed)
            return


async def _import(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    from pinsched import importer

    try:
        return await importer.command(
            client,
            Path(args.file),
            as_json=args.json,
            fmt=args.format,
            progress=sys.stderr.isatty(),
            write=lambda line: print(line, flush=False),
            note=lambda line: print(line, file=sys.stderr),
        )
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a CSV header with unknown columns: nothing was sent
        raise UsageError(str(exc)) from None


async def _accounts_create(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    account, _ = build_account(args, create=True)
    out.accounts([await client.create_account(args.account_id, account)], one=True)


async def _accounts_get(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.accounts([await client.get_account(args.account_id)], one=True)


async def _accounts_list(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.accounts([a async for a in client.iter_accounts()])


async def _accounts_update(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    account, paths = build_account(args, create=False)
    out.accounts([await client.update_account(account, paths)], one=True)


async def _accounts_delete(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    await client.delete_account(args.account_id, force=args.force)
    if not out.as_json:
        out.console.print(f"deleted account {args.account_id}")


def _webhook_stub(client: AsyncClient) -> tuple[Any, dict[str, Any]]:
    """A WebhookService stub on *client*'s channel, and the per-call options (AsyncClient has no
    webhook methods yet)."""
    stub = webhook_pb2_grpc.WebhookServiceStub(client._connect())
    return stub, {"timeout": client.timeout_s, "metadata": client._metadata}


async def _webhooks_list(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    stub, options = _webhook_stub(client)
    request = webhook_pb2.ListWebhookDeliveriesRequest(
        endpoint=args.endpoint or "",
        state=WEBHOOK_STATES.get(args.state or "", webhook_pb2.WebhookDelivery.STATE_UNSPECIFIED),
        page_size=args.page_size,
        page_token=args.page_token,
        include_payload=args.payload,
    )
    found: list[webhook_pb2.WebhookDelivery] = []
    while True:
        page = await stub.ListWebhookDeliveries(request, **options)
        found.extend(page.deliveries)
        if not (args.all and page.next_page_token):
            break
        request.page_token = page.next_page_token
    out.deliveries(found, "" if args.all else page.next_page_token)


async def _webhooks_redeliver(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    if bool(args.ids) == bool(args.endpoint):
        raise UsageError("give delivery ids or --endpoint (not both)")
    stub, options = _webhook_stub(client)
    reply = await stub.RedeliverWebhooks(
        webhook_pb2.RedeliverWebhooksRequest(delivery_ids=args.ids, endpoint=args.endpoint or ""),
        **options,
    )
    if out.as_json:
        out.json(reply)
    else:
        out.console.print(f"redelivering {reply.redelivered_count} webhook deliveries")


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    """AsyncClient keyword arguments from the connection flags and the environment."""
    token, source = args.api_token, "--api-token"
    if not token:
        token, source = os.environ.get("PINSCHED_API_TOKEN") or None, "PINSCHED_API_TOKEN"
    try:
        check_api_token(token or "", name=source)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options: dict[str, Any] = {
        "api_token": token,
        "timeout_s": args.timeout,
        "tls": args.tls,
    }
    files = {
        "tls_root_cert": ("--tls-ca", args.tls_ca),
        "tls_client_cert": ("--tls-client-cert", args.tls_client_cert),
        "tls_client_key": ("--tls-client-key", args.tls_client_key),
    }
    if bool(args.tls_client_cert) != bool(args.tls_client_key):
        raise UsageError("--tls-client-cert and --tls-client-key go together")
    for key, (flag, path) in files.items():
        try:
            options[key] = Path(path).read_bytes() if path else None
        except OSError as exc:
            raise UsageError(f"{flag} {path}: {exc.strerror or exc}") from None
    return options


async def _run_verb(verb: Verb, args: argparse.Namespace, options: dict[str, Any]) -> int:
    out = Output(as_json=args.json)
    target = args.target or os.environ.get("PINSCHED_TARGET") or DEFAULT_TARGET
    async with AsyncClient(target, **options) as client:
        try:
            code = await verb(client, args, out)
        except grpc.aio.AioRpcError as err:
            return cli_errors.print_rpc_error(out.errors, err, target)
        except cli_errors.JobsFailed as exc:  # `watch --until-terminal`
            out.errors.print(str(exc), style="bold red")
            return cli_errors.EXIT_JOBS_FAILED
        except TimeoutError:  # `watch` found no daemon within --timeout
            out.errors.print(cli_errors.unreachable_line(target), style="bold red")
            return cli_errors.EXIT_UNAVAILABLE
    return code or 0


# -- daemon, sandbox, demo -----------------------------------------------------------------------


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* on a uvloop event loop (the stdlib loop where uvloop is unavailable)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _load(args: argparse.Namespace) -> Config:
    return load_config(args, os.environ, args.config or os.environ.get("PINSCHED_CONFIG") or None)


def _serve(args: argparse.Namespace) -> int:
    config = _load(args)
    from pinsched.app import serve
    from pinsched.store import StoreOpenError

    try:
        _run(serve(config))
    except StoreOpenError as exc:  # locked, newer schema, corrupted, read-only, no directory
        print(f"pinsched: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _config_check(args: argparse.Namespace) -> int:
    """Validate exactly what `serve` validates before it opens anything (`preflight`), then
    print the effective configuration (secrets redacted) and what is allowed but unsafe."""
    from pinsched import security
    from pinsched.preflight import preflight

    config = _load(args)
    with contextlib.redirect_stdout(sys.stderr):  # its warnings: stdout is the JSON
        _run(preflight(config))
    print(json.dumps(config.redacted(), indent=2))
    for warning in security.warnings(config):
        print(f"pinsched: warning: {warning}", file=sys.stderr)
    return 0


async def _until_signal(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run *run(stop)*, with SIGINT/SIGTERM setting *stop*."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


def _sandbox(extra: Sequence[str]) -> int:
    from pinsched.sandbox import cli as sandbox_cli

    parser = argparse.ArgumentParser(prog="pinsched sandbox", description=SANDBOX_HELP)
    sandbox_cli.add_arguments(parser)
    args = parser.parse_args(extra)
    try:
        _run(_until_signal(lambda stop: sandbox_cli.run(args, stop)))
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:  # the port is taken
        raise UsageError(
            f"sandbox: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc} (choose another --port)"
        ) from None
    return 0


def _health_target(args: argparse.Namespace) -> str:
    """--target, else PINSCHED_HEALTH_LISTEN (the plain-text health port, works whatever TLS
    the API port uses), else PINSCHED_TARGET, else the port of PINSCHED_LISTEN on loopback."""
    if args.target:
        return str(args.target)
    health = os.environ.get("PINSCHED_HEALTH_LISTEN", "").strip()
    target = health or os.environ.get("PINSCHED_TARGET")
    if target and not health:
        return str(target)
    listen = health or os.environ.get("PINSCHED_LISTEN", "").strip()
    host, sep, port = listen.rpartition(":")
    if sep and port.isdigit():
        wildcard = host in ("", "0.0.0.0", "[::]", "::")
        return f"127.0.0.1:{port}" if wildcard else listen
    return DEFAULT_TARGET


def _health(args: argparse.Namespace) -> int:
    """`pinsched health`: 0 when the daemon answers SERVING, 1 otherwise (Docker HEALTHCHECK)."""
    return _run(
        _check_health(_health_target(args), _client_options(args), args.service, args.timeout)
    )


async def _check_health(
    target: str, options: dict[str, Any], service: str, timeout_s: float
) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.aio.insecure_channel(target)
    if options["tls"] or options["tls_root_cert"] or options["tls_client_cert"]:
        channel = grpc.aio.secure_channel(
            target,
            grpc.ssl_channel_credentials(
                root_certificates=options["tls_root_cert"],
                private_key=options["tls_client_key"],
                certificate_chain=options["tls_client_cert"],
            ),
        )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as err:
            print(
                f"pinsched: unhealthy: {target}: {err.code().name}: {err.details()}",
                file=sys.stderr,
            )
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _mcp(args: argparse.Namespace) -> int:
    """`pinsched mcp`: the MCP server on stdin/stdout, talking to the daemon like the verbs do."""
    options = _client_options(args)
    target = args.target or os.environ.get("PINSCHED_TARGET") or DEFAULT_TARGET
    try:
        from pinsched.mcp.server import build_server, serve_stdio
    except ImportError as exc:
        raise UsageError(
            f"pinsched mcp needs the MCP SDK ({exc}): pip install 'pinsched[mcp]'"
        ) from None
    _run(serve_stdio(build_server(lambda: AsyncClient(target, **options))))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pinsched.demo import run_demo

    try:
        _run(run_demo(pins=args.pins, keep_db=args.keep_db))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return 0


# -- parser --------------------------------------------------------------------------------------


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
    parser.add_argument("--version", action="version", version=version_text())
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
    for p, handler in ((serve, _serve), (check, _config_check)):
        add_serve_arguments(p)
        p.add_argument("--config", metavar="FILE", help="TOML file [env PINSCHED_CONFIG]")
        p.set_defaults(handler=handler)
    sub.add_parser("sandbox", help=SANDBOX_HELP, add_help=False).set_defaults(sandbox=True)
    demo = sub.add_parser("demo", help="daemon + sandbox + a few pins, with the live feed")
    demo.add_argument("--pins", type=count, default=5, help="how many pins (%(default)s)")
    demo.add_argument("--keep-db", metavar="PATH", help="keep the database at PATH")
    demo.set_defaults(handler=_demo)
    health = sub.add_parser(
        "health", help="exit 0 when the daemon is SERVING (for healthchecks)", parents=[connection]
    )
    health.add_argument("--service", default="", help="a service name (default: the server)")
    health.set_defaults(handler=_health)
    mcp = sub.add_parser("mcp", help="MCP server on stdio, for AI agents", parents=[connection])
    mcp.set_defaults(handler=_mcp)

    for name, fn in (("schedule", _schedule), ("preview", _preview)):
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
    verb("get", _get, "one job with its history").add_argument("job_id")
    verb("explain", _explain, "why a job is not sent yet, and what happens next").add_argument(
        "job_id"
    )
    p = verb("list", _list, "list jobs, newest first")
    p.add_argument("--account")
    p.add_argument("--state", type=states, action="extend", default=[], help="delivered, ...")
    p.add_argument("--board")
    p.add_argument("--page-size", type=count, default=0)
    p.add_argument("--page-token", default="")
    p.add_argument("--all", action="store_true", help="every page")
    p = verb("update", _update, "change a job's pin, time or window", pin_flags)
    p.add_argument("job_id")
    p.add_argument(
        "--validate-only",
        action="store_true",
        help="check everything, with Pinterest too; change nothing",
    )
    p.add_argument("--expected-version", type=count, default=0)
    p = verb("cancel", _cancel, "cancel a job (deletes a delivered pin)")
    p.add_argument("job_id")
    p.add_argument("--expected-version", type=count, default=0)
    verb("retry", _retry, "send a failed job round again").add_argument("job_id")
    p = verb("watch", _watch, "follow job events (resumes after a reconnect)")
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

    p = verb("slots", _slots, "the account's next free posting slots")
    p.add_argument("account_id", metavar="ACCOUNT")
    p.add_argument("--not-before", metavar="ISO8601", help="default: now")
    p.add_argument("--count", type=count, default=0, help="1-100 (default 10)")
    p = verb("import", _import, "schedule the pins of a CSV or JSON Lines file, a result per row")
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
        ("create", _accounts_create, "add an account"),
        ("get", _accounts_get, "show an account"),
        ("list", _accounts_list, "list accounts"),
        ("update", _accounts_update, "change tokens, pacing; pause or resume"),
        ("delete", _accounts_delete, "delete an account"),
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
    p.set_defaults(verb=_webhooks_list)
    p.add_argument("--endpoint", metavar="URL", help="one endpoint (its configured URL)")
    p.add_argument("--state", choices=list(WEBHOOK_STATES))
    p.add_argument("--page-size", type=count, default=0)
    p.add_argument("--page-token", default="")
    p.add_argument("--all", action="store_true", help="every page")
    p.add_argument("--payload", action="store_true", help="include the JSON bodies (--json)")
    p = actions.add_parser(
        "redeliver", help="send dead deliveries again (same webhook-id)", parents=[connection]
    )
    p.set_defaults(verb=_webhooks_redeliver)
    p.add_argument("ids", nargs="*", type=count, metavar="ID", help="delivery ids")
    p.add_argument("--endpoint", metavar="URL", help="every dead delivery of this endpoint")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pinsched` console script; returns the exit code."""
    parser = build_parser()
    argv = hoist_connection_flags(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "sandbox", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    try:
        if getattr(args, "sandbox", False):
            return _sandbox(extra)
        if hasattr(args, "verb"):
            return _run(_run_verb(args.verb, args, _client_options(args)))
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (UsageError, ConfigError) as exc:
        print(f"pinsched: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return cli_errors.interrupted()
    except BrokenPipeError:
        return cli_errors.broken_pipe()


if __name__ == "__main__":
    sys.exit(main())
