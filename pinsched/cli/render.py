"""What the command line prints: job and account tables, event lines, states in colour (rich), or
proto JSON with `--json` (`Output`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC
from typing import Any, Final

from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pinsched.cli import errors as cli_errors
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2, webhook_pb2
from pinsched_client import (
    format_duration,
    state_name,
)
from pinsched_client import format_timestamp as when

STATE_STYLES: Final = {
    "QUEUED": "blue",
    "SUBMITTED": "cyan",
    "DELIVERED": "bold green",
    "RETRYING": "yellow",
    "FAILED": "bold red",
    "PERMANENTLY_FAILED": "bold red",
    "CANCELLING": "magenta",
    "CANCELLED": "dim",
}
WEBHOOK_STATE_STYLES: Final = {"DELIVERED": "green", "PENDING": "yellow", "DEAD": "bold red"}


# -- output --------------------------------------------------------------------------------------


def styled_state(state: job_pb2.Job.State.ValueType) -> Text:
    """The short state name, coloured; `NEW` for the unspecified state a job is created from."""
    name = state_name(state) if state else "NEW"
    return Text(name, style=STATE_STYLES.get(name, ""))


def short_id(job_id: str) -> str:
    """The distinctive tail of an id (ids that start with a time share their prefix)."""
    return f"…{job_id[-8:]}" if len(job_id) > 9 else job_id


def event_line(event: job_pb2.JobEvent, *, short_ids: bool = False) -> Text:
    """One live-feed line: local time, sequence, job, account, FROM → TO, reason."""
    clock = event.time.ToDatetime(tzinfo=UTC).astimezone().strftime("%H:%M:%S.%f")[:-3]
    line = Text.assemble((clock, "dim"), "  ")
    if not short_ids:
        line.append(f"#{event.sequence}  ", style="dim")
    line.append(f"job {short_id(event.job_id) if short_ids else event.job_id}  ")
    if not short_ids:
        line.append(f"{event.account_id}  ", style="dim")
    line.append_text(styled_state(event.from_state)).append(" → ")
    line.append_text(styled_state(event.to_state))
    reason = cli_errors.cli_words(event.reason)
    return line.append(f"  {reason}", style="italic") if reason else line


def _error_text(err: job_pb2.JobError) -> str:
    category = job_pb2.JobError.Category.Name(err.category).removeprefix("CATEGORY_")
    return f"{category} http={err.http_status} code={err.pinterest_code} {err.message}"


class Output:
    """Where results go: proto JSON with `--json`, otherwise rich text; errors to stderr."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        # Piped output is not cut to 80 columns: tables keep their width, lines do not wrap.
        width = None if sys.stdout.isatty() else 400
        self.console = cli_errors.StdoutConsole(
            highlight=False, width=width, soft_wrap=width is not None
        )
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, message: Message, *, indent: int | None = 2) -> None:
        """Print *message* as proto JSON with the proto field names (one line without indent)."""
        text = MessageToJson(message, preserving_proto_field_name=True, indent=indent)
        print(text if indent is not None else text.replace("\n", ""), flush=True)

    def job(self, job: job_pb2.Job, *, history: bool = False) -> None:
        """Print a job as a key/value grid, then its history when asked."""
        if self.as_json:
            self.json(job)
            return
        rows: list[tuple[str, str | Text]] = [
            ("job", Text(job.id, style="bold")),
            ("state", styled_state(job.state)),
            ("account", job.account_id),
            ("board", job.pin.board_id),
            ("title", job.pin.title),
            ("scheduled at", when(job.scheduled_at)),
            ("window end", when(job.window_end)),
            ("planned at", when(job.planned_at)),
            ("attempts", str(job.attempts)),
            ("next attempt", when(job.next_attempt_at)),
            ("retry until", when(job.retry_until)),
            ("pinterest pin", job.pinterest_pin_id or "-"),
            ("late by", format_duration(job.late_by) if job.HasField("late_by") else "-"),
            ("last error", _error_text(job.last_error) if job.HasField("last_error") else "-"),
            ("version", str(job.version)),
        ]
        if job.HasField("slot"):
            rows.insert(8, ("slot", slot_text(job.slot)))
        if job.group_id:
            rows.insert(9 if job.HasField("slot") else 8, ("board group", job.group_id))
        grid = Table.grid(padding=(0, 2))
        for key, value in rows:
            grid.add_row(Text(key, style="dim"), value)
        self.console.print(grid)
        if history and job.history:
            table = Table("time", "seq", "change", "reason", box=None, header_style="dim")
            for t in job.history:
                change = styled_state(t.from_state).append(" → ")
                change.append_text(styled_state(t.to_state))
                table.add_row(when(t.time), str(t.sequence), change, t.reason)
            self.console.print(table)

    def jobs(self, jobs: Sequence[job_pb2.Job], next_page_token: str = "") -> None:
        """Print jobs as a table (a ListJobsResponse in JSON)."""
        if self.as_json:
            self.json(scheduler_pb2.ListJobsResponse(jobs=jobs, next_page_token=next_page_token))
            return
        table = Table("id", "account", "state", "planned at", "tries", "pin", "title", box=None)
        for j in jobs:
            cells: list[str | Text] = [j.id, j.account_id, styled_state(j.state)]
            cells += [when(j.planned_at)]
            table.add_row(*cells, str(j.attempts), j.pinterest_pin_id or "-", j.pin.title)
        self.console.print(table)
        if next_page_token:
            self.console.print(f"more: --page-token {next_page_token} (or --all)", style="dim")

    def accounts(self, accounts: Sequence[account_pb2.Account], *, one: bool = False) -> None:
        """Print accounts as a table (JSON: one Account, or a ListAccountsResponse)."""
        if self.as_json:
            self.json(accounts[0] if one else account_pb2.ListAccountsResponse(accounts=accounts))
            return
        headers = ["id", "state", "name", "min spacing", "per hour", "per day", "writes/min"]
        table = Table(*headers, "refresh token", box=None)
        for a in accounts:
            p = a.pacing
            state = account_pb2.Account.State.Name(a.state).removeprefix("STATE_")
            caps = [str(n) for n in (p.max_per_hour, p.max_per_day, p.writes_per_minute)]
            spacing = format_duration(p.min_spacing)
            table.add_row(a.id, state, a.display_name, spacing, *caps, str(a.has_refresh_token))
        self.console.print(table)
        if one and accounts:
            self._account_details(accounts[0])

    def _account_details(self, a: account_pb2.Account) -> None:
        """What Pinterest said about one account, its routing and why it is in its state."""

        def ts(t: Any, present: bool) -> str:
            return when(t) if present else "unknown"

        for label, value in (
            ("pinterest user", f"{a.username or '?'} ({a.account_type or '?'})"),
            ("last verified", ts(a.last_verified_time, a.HasField("last_verified_time"))),
            ("access token expires", ts(a.access_token_expiry, a.HasField("access_token_expiry"))),
            (
                "refresh token expires",
                ts(a.refresh_token_expiry, a.HasField("refresh_token_expiry")),
            ),
            ("ad account", a.ad_account_id or "-"),
            ("api base", a.api_base or "(daemon's)"),
            ("reason", a.state_reason or "-"),
        ):
            self.console.print(f"{label}: {value}", style="dim", highlight=False)

    def deliveries(
        self, deliveries: Sequence[webhook_pb2.WebhookDelivery], next_page_token: str = ""
    ) -> None:
        """Print webhook deliveries as a table (a ListWebhookDeliveriesResponse in JSON)."""
        if self.as_json:
            self.json(
                webhook_pb2.ListWebhookDeliveriesResponse(
                    deliveries=deliveries, next_page_token=next_page_token
                )
            )
            return
        table = Table(
            "id",
            "endpoint",
            "event",
            "message id",
            "state",
            "tries",
            "status",
            "next attempt / last error",
            box=None,
        )
        for d in deliveries:
            state = webhook_pb2.WebhookDelivery.State.Name(d.state).removeprefix("STATE_")
            detail = when(d.next_attempt_time) if d.HasField("next_attempt_time") else ""
            if d.last_error:
                detail = f"{detail}  {d.last_error}".strip()
            table.add_row(
                str(d.id),
                d.endpoint,
                d.event_type,
                d.message_id,
                Text(state, style=WEBHOOK_STATE_STYLES.get(state, "")),
                str(d.attempts),
                str(d.last_status or "-"),
                detail,
            )
        self.console.print(table)
        if next_page_token:
            self.console.print(f"more: --page-token {next_page_token} (or --all)", style="dim")


def slot_text(slot: job_pb2.JobSlot) -> str:
    t = slot.local_time
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hours:02d}:{t.minutes:02d} {slot.time_zone}"
