"""JSON Schemas for the OpenAPI document of the HTTP door (`pinsched.http.openapi`), read from
proto descriptors: each message as the schema of its proto3 JSON form (proto field names; int64
as a decimal string; enums by name; Timestamp, Duration and FieldMask as strings), the proto
comments as descriptions (`comments`), and one operation per HTTP route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from pinsched.http.routes import Route

_INT64: Final = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_INT32: Final = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_SFIXED32,
    }
)
_WELL_KNOWN: Final[Mapping[str, dict[str, Any]]] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339, e.g. 2026-03-01T09:00:00Z",
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "description": "seconds with an `s` suffix, e.g. 3600s",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "comma-separated field paths, snake_case or lowerCamelCase",
    },
}


def comments(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Full name of each service, method, message, field, enum and enum value → its leading
    comment."""
    out: dict[str, str] = {}
    for file in fds.file:
        names: dict[tuple[int, ...], str] = {}
        prefix = file.package
        for i, m in enumerate(file.message_type):
            _message_names(names, m, (4, i), prefix)
        for i, e in enumerate(file.enum_type):
            _enum_names(names, e, (5, i), prefix)
        for i, s in enumerate(file.service):
            names[(6, i)] = f"{prefix}.{s.name}"
            for j, meth in enumerate(s.method):
                names[(6, i, 2, j)] = f"{prefix}.{s.name}.{meth.name}"
        for loc in file.source_code_info.location:
            name = names.get(tuple(loc.path))
            if name and loc.leading_comments.strip():
                text = " ".join(line.strip() for line in loc.leading_comments.strip().splitlines())
                out[name] = text.replace("  ", " ")
    return out


Paths = dict[tuple[int, ...], str]


def _message_names(
    names: Paths, m: descriptor_pb2.DescriptorProto, path: tuple[int, ...], scope: str
) -> None:
    full = f"{scope}.{m.name}"
    names[path] = full
    for i, f in enumerate(m.field):
        names[(*path, 2, i)] = f"{full}.{f.name}"
    for i, n in enumerate(m.nested_type):
        _message_names(names, n, (*path, 3, i), full)
    for i, e in enumerate(m.enum_type):
        _enum_names(names, e, (*path, 4, i), full)


def _enum_names(
    names: Paths, e: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], scope: str
) -> None:
    names[path] = f"{scope}.{e.name}"
    for i, v in enumerate(e.value):
        names[(*path, 2, i)] = f"{scope}.{e.name}.{v.name}"


class SchemaBuilder:
    def __init__(self, docs: Mapping[str, str]) -> None:
        self.docs = docs
        self.schemas: dict[str, Any] = {}

    def _doc(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        if name in self.docs:
            schema["description"] = self.docs[name]
        return schema

    def enum(self, enum: EnumDescriptor) -> dict[str, Any]:
        ref = enum.full_name
        if ref not in self.schemas:
            values = [v.name for v in enum.values]
            lines = [
                f"{v.name}: {self.docs[f'{ref}.{v.name}']}"
                for v in enum.values
                if f"{ref}.{v.name}" in self.docs
            ]
            schema = self._doc({"type": "string", "enum": values}, ref)
            if lines:
                schema["description"] = "\n".join(
                    filter(None, [schema.get("description", ""), *lines])
                )
            self.schemas[ref] = schema
        return {"$ref": f"#/components/schemas/{ref}"}

    def message(self, message: Descriptor) -> dict[str, Any]:
        ref = message.full_name
        if ref in _WELL_KNOWN:
            return dict(_WELL_KNOWN[ref])
        if ref not in self.schemas:
            self.schemas[ref] = {}  # placeholder: recursive messages
            props = {f.name: self.field(f) for f in message.fields}
            self.schemas[ref] = self._doc(
                {"type": "object", "properties": props, "additionalProperties": False}, ref
            )
        return {"$ref": f"#/components/schemas/{ref}"}

    def scalar(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        if field.type in _INT64:
            return {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
        if field.type in _INT32:
            return {"type": "integer", "format": "int32"}
        if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return {"type": "number"}
        if field.type == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if field.type == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        return {"type": "string"}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        schema = self.scalar(field)
        if field.is_repeated:
            schema = {"type": "array", "items": schema}
        doc = self.docs.get(field.full_name)
        if doc:
            schema = (
                {"description": doc, **schema}
                if "$ref" not in schema
                else {"description": doc, "allOf": [schema]}
            )
        return schema

    def query(self, message: Descriptor, skip: set[str], prefix: str = "") -> list[Any]:
        params: list[Any] = []
        for f in message.fields:
            name = f"{prefix}{f.name}"
            if name in skip:
                continue
            nested = f.message_type
            if nested is not None and nested.full_name not in _WELL_KNOWN:
                if not f.is_repeated:
                    params += self.query(nested, skip, f"{name}.")
                continue
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": False,
                "schema": self.field(f),
            }
            if f.is_repeated:
                param |= {"style": "form", "explode": True}
            if f.full_name in self.docs:
                param["description"] = self.docs[f.full_name]
            params.append(param)
        return params

    @staticmethod
    def _field_name(message: Descriptor, path: str) -> str:
        *parents, last = path.split(".")
        for part in parents:
            nested = message.fields_by_name[part].message_type
            assert nested is not None, f"{path}: {part} is not a message field"
            message = nested
        return f"{message.full_name}.{last}"

    def operation(self, route: Route) -> dict[str, Any]:
        method = route.method
        doc = self.docs.get(method.full_name, "")
        params: list[Any] = [
            {
                "name": path_name(p),
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[^/:]+$"},
                "description": (
                    f"`{p}`. {self.docs.get(self._field_name(method.input_type, p), '')}"
                ).strip(),
            }
            for p in route.path_fields
        ]
        op: dict[str, Any] = {
            "operationId": route.operation_id,
            "tags": [method.containing_service.name],
            "summary": doc.split(". ")[0].rstrip(".") if doc else method.name,
            "description": doc,
        }
        if route.body != "*":
            params += self.query(method.input_type, {*route.path_fields, route.body})
        if params:
            op["parameters"] = params
        if route.body == "*":
            self.message(method.input_type)
            body = dict(self.schemas[method.input_type.full_name])
            body["properties"] = {
                k: v for k, v in body["properties"].items() if k not in route.path_fields
            }
            op["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": body}},
            }
        elif route.body:
            field = method.input_type.fields_by_name[route.body]
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.scalar(field)}},
            }
        if route.streaming:
            ok = {
                "description": "Server-Sent Events: one message per JobEvent (`id` = its "
                "sequence, `event` = the webhook type, `data` = the JobEvent "
                "JSON); `Last-Event-ID` resumes.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "x-event-schema": self.message(method.output_type),
            }
        else:
            ok = {
                "description": "OK",
                "content": {"application/json": {"schema": self.message(method.output_type)}},
            }
        op["responses"] = {
            "200": ok,
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        }
        return op


def path_name(field_path: str) -> str:
    """An OpenAPI path parameter name for a field path (`job.id` → `job_id`): tools treat the
    template as `str.format` names, which cannot hold dots. The URL is the same."""
    return field_path.replace(".", "_")
