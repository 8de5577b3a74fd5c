"""Input rules for an account's free text: `display_name` and the Pinterest tokens.

Pure. Tokens end up in an HTTP `Authorization` header and in a form body sent to Pinterest, so they
must be printable ASCII without spaces (a CR/LF inside a token once made every attempt fail before
it was sent, leaving the job SUBMITTED); both have length limits (`pinsched.ops.limits`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from pinsched.core.errors import FieldViolation
from pinsched.ops.limits import DISPLAY_NAME_MAX, TOKEN_MAX
from pinsched.v1 import account_pb2

_TOKEN: Final = re.compile(r"[\x21-\x7e]+")
TOKEN_FIELDS: Final = ("access_token", "refresh_token")


def token_problem(value: str) -> str | None:
    """Why *value* cannot be a Pinterest access or refresh token, or None (empty is allowed)."""
    if not value:
        return None
    if len(value) > TOKEN_MAX:
        return f"at most {TOKEN_MAX} characters, got {len(value)}"
    if not _TOKEN.fullmatch(value):
        return (
            "must be printable ASCII without spaces or control characters"
            " (copy the token exactly as Pinterest issued it)"
        )
    return None


def display_name_problem(value: str) -> str | None:
    """Why *value* cannot be a display name, or None."""
    if len(value) > DISPLAY_NAME_MAX:
        return f"at most {DISPLAY_NAME_MAX} characters, got {len(value)}"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        return "must not contain control characters"
    return None


def account_text_violations(
    account: account_pb2.Account, fields: Iterable[str], prefix: str
) -> list[FieldViolation]:
    """Violations of the text *fields* of *account* (other names in *fields* are ignored)."""
    out: list[FieldViolation] = []
    for name in dict.fromkeys(fields):
        if name == "display_name":
            problem = display_name_problem(account.display_name)
        elif name in TOKEN_FIELDS:
            problem = token_problem(getattr(account, name))
        else:
            continue
        if problem is not None:
            out.append(FieldViolation(f"{prefix}.{name}", problem))
    return out
