"""HTTP routes from the `google.api.http` annotations, and HTTP request → request message.

The route table is read from the proto descriptors (nothing is listed by hand): each RPC's
`HttpRule` gives the method, the path template (`/v1/jobs/{job_id}:cancel`) and the body (`*`: the
whole request; a field name: that field; none: everything else comes from the query string).
Transcoding follows the proto3 JSON mapping (`google.protobuf.json_format`): snake_case and
lowerCamelCase names, enum names, int64 as a string or a number; an unknown field is an
`InvalidArgument` naming it. Path variables override the body, as in grpc-gateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
)
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from pinsched.core import errors
from pinsched.http import fastjson
from pinsched.v1 import account_pb2, scheduler_pb2, webhook_pb2

__all__ = ["FILES", "Route", "build_request", "load_routes", "match"]

#: The proto files whose services the door serves.
FILES: Final[tuple[FileDescriptor, ...]] = (
    scheduler_pb2.DESCRIPTOR,
    account_pb2.DESCRIPTOR,
    webhook_pb2.DESCRIPTOR,
)
_VERBS: Final = ("get", "put", "post", "delete", "patch")
_VARIABLE: Final = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
_FIELD_MASK: Final = "google.protobuf.FieldMask"


@dataclass(frozen=True, slots=True)
class Route:
    """One RPC's HTTP binding."""

    service: str  # full name, e.g. pinsched.v1.PinScheduler
    method: MethodDescriptor
    verb: str  # GET, POST, …
    template: str  # /v1/jobs/{job_id}:cancel
    pattern: re.Pattern[str]
    path_fields: tuple[str, ...]  # field paths bound by the template, in order
    body: str  # "", "*" or a top-level field name

    @property
    def operation_id(self) -> str:
        return f"{self.method.containing_service.name}_{self.method.name}"

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)


def _rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return rule


def load_routes(files: Iterable[FileDescriptor] = FILES) -> list[Route]:
    """Every annotated RPC of *files*, in declaration order."""
    routes: list[Route] = []
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                rule = _rule(method)
                if rule is None:
                    continue
                verb = rule.WhichOneof("pattern")
                if verb not in _VERBS:
                    raise ValueError(f"{method.full_name}: unsupported HTTP rule {verb!r}")
                template = getattr(rule, verb)
                fields = tuple(_VARIABLE.findall(template))
                regex = ""
                for i, part in enumerate(_VARIABLE.split(template)):
                    regex += "([^/:]+)" if i % 2 else re.escape(part)
                routes.append(
                    Route(
                        service=service.full_name,
                        method=method,
                        verb=verb.upper(),
                        template=template,
                        pattern=re.compile(f"^{regex}$"),
                        path_fields=fields,
                        body=rule.body,
                    )
                )
    return routes


def match(
    routes: Sequence[Route], verb: str, path: str
) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, path variables, allowed verbs) for *verb* on *path*; no route: None, and the
    verbs that *path* does answer (empty: an unknown path)."""
    allowed: list[str] = []
    for route in routes:
        m = route.pattern.match(path)
        if m is None:
            continue
        if route.verb == verb:
            return route, dict(zip(route.path_fields, m.groups(), strict=True)), []
        allowed.append(route.verb)
    return None, {}, allowed


def message_class(descriptor: Descriptor) -> type[Message]:
    cls: type[Message] = GetMessageClass(descriptor)
    return cls


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    field = descriptor.fields_by_name.get(name)
    if field is None:
        field = next((f for f in descriptor.fields if f.json_name == name), None)
    return field


def _camel(path: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), path)


def _query_value(field: FieldDescriptor, raw: str, where: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        text = raw.strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise errors.InvalidArgument.one(where, f"expected true or false, got {raw!r}")
        return text in ("true", "1")
    if field.message_type is not None and field.message_type.full_name == _FIELD_MASK:
        # The JSON form is lowerCamelCase paths; the proto's own docs name snake_case ones.
        return ",".join(_camel(p.strip()) for p in raw.split(","))
    return raw


def _put_query(target: dict[str, Any], descriptor: Descriptor, key: str, values: list[str]) -> None:
    parts = key.split(".")
    node, desc, path = target, descriptor, []
    for i, part in enumerate(parts):
        field = _field(desc, part) if desc is not None else None
        if field is None:
            raise errors.InvalidArgument.one(key, "unknown query parameter")
        path.append(field.name)
        if i < len(parts) - 1:
            if field.message_type is None or field.is_repeated:
                raise errors.InvalidArgument.one(key, "unknown query parameter")
            node = node.setdefault(field.name, {})
            desc = field.message_type
            continue
        where = ".".join(path)
        if field.is_repeated:
            items = [_query_value(field, v, where) for v in values]
            node.setdefault(field.name, []).extend(items)
        elif len(values) > 1:
            raise errors.InvalidArgument.one(where, "given more than once")
        else:
            node[field.name] = _query_value(field, values[0], where)


def _set_path(target: dict[str, Any], descriptor: Descriptor, path: str, value: str) -> None:
    node, desc = target, descriptor
    parts = path.split(".")
    for part in parts[:-1]:
        field = desc.fields_by_name[part]
        sub = node.pop(field.json_name, None) if field.json_name != part else None
        node = node.setdefault(part, sub if isinstance(sub, dict) else {})
        if not isinstance(node, dict):
            raise errors.InvalidArgument.one(part, "expected a JSON object")
        if field.message_type is None:
            raise ValueError(f"path variable {path!r} does not name a message field")
        desc = field.message_type
    field = desc.fields_by_name[parts[-1]]
    node.pop(field.json_name, None)
    node[field.name] = value


def _parse_error_field(text: str) -> str:
    """The request field a `json_format.ParseError` is about (`pin.title`, `requests[1].pin.x`)."""
    unknown = re.search(r'has no field named "([^"]+)" at "([^"]+)"', text)
    if unknown:
        at = unknown.group(2).split(".", 1)[1] if "." in unknown.group(2) else ""
        return f"{at}.{unknown.group(1)}" if at else unknown.group(1)
    located = re.search(r' at "?([A-Za-z0-9_.\[\]]+?)"?\.*$', text.strip())
    if located and "." in located.group(1):
        return located.group(1).split(".", 1)[1]
    chain = re.findall(r"Failed to parse (\w+) field", text)
    return ".".join(chain) or "body"


def _describe(text: str) -> str:
    unknown = re.search(r'Message type "([^"]+)" has no field named', text)
    if unknown:
        try:
            known = descriptor_pool.Default().FindMessageTypeByName(unknown.group(1))
        except KeyError:
            return "unknown field"
        return f"unknown field; {known.name} has {', '.join(f.name for f in known.fields)}"
    first = text.split("\n", 1)[0]
    first = re.sub(r"^(Failed to parse \w+ field: )+", "", first)
    return first.rstrip(".") or "invalid value"


def build_request(
    route: Route, path_vars: Mapping[str, str], query: Mapping[str, list[str]], body: Any
) -> Message:
    """The request message of *route* from the path variables, the query string (name →
    values) and the parsed JSON *body* (None: no body). Raises `InvalidArgument` naming the
    field for anything that does not fit the message."""
    descriptor = route.method.input_type
    data: dict[str, Any] = {}
    if route.body == "*":
        if body is not None and not isinstance(body, dict):
            raise errors.InvalidArgument.one("body", "expected a JSON object")
        data = dict(body or {})
    elif route.body:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument.one(route.body, "expected a JSON object")
        data[route.body] = body
    elif body is not None:
        raise errors.InvalidArgument.one("body", f"{route.verb} {route.template} takes no body")
    if route.body != "*":
        for key, values in query.items():
            if key == route.body or (key.startswith(f"{route.body}.") and route.body):
                raise errors.InvalidArgument.one(key, "give it in the request body")
            _put_query(data, descriptor, key, values)
    elif query:
        raise errors.InvalidArgument.one(
            next(iter(query)), f"{route.verb} {route.template} takes its fields in the JSON body"
        )
    for path, value in path_vars.items():
        _set_path(data, descriptor, path, value)
    message = message_class(descriptor)()
    try:
        fastjson.parse(data, message)
    except json_format.ParseError as exc:
        text = str(exc)
        raise errors.InvalidArgument.one(_parse_error_field(text), _describe(text)) from None
    except (TypeError, ValueError, AttributeError) as exc:  # odd shapes json_format misses
        raise errors.InvalidArgument.one("body", f"does not fit {descriptor.name}: {exc}") from None
    return message
