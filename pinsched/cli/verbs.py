"""The gRPC verbs of the command line: `schedule`, `preview`, `get`, `explain`, `list`, `update`,
`cancel`, `retry`, `watch`, `slots`, `import`, `accounts ...`, `webhooks list|redeliver`.

Each verb is `async (client, args, out)`: it builds its request (`cli.requests`), calls the daemon
through `pinsched_client.AsyncClient` and prints the reply (`cli.render`). `run_verb` opens the
client and turns a failed call into its exit code (`cli.errors`); `client_options` reads the
connection flags and the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import grpc
from rich.table import Table
from rich.text import Text

from pinsched.cli import errors as cli_errors
from pinsched.cli import video as cli_video
from pinsched.cli.render import Output, event_line, slot_text, styled_state
from pinsched.cli.requests import (
    UsageError,
    build_account,
    build_job_update,
    build_schedule_request,
    next_free_slot_arg,
    time_policies,
)
from pinsched.v1 import job_pb2, scheduler_pb2, webhook_pb2, webhook_pb2_grpc
from pinsched_client import (
    DEFAULT_TARGET,
    AsyncClient,
    check_api_token,
    format_duration,
    is_terminal,
    state_name,
)
from pinsched_client import format_timestamp as when

Verb = Callable[[AsyncClient, argparse.Namespace, "Output"], Awaitable[int | None]]

FAILED_STATES: Final = frozenset({job_pb2.Job.STATE_FAILED, job_pb2.Job.STATE_PERMANENTLY_FAILED})
WEBHOOK_STATES: Final = {
    "pending": webhook_pb2.WebhookDelivery.STATE_PENDING,
    "delivered": webhook_pb2.WebhookDelivery.STATE_DELIVERED,
    "dead": webhook_pb2.WebhookDelivery.STATE_DEAD,
}


async def schedule(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


async def preview(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


async def slots(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    not_before = next_free_slot_arg(args.not_before).not_before if args.not_before else None
    reply = await client.list_free_slots(args.account_id, not_before=not_before, count=args.count)
    if out.as_json:
        out.json(reply)
        return
    table = Table("slot (local)", "planned at (UTC)", "pins already in it", box=None)
    for s in reply.slots:
        table.add_row(slot_text(s.slot), when(s.planned_at), str(s.taken))
    out.console.print(table)


async def get(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.job(await client.get_job(args.job_id), history=True)


async def explain(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


async def list_jobs(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


async def update(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


async def cancel(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.job(await client.cancel_job(args.job_id, args.expected_version))


async def retry(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.job(await client.retry_job(args.job_id))


async def watch(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


async def import_file(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    from pinsched.cli import importer

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


async def accounts_create(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    account, _ = build_account(args, create=True)
    out.accounts([await client.create_account(args.account_id, account)], one=True)


async def accounts_get(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.accounts([await client.get_account(args.account_id)], one=True)


async def accounts_list(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    out.accounts([a async for a in client.iter_accounts()])


async def accounts_update(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    account, paths = build_account(args, create=False)
    out.accounts([await client.update_account(account, paths)], one=True)


async def accounts_delete(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
    await client.delete_account(args.account_id, force=args.force)
    if not out.as_json:
        out.console.print(f"deleted account {args.account_id}")


def _webhook_stub(client: AsyncClient) -> tuple[Any, dict[str, Any]]:
    """A WebhookService stub on *client*'s channel, and the per-call options (AsyncClient has no
    webhook methods yet)."""
    stub = webhook_pb2_grpc.WebhookServiceStub(client._connect())
    return stub, {"timeout": client.timeout_s, "metadata": client._metadata}


async def webhooks_list(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


async def webhooks_redeliver(client: AsyncClient, args: argparse.Namespace, out: Output) -> None:
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


def client_options(args: argparse.Namespace) -> dict[str, Any]:
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


async def run_verb(verb: Verb, args: argparse.Namespace, options: dict[str, Any]) -> int:
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
