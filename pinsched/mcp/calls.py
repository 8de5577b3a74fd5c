"""One tool call: arguments → request message → daemon → `CallToolResult`, errors included.

A call never raises. Arguments are first checked against the tool's input schema for shape (types,
unknown fields: what proto JSON cannot even carry), then parsed as proto JSON; everything else is
the daemon's to judge. Every failure becomes a tool error (`isError`) whose structured content is

    {"error": {"code": "INVALID_ARGUMENT", "message": "...",
               "field_violations": [{"field": "pin.board_id", "description": "..."}],
               "reason": "...", "precondition_violations": ["..."]}}

with the daemon's own `google.rpc` details, so the agent can correct its call. Local shape errors
use the same form and the API's field paths (`requests[3].pin.title`). Missing required fields are
left to the daemon, which names every one of them at once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, Final, cast

import grpc
import mcp_types as types
from google.protobuf.descriptor import Descriptor
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pinsched_client import AsyncClient, ErrorDetails, FieldViolation, error_details

from .schema import message_schema, structure_only
from .tools import ToolSpec, scrub

__all__ = ["call_tool", "error_result", "input_schema", "output_schema", "to_json"]

log = logging.getLogger(__name__)


@cache
def input_schema(spec: ToolSpec) -> dict[str, Any]:
    """The tool's input schema: its request message's, derived from the descriptor."""
    return message_schema(cast(Descriptor, spec.request.DESCRIPTOR), "input", keep=spec.keep)


@cache
def output_schema(spec: ToolSpec) -> dict[str, Any]:
    """The tool's output schema: the shape of its response message's proto JSON (the fields are
    described once, in the input schemas and the `pinsched://` resources' message comments)."""
    return structure_only(message_schema(cast(Descriptor, spec.response.DESCRIPTOR), "output"))


@cache
def _validator(spec: ToolSpec) -> Draft202012Validator:
    return Draft202012Validator(input_schema(spec))


def to_json(message: Message) -> dict[str, Any]:
    """*message* as proto JSON with the proto field names (the API's wire shape)."""
    return MessageToDict(message, preserving_proto_field_name=True)


def field_path(parts: Iterable[str | int]) -> str:
    """`["requests", 3, "pin", "title"]` → `requests[3].pin.title`."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _violations(error: ValidationError) -> list[FieldViolation]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        return [
            FieldViolation(field_path([*path, str(name)]), "unknown field")
            for name in error.instance
            if name not in known
        ]
    where = field_path(path) or "arguments"
    return [FieldViolation(where, error.message)]


def shape_violations(spec: ToolSpec, arguments: dict[str, Any]) -> list[FieldViolation]:
    """What proto JSON could not carry: wrong types, unknown fields, bad enum names."""
    found: list[FieldViolation] = []
    for error in sorted(_validator(spec).iter_errors(arguments), key=lambda e: e.json_path):
        if error.validator != "required":
            found += _violations(error)
    return found


_PARSE_AT: Final = re.compile(r"^(?P<text>.*) at \w+\.(?P<path>[\w.\[\]]+?)\.*$", re.DOTALL)


def _parse_error_violation(error: ParseError) -> FieldViolation:
    """`Failed to parse requests field: ... at BatchSchedulePinsRequest.requests[1].scheduled_at.`
    → `requests[1].scheduled_at`; older protobuf only nests `Failed to parse X field:` prefixes."""
    text, path = str(error), []
    match = _PARSE_AT.match(text)
    if match:
        text = match["text"]
    while text.startswith("Failed to parse ") and " field: " in text:
        name, text = text.removeprefix("Failed to parse ").split(" field: ", 1)
        path.append(name)
    return FieldViolation(match["path"] if match else field_path(path) or "arguments", text)


def error_result(details: ErrorDetails | dict[str, Any]) -> types.CallToolResult:
    """A tool error carrying *details* as text lines and as structured content."""
    if isinstance(details, ErrorDetails):
        payload: dict[str, Any] = {"code": details.code.name, "message": details.message}
        if details.field_violations:
            payload["field_violations"] = [
                {"field": v.field, "description": v.description} for v in details.field_violations
            ]
        if details.reason:
            payload["reason"] = details.reason
        if details.precondition_violations:
            payload["precondition_violations"] = list(details.precondition_violations)
        text = "\n".join(details.lines())
    else:
        payload, text = details, f"{details['code']}: {details['message']}"
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content={"error": payload}, is_error=True
    )


def invalid(message: str, violations: Sequence[FieldViolation]) -> types.CallToolResult:
    """A tool error like the daemon's INVALID_ARGUMENT, found before anything was sent."""
    return error_result(
        ErrorDetails(
            code=grpc.StatusCode.INVALID_ARGUMENT,
            message=message,
            field_violations=tuple(violations),
        )
    )


async def call_tool(
    client: AsyncClient, spec: ToolSpec, arguments: dict[str, Any] | None
) -> types.CallToolResult:
    """Run *spec* with *arguments*; any failure is a tool error, never an exception."""
    arguments = arguments or {}
    violations = shape_violations(spec, arguments)
    if violations:
        return invalid("the arguments do not match the tool's input schema", violations)
    request = spec.request()
    try:
        ParseDict(arguments, request)
    except ParseError as exc:
        return invalid("the arguments are not valid proto JSON", [_parse_error_violation(exc)])
    try:
        response = scrub(await spec.call(client, request))
    except grpc.aio.AioRpcError as err:
        return error_result(error_details(err))
    except Exception as exc:  # the server must outlive any one call
        log.exception("tool %s failed", spec.name)
        return error_result({"code": "INTERNAL", "message": f"{type(exc).__name__}: {exc}"})
    body = to_json(response)
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(body, indent=2))], structured_content=body
    )
