"""JSON Schemas of proto messages, derived from their descriptors and described by their comments.

The MCP tools take and return proto JSON (`google.protobuf.json_format`, proto field names), so
their schemas follow the proto3 JSON mapping: `Timestamp` is an RFC 3339 string, `Duration` a
string like `"7200s"`, `FieldMask` a comma-separated string, enums their value names, `bytes`
base64, 64-bit integers numbers on input and strings or numbers on output. Messages are inlined
(no `$ref`), which MCP clients handle best.

Rules read from the comments, the proto files' own conventions:
- a field whose comment starts with `Required.` is listed in `required` (input schemas);
- `Output only` fields are left out of input schemas (unless kept by name: `Job.id` for updates),
  `Input only` fields out of output schemas;
- secret fields (`Account.access_token`, `Account.refresh_token`) are left out of every schema.

Pure: no I/O apart from the comment index (`protodoc`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final, Literal

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from .protodoc import comment

__all__ = ["SECRET_FIELDS", "Direction", "message_schema", "structure_only"]

Direction = Literal["input", "output"]

SECRET_FIELDS: Final = frozenset(
    {
        "pinsched.v1.Account.access_token",
        "pinsched.v1.Account.refresh_token",
    }
)
MAX_DEPTH: Final = 12

_T = FieldDescriptor
_SCALARS: Final[dict[int, dict[str, Any]]] = {
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_DOUBLE: {"type": "number"},
    _T.TYPE_FLOAT: {"type": "number"},
    _T.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    **{
        t: {"type": "integer"}
        for t in (_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32, _T.TYPE_UINT32, _T.TYPE_FIXED32)
    },
}
_INT64: Final = (_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64, _T.TYPE_UINT64, _T.TYPE_FIXED64)
_WELL_KNOWN: Final[dict[str, dict[str, Any]]] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 instant with Z or an offset, e.g. 2026-12-01T14:00:00Z.",
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "description": "Seconds with an `s` suffix, e.g. 7200s for two hours.",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths, e.g. pin.title,scheduled_at.",
    },
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
}


def _describe(schema: dict[str, Any], text: str) -> dict[str, Any]:
    own = schema.get("description", "")
    if text and text != own:
        schema["description"] = f"{text}\n\n{own}" if own else text
    return schema


def _enum_schema(enum: EnumDescriptor, direction: Direction) -> dict[str, Any]:
    """Value names; an input never needs `*_UNSPECIFIED` (it is the same as leaving it out)."""
    values = [
        v for v in enum.values if direction == "output" or not v.name.endswith("_UNSPECIFIED")
    ]
    lines = [f"- {v.name}: {comment(f'{enum.full_name}.{v.name}')}".rstrip(": ") for v in values]
    return _describe(
        {"type": "string", "enum": [v.name for v in values]},
        "\n".join([comment(enum.full_name), *lines]).strip(),
    )


def _field_schema(
    field: FieldDescriptor, direction: Direction, keep: Collection[str], depth: int
) -> dict[str, Any]:
    if field.message_type is not None:
        entry = field.message_type
        if entry.GetOptions().map_entry:
            value = _field_schema(entry.fields_by_name["value"], direction, keep, depth)
            return {"type": "object", "additionalProperties": value}
        item = message_schema(entry, direction, keep=keep, _depth=depth + 1)
    elif field.enum_type is not None:
        item = _enum_schema(field.enum_type, direction)
    elif field.type in _INT64:
        item = (
            {"type": "integer"}
            if direction == "input"
            else {
                "type": ["string", "integer"],
                "description": "A 64-bit integer (a decimal string).",
            }
        )
    else:
        item = dict(_SCALARS[field.type])
    if field.is_repeated:
        item = {"type": "array", "items": item}
    return item


def _wanted(field: FieldDescriptor, text: str, direction: Direction, keep: Collection[str]) -> bool:
    if field.full_name in SECRET_FIELDS:
        return False
    if direction == "input":
        return field.full_name in keep or not text.startswith("Output only")
    return not text.startswith("Input only")


def message_schema(
    message: Descriptor,
    direction: Direction = "input",
    *,
    keep: Collection[str] = (),
    _depth: int = 0,
) -> dict[str, Any]:
    """The JSON Schema of *message* in proto JSON, with descriptions from the proto comments.

    *keep* names `Output only` fields to keep in an input schema (`pinsched.v1.Job.id`).
    """
    if message.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[message.full_name])
    if _depth > MAX_DEPTH:
        raise ValueError(f"{message.full_name}: messages nest deeper than {MAX_DEPTH}")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in message.fields:
        text = comment(field.full_name)
        if not _wanted(field, text, direction, keep):
            continue
        properties[field.name] = _describe(_field_schema(field, direction, keep, _depth), text)
        if direction == "input" and (text.startswith("Required.") or field.full_name in keep):
            required.append(field.name)
    notes = []
    for oneof in message.oneofs:
        members = [f"`{f.name}`" for f in oneof.fields if f.name in properties]
        if len(members) > 1:
            notes.append(
                f"Set at most one of {', '.join(members)} "
                f"({comment(oneof.full_name) or oneof.name})."
            )
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if direction == "input":
        schema["additionalProperties"] = False
        if required:
            schema["required"] = required
    # Messages of other packages (google.type.DateTime) are described by the field that uses
    # them, in pinsched's terms; their own general-purpose comments would only add noise.
    own = comment(message.full_name) if message.full_name.startswith("pinsched.") else ""
    return _describe(schema, "\n\n".join([own, *notes]).strip())


def structure_only(schema: dict[str, Any]) -> dict[str, Any]:
    """*schema* without the descriptions below its top level: the shape of a result, compact
    enough to list with every tool (a described Job is ~19 kB, its bare shape a fraction)."""

    def bare(node: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in node.items() if k != "description"}
        if "properties" in out:
            out["properties"] = {name: bare(p) for name, p in out["properties"].items()}
        for key in ("items", "additionalProperties"):
            if isinstance(out.get(key), dict):
                out[key] = bare(out[key])
        return out

    top = bare(schema)
    if "description" in schema:
        top["description"] = schema["description"]
    return top
