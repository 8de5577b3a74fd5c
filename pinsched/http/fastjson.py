"""proto3 JSON ↔ messages, fast, for the shapes the API uses; `json_format` for everything else.

`google.protobuf.json_format` walks descriptors in pure Python on every call (≈ 250 µs to parse a
SchedulePin request or print a Job here, ten times the JSON itself). This module does the same
mapping with a per-message plan built once, for strings, integers, booleans, enums, nested
messages, repeated fields, Timestamp and Duration (and prints bytes). Anything else (maps, floats,
bytes in a request, Any,
FieldMask, wrappers, null, a value of an unexpected JSON type, a field named twice) goes to
`json_format`, which also words every error; so the result, and every error, is exactly
`json_format`'s (tests/unit/test_http_fastjson.py compares them).
"""

from __future__ import annotations

import base64
import calendar
import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["parse", "to_json"]

_T = FieldDescriptor
_INT64: Final = frozenset({_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64})
_UINT64: Final = frozenset({_T.TYPE_UINT64, _T.TYPE_FIXED64})
_INT32: Final = frozenset({_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32})
_UINT32: Final = frozenset({_T.TYPE_UINT32, _T.TYPE_FIXED32})
_RANGES: Final = {
    **dict.fromkeys(_INT64, (-(2**63), 2**63 - 1)),
    **dict.fromkeys(_UINT64, (0, 2**64 - 1)),
    **dict.fromkeys(_INT32, (-(2**31), 2**31 - 1)),
    **dict.fromkeys(_UINT32, (0, 2**32 - 1)),
}
_STRING_WKT: Final = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})


_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|([+-])(\d{2}):(\d{2}))"
)


def _timestamp(target: Any, text: str) -> None:
    """Timestamp.FromJsonString for the common RFC 3339 form, without strptime."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        target.FromJsonString(text)
        return
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    try:
        moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError:
        target.FromJsonString(text)  # its own rules (and message) for odd values
        return
    seconds = calendar.timegm(moment.utctimetuple())
    if sign:
        seconds -= (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om) * 60)
    if not -62135596800 <= seconds <= 253402300799:  # Timestamp's range: its own error
        target.FromJsonString(text)
        return
    target.seconds = seconds
    target.nanos = int(frac.ljust(9, "0")) if frac else 0


class _Slow(Exception):
    """Not a shape the fast path handles: use json_format."""


def _supported(field: FieldDescriptor) -> bool:
    if field.message_type is not None:
        return field.message_type.full_name in _STRING_WKT or (
            not field.message_type.full_name.startswith("google.protobuf.")
            and not field.message_type.GetOptions().map_entry
        )
    return field.type in _RANGES or field.type in (
        _T.TYPE_STRING,
        _T.TYPE_BOOL,
        _T.TYPE_ENUM,
        _T.TYPE_BYTES,
    )


# --- message → JSON ---------------------------------------------------------------------------

Printer = Callable[[Message], dict[str, Any]]


_EPOCH: Final = datetime(1970, 1, 1)  # noqa: DTZ001 - naive, as isoformat() must print no offset


#: Recent timestamps' text: a job's times repeat (created = updated, scheduled = planned =
#: window end, an event's time = the job's update time), so most are printed once.
_TS_TEXT: dict[tuple[int, int], str] = {}
_TS_TEXT_MAX: Final = 4096


def timestamp_json(ts: Any) -> str:
    """`Timestamp.ToJsonString()` (RFC 3339, Z, 0/3/6/9 fraction digits), without its pure
    Python range checks on the common path; out of range: its own error."""
    key = (ts.seconds, ts.nanos)
    text = _TS_TEXT.get(key)
    if text is None:
        text = _timestamp_text(*key)
        if text is None:
            return str(ts.ToJsonString())
        if len(_TS_TEXT) >= _TS_TEXT_MAX:
            _TS_TEXT.clear()
        _TS_TEXT[key] = text
    return text


def _timestamp_text(seconds: int, nanos: int) -> str | None:
    if not (-62135596800 <= seconds <= 253402300799 and 0 <= nanos <= 999_999_999):
        return None
    text = (_EPOCH + timedelta(seconds=seconds)).isoformat()
    if not nanos:
        return text + "Z"
    if not nanos % 1_000_000:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if not nanos % 1000:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _scalar_printer(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return timestamp_json
        if field.message_type.full_name in _STRING_WKT:
            return lambda v: v.ToJsonString()
        nested = field.message_type
        printer: list[Printer] = []  # resolved at first use (messages may nest recursively)

        def message(v: Any) -> Any:
            if not printer:
                printer.append(_printer(nested))
            return printer[0](v)

        return message
    if field.enum_type is not None:
        names = {v.number: v.name for v in field.enum_type.values}
        return lambda v: names.get(v, v)
    if field.type in _INT64 or field.type in _UINT64:
        return str
    if field.type == _T.TYPE_BYTES:
        return lambda v: base64.b64encode(v).decode("utf-8")
    return lambda v: v


@functools.cache
def _printer(descriptor: Descriptor) -> Printer:
    if not all(_supported(f) for f in descriptor.fields):
        return lambda m: json_format.MessageToDict(
            m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    steps: list[tuple[str, bool, bool, Callable[[Any], Any]]] = []
    for f in descriptor.fields:
        presence = f.has_presence and not f.is_repeated
        steps.append((f.name, f.is_repeated, presence, _scalar_printer(f)))

    def print_(message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, repeated, presence, conv in steps:
            if presence and not message.HasField(name):
                continue
            value = getattr(message, name)
            out[name] = [conv(v) for v in value] if repeated else conv(value)
        return out

    return print_


def to_json(message: Message) -> dict[str, Any]:
    """`MessageToDict(message, preserving_proto_field_name=True,
    always_print_fields_with_no_presence=True)`, faster."""
    return _printer(message.DESCRIPTOR)(message)


# --- JSON → message ---------------------------------------------------------------------------

Setter = Callable[[Message, Any], None]


def _convert(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.enum_type is not None:
        numbers = {v.name: v.number for v in field.enum_type.values}

        def enum(v: Any) -> int:
            if isinstance(v, str) and v in numbers:
                return numbers[v]
            raise _Slow

        return enum
    if field.type == _T.TYPE_BYTES:  # base64 variants: json_format's rules

        def bytes_(v: Any) -> bytes:
            raise _Slow

        return bytes_
    if field.type == _T.TYPE_STRING:

        def string(v: Any) -> str:
            if type(v) is not str:
                raise _Slow
            return v

        return string
    if field.type == _T.TYPE_BOOL:

        def boolean(v: Any) -> bool:
            if type(v) is not bool:
                raise _Slow
            return v

        return boolean
    low, high = _RANGES[field.type]

    def integer(v: Any) -> int:
        if type(v) is str and v.lstrip("-").isdigit() and v.isascii():
            v = int(v)
        if type(v) is not int or not low <= v <= high:
            raise _Slow
        return v

    return integer


def _setter(field: FieldDescriptor) -> Setter:
    name = field.name
    oneof = field.containing_oneof.name if field.containing_oneof is not None else None
    if field.message_type is not None:
        wkt = field.message_type.full_name in _STRING_WKT
        is_timestamp = field.message_type.full_name == "google.protobuf.Timestamp"
        nested = field.message_type

        def fill(target: Message, v: Any) -> None:
            if wkt:
                if type(v) is not str:
                    raise _Slow
                try:
                    if is_timestamp:
                        _timestamp(target, v)
                    else:
                        target.FromJsonString(v)  # type: ignore[attr-defined]
                except ValueError:
                    raise _Slow from None
            else:
                if type(v) is not dict:
                    raise _Slow
                _filler(nested)(target, v)

        if field.is_repeated:

            def repeated_message(m: Message, v: Any) -> None:
                if type(v) is not list:
                    raise _Slow
                items = getattr(m, name)
                for item in v:
                    fill(items.add(), item)

            return repeated_message

        def message(m: Message, v: Any) -> None:
            if oneof is not None and m.WhichOneof(oneof) is not None:
                raise _Slow
            sub = getattr(m, name)
            sub.SetInParent()
            fill(sub, v)

        return message
    conv = _convert(field)
    if field.is_repeated:

        def repeated(m: Message, v: Any) -> None:
            if type(v) is not list:
                raise _Slow
            getattr(m, name).extend([conv(x) for x in v])

        return repeated

    def scalar(m: Message, v: Any) -> None:
        if oneof is not None and m.WhichOneof(oneof) is not None:
            raise _Slow
        setattr(m, name, conv(v))

    return scalar


@functools.cache
def _filler(descriptor: Descriptor) -> Callable[[Message, dict[str, Any]], None]:
    if not all(_supported(f) for f in descriptor.fields):

        def slow(m: Message, data: dict[str, Any]) -> None:
            raise _Slow

        return slow
    by_key: dict[str, tuple[str, Setter]] = {}
    for f in descriptor.fields:
        setter = _setter(f)
        by_key[f.name] = (f.name, setter)
        by_key[f.json_name] = (f.name, setter)

    def fill(m: Message, data: dict[str, Any]) -> None:
        seen: set[str] = set()
        for key, value in data.items():
            entry = by_key.get(key)
            if entry is None or value is None or entry[0] in seen:
                raise _Slow
            seen.add(entry[0])
            entry[1](m, value)

    return fill


def parse(data: dict[str, Any], message: Message) -> None:
    """`json_format.ParseDict(data, message)` (unknown fields refused), faster; *message* must
    be empty. Raises `json_format.ParseError` exactly as ParseDict does."""
    try:
        _filler(message.DESCRIPTOR)(message, data)
    except _Slow:
        message.Clear()
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
