"""The MCP tools: which RPC each one calls, its proto messages, its safety hints.

Each `ToolSpec` names a request and a response message: the tool's input and output schemas are
derived from them (`schema.message_schema`) and its description from the RPC's proto comment. A
call parses the arguments as proto JSON into the request, calls the daemon through the typed
client (`pinsched_client.AsyncClient`) and returns the response message. Nothing here can read
a token: the API never returns one, and `scrub` clears the token fields of every result anyway.

`schedule_pin` / `schedule_pins` always send a `request_id`: the agent's, or one derived from the
request's content (`derived_request_id`), so a retried tool call returns the same job instead of
creating a second one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Final

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from pinsched_client import AsyncClient

__all__ = ["TOOLS", "ToolSpec", "derived_request_id", "scrub"]

Call = Callable[[AsyncClient, Any], Awaitable[Message]]
JOBS: Final = "pinsched.v1.PinScheduler"
ACCOUNTS: Final = "pinsched.v1.AccountService"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One MCP tool: its messages, the RPC it documents itself with, and its hints."""

    name: str
    title: str
    request: type[Message]
    response: type[Message]
    call: Call
    doc: tuple[str, ...]  # full proto names whose comments make the description
    note: str = ""  # what the MCP layer adds to the RPC
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False  # reaches Pinterest
    keep: frozenset[str] = field(default_factory=frozenset)  # output-only fields taken as input


def derived_request_id(request: scheduler_pb2.SchedulePinRequest) -> str:
    """A `request_id` made from the request's content: the same pin, account and time give the
    same id, so the daemon answers a repeated call with the job it already has."""
    body = scheduler_pb2.SchedulePinRequest()
    body.CopyFrom(request)
    body.ClearField("request_id")
    canonical = json.dumps(
        MessageToDict(body, preserving_proto_field_name=True), sort_keys=True, separators=(",", ":")
    )
    return "mcp-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _with_request_id(request: scheduler_pb2.SchedulePinRequest) -> None:
    request.request_id = request.request_id or derived_request_id(request)


def scrub(message: Message) -> Message:
    """Clear the token fields of every Account in *message* (the API never sets them)."""
    accounts: list[account_pb2.Account] = []
    if isinstance(message, account_pb2.Account):
        accounts = [message]
    elif isinstance(message, account_pb2.ListAccountsResponse):
        accounts = list(message.accounts)
    for account in accounts:
        account.ClearField("access_token")
        account.ClearField("refresh_token")
    return message


async def _schedule_pin(client: AsyncClient, req: scheduler_pb2.SchedulePinRequest) -> Message:
    _with_request_id(req)
    return await client.schedule_pin(req)


async def _schedule_pins(
    client: AsyncClient, req: scheduler_pb2.BatchSchedulePinsRequest
) -> Message:
    for item in req.requests:
        _with_request_id(item)
    return await client.batch_schedule_pins(req.requests, validate_only=req.validate_only)


async def _list_jobs(client: AsyncClient, req: scheduler_pb2.ListJobsRequest) -> Message:
    return await client.list_jobs(
        account_id=req.account_id,
        states=req.states,
        board_id=req.board_id,
        planned_after=(
            req.planned_after.ToDatetime(tzinfo=UTC) if req.HasField("planned_after") else None
        ),
        planned_before=(
            req.planned_before.ToDatetime(tzinfo=UTC) if req.HasField("planned_before") else None
        ),
        page_size=req.page_size,
        page_token=req.page_token,
    )


async def _update_job(client: AsyncClient, req: scheduler_pb2.UpdateJobRequest) -> Message:
    return await client.update_job(
        req.job,
        list(req.update_mask.paths),
        expected_version=req.expected_version,
        nonexistent=req.nonexistent_time_policy,
        ambiguous=req.ambiguous_time_policy,
        validate_only=req.validate_only,
    )


def _set_paused(paused: bool) -> Call:
    async def call(client: AsyncClient, req: account_pb2.GetAccountRequest) -> Message:
        account = account_pb2.Account(id=req.account_id, paused=paused)
        return await client.update_account(account, ["paused"])

    return call


async def _preview(client: AsyncClient, req: scheduler_pb2.PreviewScheduleRequest) -> Message:
    return await client.preview_schedule(req)


async def _get_job(client: AsyncClient, req: scheduler_pb2.GetJobRequest) -> Message:
    return await client.get_job(req.job_id)


async def _explain_job(client: AsyncClient, req: scheduler_pb2.ExplainJobRequest) -> Message:
    return await client.explain_job(req.job_id)


async def _cancel_job(client: AsyncClient, req: scheduler_pb2.CancelJobRequest) -> Message:
    return await client.cancel_job(req.job_id, req.expected_version)


async def _retry_job(client: AsyncClient, req: scheduler_pb2.RetryJobRequest) -> Message:
    return await client.retry_job(req.job_id)


async def _list_free_slots(client: AsyncClient, req: scheduler_pb2.ListFreeSlotsRequest) -> Message:
    return await client.list_free_slots(
        req.account_id,
        not_before=req.not_before if req.HasField("not_before") else None,
        count=req.count,
    )


async def _list_accounts(client: AsyncClient, req: account_pb2.ListAccountsRequest) -> Message:
    return await client.list_accounts(page_size=req.page_size, page_token=req.page_token)


async def _get_account(client: AsyncClient, req: account_pb2.GetAccountRequest) -> Message:
    return await client.get_account(req.account_id)


_SAME_JOB: Final = (
    "When `request_id` is left out, it is derived from the content (account, pin, time, window), "
    "so calling again with the same arguments returns the same job and never publishes twice; "
    "give distinct `request_id`s to publish the same pin twice on purpose."
)
_S = scheduler_pb2
TOOLS: Final[tuple[ToolSpec, ...]] = (
    ToolSpec(
        "schedule_pin",
        "Schedule a pin",
        _S.SchedulePinRequest,
        job_pb2.Job,
        _schedule_pin,
        (f"{JOBS}.SchedulePin",),
        _SAME_JOB,
        idempotent=True,
        open_world=True,
    ),
    ToolSpec(
        "schedule_pins",
        "Schedule pins in one batch",
        _S.BatchSchedulePinsRequest,
        _S.BatchSchedulePinsResponse,
        _schedule_pins,
        (f"{JOBS}.BatchSchedulePins",),
        f"Each item is like schedule_pin. {_SAME_JOB}",
        idempotent=True,
        open_world=True,
    ),
    ToolSpec(
        "preview_schedule",
        "Preview a schedule",
        _S.PreviewScheduleRequest,
        _S.PreviewScheduleResponse,
        _preview,
        (f"{JOBS}.PreviewSchedule",),
        read_only=True,
    ),
    ToolSpec(
        "list_jobs",
        "List jobs",
        _S.ListJobsRequest,
        _S.ListJobsResponse,
        _list_jobs,
        (f"{JOBS}.ListJobs",),
        read_only=True,
    ),
    ToolSpec(
        "get_job",
        "Get a job",
        _S.GetJobRequest,
        job_pb2.Job,
        _get_job,
        (f"{JOBS}.GetJob",),
        read_only=True,
    ),
    ToolSpec(
        "explain_job",
        "Explain a job",
        _S.ExplainJobRequest,
        _S.JobExplanation,
        _explain_job,
        (f"{JOBS}.ExplainJob",),
        "Use it when a pin is not out yet: `summary` says why in one sentence.",
        read_only=True,
    ),
    ToolSpec(
        "update_job",
        "Update a job",
        _S.UpdateJobRequest,
        job_pb2.Job,
        _update_job,
        (f"{JOBS}.UpdateJob",),
        "Set `job.id` and the fields named in `update_mask`.",
        idempotent=True,
        open_world=True,
        keep=frozenset({"pinsched.v1.Job.id"}),
    ),
    ToolSpec(
        "cancel_job",
        "Cancel a job",
        _S.CancelJobRequest,
        job_pb2.Job,
        _cancel_job,
        (f"{JOBS}.CancelJob",),
        "A DELIVERED pin is deleted on Pinterest.",
        destructive=True,
        idempotent=True,
        open_world=True,
    ),
    ToolSpec(
        "retry_job",
        "Retry a failed job",
        _S.RetryJobRequest,
        job_pb2.Job,
        _retry_job,
        (f"{JOBS}.RetryJob",),
        idempotent=True,
        open_world=True,
    ),
    ToolSpec(
        "list_free_slots",
        "List free posting slots",
        _S.ListFreeSlotsRequest,
        _S.ListFreeSlotsResponse,
        _list_free_slots,
        (f"{JOBS}.ListFreeSlots",),
        "Schedule into them with schedule_pin's `next_free_slot`.",
        read_only=True,
    ),
    ToolSpec(
        "list_accounts",
        "List accounts",
        account_pb2.ListAccountsRequest,
        account_pb2.ListAccountsResponse,
        _list_accounts,
        (f"{ACCOUNTS}.ListAccounts",),
        "Tokens are never returned.",
        read_only=True,
    ),
    ToolSpec(
        "get_account",
        "Get an account",
        account_pb2.GetAccountRequest,
        account_pb2.Account,
        _get_account,
        (f"{ACCOUNTS}.GetAccount",),
        "Tokens are never returned.",
        read_only=True,
    ),
    ToolSpec(
        "pause_account",
        "Pause an account",
        account_pb2.GetAccountRequest,
        account_pb2.Account,
        _set_paused(True),
        ("pinsched.v1.Account.State.STATE_PAUSED", "pinsched.v1.Account.paused"),
        "Pauses publishing for the account; resume_account undoes it.",
        idempotent=True,
    ),
    ToolSpec(
        "resume_account",
        "Resume an account",
        account_pb2.GetAccountRequest,
        account_pb2.Account,
        _set_paused(False),
        ("pinsched.v1.Account.State.STATE_ACTIVE", "pinsched.v1.Account.paused"),
        "Resumes publishing for a paused account: its held jobs proceed.",
        idempotent=True,
    ),
)
