"""The pinsched MCP server: tools, resources and a prompt over the typed client; its transports.

`build_server(client_factory)` returns an `mcp.server.Server` (the SDK's low-level server, so the
schemas are ours, derived from the protos). Its lifespan opens one `AsyncClient` to the daemon and
closes it at the end; every handler goes through that client, so the server sees exactly what the
API lets any client see (no tokens: the API never returns them).

Transports: `serve_stdio(server)` here, newline-delimited JSON-RPC on stdin/stdout (`pinsched
mcp`); `http.McpHttp(server)`, the streamable HTTP transport as an aiohttp handler for `/mcp`.

Resources: `pinsched://jobs/{id}` (a job with its history) and `pinsched://accounts/{id}`; the
accounts are also listed. Prompt `plan_week`: plan a week of pins for an account with the
preview tool, then schedule them in one batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import grpc
import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from pinsched import __version__
from pinsched_client import AsyncClient, error_details

from .calls import call_tool, error_result, input_schema, output_schema, to_json
from .protodoc import comment
from .tools import TOOLS, ToolSpec, scrub

__all__ = ["build_server", "serve_stdio"]

Ctx = ServerRequestContext[AsyncClient]
BY_NAME: Final = {spec.name: spec for spec in TOOLS}
RESOURCE_NOT_FOUND: Final = -32002  # the MCP spec's code for resources/read of an unknown URI
URI: Final = re.compile(r"^pinsched://(?P<kind>jobs|accounts)/(?P<id>[^/?#]+)$")
INSTRUCTIONS: Final = (
    "pinsched schedules Pinterest pins reliably. Check times with preview_schedule before "
    "scheduling; schedule_pin and schedule_pins never create a second job when a call is retried "
    "with the same arguments. Errors come back as tool errors with field_violations naming each "
    "bad field: fix those fields and call again. cancel_job on a DELIVERED pin deletes it on "
    "Pinterest."
)
PLAN_WEEK: Final = """\
Plan a week of Pinterest pins for the pinsched account `{account_id}`, starting {start}.
{brief}
1. Call get_account with account_id `{account_id}`: read its pacing (min_spacing, max_per_hour,
   max_per_day) and make sure its state is STATE_ACTIVE.
2. Call list_jobs with account_id `{account_id}` and states STATE_PENDING, STATE_QUEUED and
   STATE_RETRYING to see what is already planned that week; do not stack pins on those times.
   If the account has a posting schedule, call list_free_slots with account_id `{account_id}`
   (count: 7 times {per_day}): those are the times to fill, with `next_free_slot` in step 5.
3. Propose {per_day} pin(s) a day for 7 days, at times the audience is active (time zone
   {time_zone}): for each, a board_id, a title (at most 100 characters), a description (at most
   800), a link, alt_text and an image URL; use local_time with time_zone {{"id": "{time_zone}"}}
   and a delivery_window (for example "3600s") so pinsched can spread pins within the pacing.
4. Call preview_schedule for each pin and show me a table of the planned_at times; adjust any pin
   whose time is not what I would expect.
5. After I approve, call schedule_pins once with all the pins, each with its own request_id (for
   example "plan-{account_id}-<date>-<n>"), so retrying the call never creates duplicates.
6. Report each job id and planned_at; if a tool error names field_violations, fix those fields and
   retry only the failed call.
"""


def _tool(spec: ToolSpec) -> types.Tool:
    text = "\n\n".join(filter(None, [*(comment(name) for name in spec.doc), spec.note]))
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=text,
        input_schema=input_schema(spec),
        output_schema=output_schema(spec),
        annotations=types.ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=None if spec.read_only else spec.destructive,
            idempotent_hint=None if spec.read_only else spec.idempotent,
            open_world_hint=spec.open_world,
        ),
    )


async def _list_tools(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[_tool(spec) for spec in TOOLS])


async def _call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    spec = BY_NAME.get(params.name)
    if spec is None:
        return error_result(
            {
                "code": "NOT_FOUND",
                "message": f"unknown tool {params.name!r}; tools: {', '.join(BY_NAME)}",
            }
        )
    return await call_tool(ctx.lifespan_context, spec, params.arguments)


async def _list_resources(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    try:
        cursor = (params.cursor if params else None) or ""
        page = await ctx.lifespan_context.list_accounts(page_token=cursor)
    except grpc.aio.AioRpcError as err:
        raise MCPError(
            code=types.INTERNAL_ERROR, message="\n".join(error_details(err).lines())
        ) from None
    return types.ListResourcesResult(
        resources=[
            types.Resource(
                uri=f"pinsched://accounts/{a.id}",
                name=a.id,
                title=a.display_name or a.id,
                mime_type="application/json",
                description=comment("pinsched.v1.Account"),
            )
            for a in page.accounts
        ],
        next_cursor=page.next_page_token or None,
    )


async def _list_templates(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(
        resource_templates=[
            types.ResourceTemplate(
                uri_template="pinsched://jobs/{id}",
                name="job",
                mime_type="application/json",
                description=comment("pinsched.v1.Job"),
            ),
            types.ResourceTemplate(
                uri_template="pinsched://accounts/{id}",
                name="account",
                mime_type="application/json",
                description=comment("pinsched.v1.Account"),
            ),
        ]
    )


async def _read_resource(
    ctx: Ctx, params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    match = URI.match(str(params.uri))
    if match is None:
        raise MCPError(
            code=types.INVALID_PARAMS,
            message=f"unknown resource {params.uri!r}: "
            "expected pinsched://jobs/{id} or pinsched://accounts/{id}",
        )
    client = ctx.lifespan_context
    try:
        if match["kind"] == "jobs":
            found = to_json(await client.get_job(match["id"]))
        else:
            found = to_json(scrub(await client.get_account(match["id"])))
    except grpc.aio.AioRpcError as err:
        details = error_details(err)
        code = (
            RESOURCE_NOT_FOUND
            if err.code() == grpc.StatusCode.NOT_FOUND
            else (
                types.INVALID_PARAMS
                if err.code() == grpc.StatusCode.INVALID_ARGUMENT
                else types.INTERNAL_ERROR
            )
        )
        raise MCPError(
            code=code,
            message="\n".join(details.lines()),
            data={"uri": str(params.uri), "code": details.code.name},
        ) from None
    return types.ReadResourceResult(
        contents=[
            types.TextResourceContents(
                uri=str(params.uri), mime_type="application/json", text=json.dumps(found, indent=2)
            )
        ]
    )


PROMPT: Final = types.Prompt(
    name="plan_week",
    title="Plan a week of pins",
    description="Plan a week of pins for an account: read its pacing, preview each pin's "
    "delivery time, then schedule them all in one idempotent batch.",
    arguments=[
        types.PromptArgument(name="account_id", description="The pinsched account.", required=True),
        types.PromptArgument(
            name="start", description="First day, YYYY-MM-DD (default: tomorrow)."
        ),
        types.PromptArgument(
            name="time_zone", description="IANA zone of the audience (default: UTC)."
        ),
        types.PromptArgument(name="pins_per_day", description="How many pins a day (default 1)."),
        types.PromptArgument(name="brief", description="What the pins are about."),
    ],
)


async def _list_prompts(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=[PROMPT])


async def _get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    if params.name != PROMPT.name:
        raise MCPError(
            code=types.INVALID_PARAMS,
            message=f"unknown prompt {params.name!r}; prompts: {PROMPT.name}",
        )
    args = params.arguments or {}
    account_id = args.get("account_id", "").strip()
    if not account_id:
        raise MCPError(code=types.INVALID_PARAMS, message="account_id: required")
    per_day = args.get("pins_per_day", "1").strip() or "1"
    if not per_day.isdigit() or not 1 <= int(per_day) <= 24:
        raise MCPError(
            code=types.INVALID_PARAMS, message=f"pins_per_day: expected 1 to 24, got {per_day!r}"
        )
    text = PLAN_WEEK.format(
        account_id=account_id,
        start=args.get("start") or "tomorrow",
        per_day=per_day,
        time_zone=args.get("time_zone") or "UTC",
        brief=f"The pins are about: {args['brief']}\n" if args.get("brief") else "",
    )
    return types.GetPromptResult(
        description=PROMPT.description,
        messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
    )


def build_server(client_factory: Callable[[], AsyncClient]) -> Server[AsyncClient]:
    """The MCP server; each run (a stdio session, the HTTP manager) opens one client."""

    @asynccontextmanager
    async def lifespan(_: Server[AsyncClient]) -> AsyncIterator[AsyncClient]:
        async with client_factory() as client:
            yield client

    return Server[AsyncClient](
        "pinsched",
        version=__version__,
        title="pinsched",
        description="Schedules Pinterest pins reliably.",
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
        on_list_resources=_list_resources,
        on_list_resource_templates=_list_templates,
        on_read_resource=_read_resource,
        on_list_prompts=_list_prompts,
        on_get_prompt=_get_prompt,
    )


async def serve_stdio(server: Server[AsyncClient]) -> None:
    """Serve *server* on stdin/stdout until the client closes stdin."""
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
