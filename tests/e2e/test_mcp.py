"""`pinsched mcp` as a subprocess, driven by the MCP SDK's own stdio client, against a real daemon
(in-process, real gRPC on loopback, real SQLite) and the sandbox standing in for Pinterest."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from google.type import timeofday_pb2
from jsonschema import Draft202012Validator
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched_client import AsyncClient, account_pb2
from tests.conftest import ACCESS, BOARD, REFRESH
from tests.e2e.procs import ROOT

TOKEN = "mcp-test-api-token"
READ_ONLY = {
    "preview_schedule",
    "list_jobs",
    "get_job",
    "list_accounts",
    "get_account",
    "list_free_slots",
    "explain_job",
}
TOOLS = READ_ONLY | {
    "schedule_pin",
    "schedule_pins",
    "update_job",
    "cancel_job",
    "retry_job",
    "pause_account",
    "resume_account",
}


@asynccontextmanager
async def mcp_session(
    port: int, errlog: Path, *, token: str | None = TOKEN
) -> AsyncIterator[ClientSession]:
    """`pinsched mcp --target 127.0.0.1:PORT` over stdio, initialised."""
    env = {"PINSCHED_API_TOKEN": token} if token else {}
    params = StdioServerParameters(
        command=sys.executable,
        cwd=ROOT,
        env=env,
        args=["-m", "pinsched", "mcp", "--target", f"127.0.0.1:{port}"],
    )
    with errlog.open("a") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


@pytest.fixture
async def daemon(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Daemon]:
    d = make_daemon(api_token=TOKEN)
    await d.start()
    async with AsyncClient(f"127.0.0.1:{d.port}", api_token=TOKEN) as client:
        await client.create_account(
            "acme",
            account_pb2.Account(display_name="Acme", access_token=ACCESS, refresh_token=REFRESH),
        )
    try:
        yield d
    finally:
        await d.stop(grace_s=1.0)


def pin_args(
    title: str = "Hello from an agent",
    *,
    board_id: str = BOARD,
    at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    when = at or datetime.now(UTC)
    return {
        "account_id": "acme",
        "pin": {
            "board_id": board_id,
            "title": title,
            "description": "Scheduled over MCP",
            "link": "https://example.com/post",
            "alt_text": "A test image",
            "media_source": {"image_url": {"url": "https://example.com/a.jpg"}},
        },
        "scheduled_at": when.isoformat().replace("+00:00", "Z"),
        **extra,
    }


async def wait_for_state(daemon: Daemon, job_id: str, state: str) -> None:
    """Follow the job's events (from the start of the log) until it reaches *state*."""
    async with (
        AsyncClient(f"127.0.0.1:{daemon.port}", api_token=TOKEN) as client,
        asyncio.timeout(20),
    ):
        async for event in client.watch(job_ids=[job_id], since_sequence=0):
            if event.job.State.Name(event.to_state) == state:
                return


def property_names(schema: Any) -> set[str]:
    """Every property name anywhere in a JSON Schema."""
    if isinstance(schema, list):
        return set().union(*map(property_names, schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    own = set(schema.get("properties", {}))
    return own.union(*map(property_names, schema.values()))


def json_keys(value: Any) -> set[str]:
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*map(json_keys, value.values()))
    if isinstance(value, list):
        return set().union(*map(json_keys, value))
    return set()


async def job_count(session: ClientSession) -> int:
    """How many jobs list_jobs shows (one page is enough here)."""
    page = ok(await session.call_tool("list_jobs", {"page_size": 1000}))
    return len(page.get("jobs", []))


def ok(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    assert isinstance(result.structured_content, dict)
    found: dict[str, Any] = result.structured_content["error"]
    return found


async def check_lists_every_tool_with_valid_derived_schemas(session: ClientSession) -> None:
    """tools/list offers each tool with valid JSON Schemas taken from the protos and the hints."""
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.output_schema is not None
        Draft202012Validator.check_schema(tool.output_schema)
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (tool.name in READ_ONLY), tool.name
        names = property_names(tool.input_schema) | property_names(tool.output_schema)
        assert not names & {"access_token", "refresh_token"}, tool.name
    assert tools["cancel_job"].annotations
    assert tools["cancel_job"].annotations.destructive_hint
    assert tools["schedule_pin"].annotations
    assert not tools["schedule_pin"].annotations.destructive_hint
    schedule = tools["schedule_pin"]
    assert schedule.description
    assert schedule.description.startswith("Validates the request")
    board = schedule.input_schema["properties"]["pin"]["properties"]["board_id"]
    assert board == {
        "type": "string",
        "description": "Required. The board the pin is created on; digits only (`^\\d+$`).",
    }
    Draft202012Validator(schedule.input_schema).validate(pin_args())
    # Job.id is output only, yet UpdateJob needs it: the update tool keeps it, and requires it.
    job = tools["update_job"].input_schema["properties"]["job"]
    assert "id" in job["required"]
    assert "state" not in job["properties"]


async def check_schedules_a_pin_that_reaches_delivered(
    session: ClientSession, daemon: Daemon, sandbox: Sandbox
) -> None:
    """schedule_pin creates a job that the daemon publishes on the sandbox; get_job shows it
    DELIVERED, and cancel_job then deletes the pin on Pinterest."""
    job = ok(await session.call_tool("schedule_pin", pin_args()))
    assert job["state"] == "STATE_PENDING"
    assert job["request_id"].startswith("mcp-")
    await wait_for_state(daemon, job["id"], "STATE_DELIVERED")
    delivered = ok(await session.call_tool("get_job", {"job_id": job["id"]}))
    assert delivered["state"] == "STATE_DELIVERED"
    assert [t["to_state"] for t in delivered["history"]][-1] == "STATE_DELIVERED"
    pin_id = delivered["pinterest_pin_id"]
    assert [p["title"] for p in sandbox.pins() if p["id"] == pin_id] == ["Hello from an agent"]
    cancelled = ok(await session.call_tool("cancel_job", {"job_id": job["id"]}))
    assert cancelled["state"] in ("STATE_CANCELLING", "STATE_CANCELLED")
    await wait_for_state(daemon, job["id"], "STATE_CANCELLED")
    assert pin_id not in [p["id"] for p in sandbox.pins()]


async def check_a_retried_schedule_pin_returns_the_same_job(session: ClientSession) -> None:
    """Calling schedule_pin twice with the same arguments (with or without a request_id) gives
    one job, not two."""
    at = datetime.now(UTC) + timedelta(days=2)
    before = await job_count(session)
    first = ok(await session.call_tool("schedule_pin", pin_args(at=at)))
    again = ok(await session.call_tool("schedule_pin", pin_args(at=at)))
    assert again["id"] == first["id"]
    mine = pin_args("Own id", at=at, request_id="agent-chosen-1")
    assert (
        ok(await session.call_tool("schedule_pin", mine))["id"]
        == ok(await session.call_tool("schedule_pin", mine))["id"]
    )
    assert await job_count(session) == before + 2
    # validate_only reaches the daemon through both tools: checked (the suite's image URLs are
    # outside its loopback-only network, so the checks cannot be made), nothing created.
    for tool, args in (
        ("schedule_pin", {**pin_args("Checked", at=at), "validate_only": True}),
        ("schedule_pins", {"requests": [pin_args("Checked", at=at)], "validate_only": True}),
    ):
        assert error(await session.call_tool(tool, args))["code"] == "UNAVAILABLE"
    assert await job_count(session) == before + 2
    batch = {"requests": [pin_args("Batch A", at=at), pin_args("Batch B", at=at)]}
    ids = [j["id"] for j in ok(await session.call_tool("schedule_pins", batch))["jobs"]]
    assert [j["id"] for j in ok(await session.call_tool("schedule_pins", batch))["jobs"]] == ids
    assert len(set(ids)) == 2


async def check_a_bad_board_id_is_a_structured_tool_error(session: ClientSession) -> None:
    """A non-numeric board id comes back as a tool error naming `pin.board_id`, as the API
    names it, and the server keeps serving."""
    before = await job_count(session)
    found = error(await session.call_tool("schedule_pin", pin_args(board_id="my-board")))
    assert found["code"] == "INVALID_ARGUMENT"
    assert "pin.board_id" in [v["field"] for v in found["field_violations"]]
    batch = {"requests": [pin_args(), pin_args("Second", board_id="x")]}
    found = error(await session.call_tool("schedule_pins", batch))
    assert "requests[1].pin.board_id" in [v["field"] for v in found["field_violations"]]
    assert await job_count(session) == before  # nothing was scheduled


BAD_ARGUMENTS = [
    ("schedule_pin", {"account_id": 7}, "account_id"),
    ("schedule_pin", {**pin_args(), "pin": "a pin"}, "pin"),
    ("schedule_pin", {**pin_args(), "colour": "red"}, "colour"),
    ("schedule_pin", {**pin_args(), "scheduled_at": "tomorrow"}, "scheduled_at"),
    ("schedule_pin", pin_args(access_token="pina_x"), "access_token"),
    ("list_jobs", {"page_size": "many"}, "page_size"),
    ("list_jobs", {"states": ["STATE_SOMETIMES"]}, "states[0]"),
    ("get_job", {"job_id": ["a"]}, "job_id"),
    ("explain_job", {"job_id": 5}, "job_id"),
    ("update_job", {"job": {"id": "x", "state": "STATE_DELIVERED"}}, "job.state"),
    ("schedule_pins", {"requests": [{"pin": {"board_id": 1}}]}, "requests[0].pin.board_id"),
    ("schedule_pins", {"requests": "all of them"}, "requests"),
]


async def check_bad_arguments_are_tool_errors_naming_the_field(session: ClientSession) -> None:
    """Arguments of the wrong shape never crash the server: each is a tool error naming the
    field, and the next call is served."""
    for tool, arguments, field in BAD_ARGUMENTS:
        found = error(await session.call_tool(tool, arguments))
        assert found["code"] == "INVALID_ARGUMENT", (tool, arguments)
        assert field in [v["field"] for v in found["field_violations"]], found
    assert ok(await session.call_tool("list_accounts", {}))["accounts"][0]["id"] == "acme"


async def check_daemon_errors_come_back_with_their_details(session: ClientSession) -> None:
    """Missing fields, unknown ids and wrong states are the daemon's errors, passed through."""
    found = error(await session.call_tool("schedule_pin", {}))
    assert found["code"] == "INVALID_ARGUMENT"
    assert {"account_id", "pin"} <= {v["field"] for v in found["field_violations"]}
    assert error(await session.call_tool("get_job", {"job_id": "nope"}))["code"] == "NOT_FOUND"
    job = ok(
        await session.call_tool("schedule_pin", pin_args(at=datetime.now(UTC) + timedelta(days=1)))
    )
    assert (
        error(await session.call_tool("retry_job", {"job_id": job["id"]}))["code"]
        == "FAILED_PRECONDITION"
    )
    why = ok(await session.call_tool("explain_job", {"job_id": job["id"]}))
    assert why["phase"] == "PHASE_WAITING_FOR_TIME"
    assert why["summary"].startswith("Waiting for its planned time")
    assert error(await session.call_tool("explain_job", {"job_id": "nope"}))["code"] == "NOT_FOUND"
    stale = {"job_id": job["id"], "expected_version": int(job["version"]) + 5}
    assert error(await session.call_tool("cancel_job", stale))["code"] == "ABORTED"
    assert error(await session.call_tool("no_such_tool", {}))["code"] == "NOT_FOUND"


async def check_accounts_never_show_tokens_and_pause_and_resume(session: ClientSession) -> None:
    """Account tools return no token field; pause_account/resume_account switch the state."""
    for result in (
        await session.call_tool("get_account", {"account_id": "acme"}),
        await session.call_tool("list_accounts", {}),
    ):
        assert not json_keys(ok(result)) & {"access_token", "refresh_token"}
        text = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
        assert ACCESS not in text
        assert REFRESH not in text
    paused = ok(await session.call_tool("pause_account", {"account_id": "acme"}))
    assert paused["state"] == "STATE_PAUSED"
    resumed = ok(await session.call_tool("resume_account", {"account_id": "acme"}))
    assert resumed["state"] == "STATE_ACTIVE"
    assert (
        error(await session.call_tool("pause_account", {"account_id": "ghost"}))["code"]
        == "NOT_FOUND"
    )


async def check_update_job_and_preview(session: ClientSession) -> None:
    """update_job changes the fields named in update_mask; preview_schedule persists nothing."""
    at = datetime.now(UTC) + timedelta(days=3)
    before = await job_count(session)
    preview = ok(
        await session.call_tool("preview_schedule", pin_args(at=at, delivery_window="3600s"))
    )
    assert preview["window_end"] > preview["scheduled_at"]
    assert await job_count(session) == before
    job = ok(await session.call_tool("schedule_pin", pin_args(at=at)))
    updated = ok(
        await session.call_tool(
            "update_job",
            {"job": {"id": job["id"], "pin": {"title": "New title"}}, "update_mask": "pin.title"},
        )
    )
    assert updated["pin"]["title"] == "New title"
    assert int(updated["version"]) > int(job["version"])


async def check_free_slots_then_next_free_slot(session: ClientSession, daemon: Daemon) -> None:
    """list_free_slots is FAILED_PRECONDITION without a posting schedule; with one it lists the
    slots in order, and schedule_pin with `next_free_slot` takes the first of them."""
    found = error(await session.call_tool("list_free_slots", {"account_id": "acme"}))
    assert found["code"] == "FAILED_PRECONDITION"
    found = error(await session.call_tool("list_free_slots", {"account_id": "acme", "count": 1000}))
    assert found["code"] == "INVALID_ARGUMENT"
    assert "count" in [v["field"] for v in found["field_violations"]]
    schedule = account_pb2.PostingSchedule(
        time_zone=account_pb2.PostingTimeZone(id="Europe/Paris"),
        slots=[
            account_pb2.PostingSlot(days=list(range(1, 8)), time=timeofday_pb2.TimeOfDay(hours=9))
        ],
    )
    async with AsyncClient(f"127.0.0.1:{daemon.port}", api_token=TOKEN) as client:
        await client.update_account(
            account_pb2.Account(id="acme", posting_schedule=schedule), ["posting_schedule"]
        )
    slots = ok(await session.call_tool("list_free_slots", {"account_id": "acme", "count": 3}))
    starts = [s["slot"]["start_time"] for s in slots["slots"]]
    assert len(starts) == 3
    assert starts == sorted(starts)
    assert all(s["slot"]["time_zone"] == "Europe/Paris" for s in slots["slots"])
    args = pin_args("Into a slot")
    del args["scheduled_at"]
    job = ok(await session.call_tool("schedule_pin", {**args, "next_free_slot": {}}))
    assert job["slot"]["start_time"] == starts[0]
    assert job["planned_at"] == starts[0]


async def check_resources_and_prompt(session: ClientSession) -> None:
    """Jobs and accounts read as pinsched:// resources; the plan_week prompt names the tools."""
    templates = (await session.list_resource_templates()).resource_templates
    assert {t.uri_template for t in templates} == {
        "pinsched://jobs/{id}",
        "pinsched://accounts/{id}",
    }
    listed = (await session.list_resources()).resources
    assert [str(r.uri) for r in listed] == ["pinsched://accounts/acme"]
    job = ok(
        await session.call_tool("schedule_pin", pin_args(at=datetime.now(UTC) + timedelta(days=1)))
    )
    read = await session.read_resource(f"pinsched://jobs/{job['id']}")
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert json.loads(content.text)["id"] == job["id"]
    account = await session.read_resource("pinsched://accounts/acme")
    assert isinstance(account.contents[0], types.TextResourceContents)
    body = json.loads(account.contents[0].text)
    assert body["id"] == "acme"
    assert not json_keys(body) & {"access_token", "refresh_token"}
    with pytest.raises(MCPError, match="NOT_FOUND"):
        await session.read_resource("pinsched://jobs/nope")
    with pytest.raises(MCPError, match="unknown resource"):
        await session.read_resource("pinsched://boards/1")
    prompt = await session.get_prompt(
        "plan_week", {"account_id": "acme", "time_zone": "Europe/Paris"}
    )
    text = prompt.messages[0].content
    assert isinstance(text, types.TextContent)
    assert "preview_schedule" in text.text
    assert "schedule_pins" in text.text
    assert "Europe/Paris" in text.text
    with pytest.raises(MCPError, match="account_id"):
        await session.get_prompt("plan_week", {})


async def test_tools_resources_and_prompt_are_listed(daemon: Daemon, tmp_path: Path) -> None:
    """An agent discovers every tool with valid schemas derived from the protos and its safety
    hints, reads jobs and accounts as resources, and gets the plan_week prompt."""
    async with mcp_session(daemon.port, tmp_path / "mcp.err") as session:
        await check_lists_every_tool_with_valid_derived_schemas(session)
        await check_resources_and_prompt(session)


async def test_an_agent_schedules_inspects_and_fixes_pins(
    daemon: Daemon, tmp_path: Path, sandbox: Sandbox
) -> None:
    """Over the SDK's stdio client a pin is scheduled and reaches DELIVERED on the sandbox, a
    retried call gets the same job, updates and previews work, and accounts pause and resume
    without ever showing a token."""
    async with mcp_session(daemon.port, tmp_path / "mcp.err") as session:
        await check_schedules_a_pin_that_reaches_delivered(session, daemon, sandbox)
        await check_a_retried_schedule_pin_returns_the_same_job(session)
        await check_update_job_and_preview(session)
        await check_accounts_never_show_tokens_and_pause_and_resume(session)
        await check_free_slots_then_next_free_slot(session, daemon)


async def test_errors_are_structured_tool_errors(daemon: Daemon, tmp_path: Path) -> None:
    """A bad board id, arguments of the wrong shape and the daemon's refusals all come back as
    tool errors naming the fields, and the server keeps serving."""
    async with mcp_session(daemon.port, tmp_path / "mcp.err") as session:
        await check_a_bad_board_id_is_a_structured_tool_error(session)
        await check_bad_arguments_are_tool_errors_naming_the_field(session)
        await check_daemon_errors_come_back_with_their_details(session)


async def test_without_the_api_token_calls_fail_as_tool_errors(
    daemon: Daemon, tmp_path: Path
) -> None:
    """An MCP server started without the daemon's API token answers UNAUTHENTICATED tool errors
    and stays up."""
    async with mcp_session(daemon.port, tmp_path / "mcp.err", token=None) as s:
        found = error(await s.call_tool("list_jobs", {}))
        assert found["code"] == "UNAUTHENTICATED"
        assert len((await s.list_tools()).tools) == len(TOOLS)


async def test_an_unreachable_daemon_is_a_tool_error(tmp_path: Path) -> None:
    """With no daemon at the target, a call is an UNAVAILABLE tool error and the server stays up."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    async with mcp_session(port, tmp_path / "mcp.err") as s:
        assert error(await s.call_tool("get_job", {"job_id": "x"}))["code"] == "UNAVAILABLE"
        assert len((await s.list_tools()).tools) == len(TOOLS)
