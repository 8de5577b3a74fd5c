"""The comments of `proto/`, by full name: `comment("pinsched.v1.Pin.board_id")`.

The generated Python code drops comments; `scripts/gen_proto.py` also writes
`pinsched/v1/descriptor_set.binpb`, a `FileDescriptorSet` with source info (checked by
`gen_proto.py --check` like the code). This module reads it once and maps every message, field,
oneof, enum, enum value, service and method to its leading comment. Pure apart from reading that
packaged file; no network, no daemon.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Final

from google.protobuf import descriptor_pb2

__all__ = ["DESCRIPTOR_SET", "comment", "comments"]

DESCRIPTOR_SET: Final = "descriptor_set.binpb"

# Field numbers of the descriptor messages, as source-info paths use them.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM, _MESSAGE_ONEOF = 2, 3, 4, 8
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

Path = tuple[int, ...]


def _enum_names(
    enum: descriptor_pb2.EnumDescriptorProto, scope: str, path: Path
) -> Iterator[tuple[Path, str]]:
    name = f"{scope}.{enum.name}"
    yield path, name
    for i, value in enumerate(enum.value):
        # Enum values are siblings of their enum in proto scoping; keep them under the enum.
        yield (*path, _ENUM_VALUE, i), f"{name}.{value.name}"


def _message_names(
    message: descriptor_pb2.DescriptorProto, scope: str, path: Path
) -> Iterator[tuple[Path, str]]:
    name = f"{scope}.{message.name}"
    yield path, name
    for i, field in enumerate(message.field):
        yield (*path, _MESSAGE_FIELD, i), f"{name}.{field.name}"
    for i, oneof in enumerate(message.oneof_decl):
        yield (*path, _MESSAGE_ONEOF, i), f"{name}.{oneof.name}"
    for i, nested in enumerate(message.nested_type):
        yield from _message_names(nested, name, (*path, _MESSAGE_NESTED, i))
    for i, enum in enumerate(message.enum_type):
        yield from _enum_names(enum, name, (*path, _MESSAGE_ENUM, i))


def _file_names(proto: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[Path, str]]:
    scope = proto.package
    for i, message in enumerate(proto.message_type):
        yield from _message_names(message, scope, (_FILE_MESSAGE, i))
    for i, enum in enumerate(proto.enum_type):
        yield from _enum_names(enum, scope, (_FILE_ENUM, i))
    for i, service in enumerate(proto.service):
        name = f"{scope}.{service.name}"
        yield (_FILE_SERVICE, i), name
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICE, i, _SERVICE_METHOD, j), f"{name}.{method.name}"


def _clean(text: str) -> str:
    """A comment as prose: lines stripped, paragraphs kept, single newlines joined."""
    paragraphs = [
        " ".join(line.strip() for line in block.splitlines() if line.strip())
        for block in text.strip().split("\n\n")
    ]
    return "\n\n".join(p for p in paragraphs if p)


def index(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Full name → leading comment, for every commented element of *files*."""
    out: dict[str, str] = {}
    for proto in files:
        by_path = {
            tuple(loc.path): loc.leading_comments
            for loc in proto.source_code_info.location
            if loc.leading_comments
        }
        for path, name in _file_names(proto):
            text = by_path.get(path)
            if text:
                out[name] = _clean(text)
    return out


@cache
def comments() -> dict[str, str]:
    """The comment index of the packaged descriptor set (read once)."""
    data = resources.files("pinsched.v1").joinpath(DESCRIPTOR_SET).read_bytes()
    return index(descriptor_pb2.FileDescriptorSet.FromString(data).file)


def comment(full_name: str) -> str:
    """The comment of *full_name* (`pinsched.v1.PinScheduler.SchedulePin`), or ''."""
    return comments().get(full_name, "")
