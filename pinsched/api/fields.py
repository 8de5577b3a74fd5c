"""The API's field-level input rules shared by every request: collecting violations
(`Violations`, `join_path`), account ids, Pinterest ids, request ids, lengths and URLs. Pure.

The request-level rules (pins, times, schedule requests) are `api.validation`; the video
sources' are `api.video_validation`; both build on this module, which imports neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from pinsched.core.errors import FieldViolation, InvalidArgument

URL_MAX: Final = 2048
#: Pinterest ids are `^\d+$` with no length in the spec; they are 64-bit integers (≤ 19 digits).
ID_MAX_DIGITS: Final = 19
REQUEST_ID_MAX: Final = 128

# Explicit ASCII classes: `\d` would also accept non-ASCII digits such as '٣'.
_DIGITS: Final = re.compile(rf"[0-9]{{1,{ID_MAX_DIGITS}}}")
_ACCOUNT_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_PRINTABLE_ASCII: Final = re.compile(r"[\x20-\x7e]*")
#: What a URL must not contain: exactly the characters with `str.isspace()`, C0 controls and DEL
#: (one regex scan instead of a Python loop over the characters).
_URL_FORBIDDEN: Final = re.compile(r"[\x00-\x1f\x7f\s]")


def join_path(prefix: str, name: str) -> str:
    """`prefix.name`, or `name` alone when there is no prefix."""
    return f"{prefix}.{name}" if prefix else name


class Violations:
    """Collects field violations so that one `InvalidArgument` can name all of them."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, path: str, description: str) -> None:
        self.items.append(FieldViolation(path, description))

    def extend(self, violations: Iterable[FieldViolation]) -> None:
        self.items.extend(violations)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


# --- ids and text ------------------------------------------------------------------------------


def account_id_violation(value: str, field: str) -> FieldViolation | None:
    """Why *value* is not an account id (`^[a-z0-9][a-z0-9_-]{0,62}$`), or None if it is one."""
    if not value:
        return FieldViolation(field, "required: the id of an account created with CreateAccount")
    if not _ACCOUNT_ID.fullmatch(value):
        return FieldViolation(
            field,
            "must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit;"
            f" got {show(value)}",
        )
    return None


def validate_account_id(value: str, field: str) -> str:
    """*value* if it is a valid account id, else `InvalidArgument` on *field*."""
    violation = account_id_violation(value, field)
    if violation is not None:
        raise InvalidArgument([violation])
    return value


def check_request_id(out: Violations, path: str, value: str) -> None:
    if len(value) > REQUEST_ID_MAX:
        out.add(path, f"at most {REQUEST_ID_MAX} characters, got {len(value)}")
    elif not _PRINTABLE_ASCII.fullmatch(value):
        out.add(path, "must be printable ASCII (a UUID is recommended)")


def check_digits(out: Violations, path: str, value: str, *, what: str, required: bool) -> None:
    if not value:
        if required:
            out.add(path, f"required: the {what}")
    elif not _DIGITS.fullmatch(value):
        out.add(path, f"must be a Pinterest id: 1-{ID_MAX_DIGITS} digits; got {show(value)}")


def check_len(out: Violations, path: str, value: str, limit: int) -> None:
    if len(value) > limit:
        out.add(path, f"at most {limit} characters, got {len(value)}")


def url_problem(value: str) -> str | None:
    """Why *value* is not an absolute http(s) URL of at most `URL_MAX` characters, or None."""
    if len(value) > URL_MAX:
        return f"at most {URL_MAX} characters, got {len(value)}"
    if _URL_FORBIDDEN.search(value):
        return "must not contain spaces or control characters (percent-encode them)"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        return f"is not a valid URL: {show(value)}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"must be an absolute http(s) URL; got {show(value)}"
    if not host:
        return f"must name a host; got {show(value)}"
    return None


def check_url(out: Violations, path: str, value: str, *, required: bool) -> None:
    if not value:
        if required:
            out.add(path, "required: an absolute http(s) URL")
        return
    problem = url_problem(value)
    if problem is not None:
        out.add(path, problem)
