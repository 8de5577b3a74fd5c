"""Page sizes and opaque page tokens of every List RPC (jobs, accounts, webhook deliveries), for
every door (the HTTP/JSON door and the MCP tools pass the same tokens through): the one page-token
codec. A token is `base64url("<kind>:<hash of the filters>:<last key>")`, so a token of another
list or other filters is refused instead of misread."""

from __future__ import annotations

import base64
import hashlib

from pinsched.core import errors


def page_size(value: int, field: str = "page_size") -> int:
    if value < 0 or value > 1000:
        raise errors.InvalidArgument.one(field, f"must be between 1 and 1000, got {value}")
    return value or 100


def page_token(kind: str, last: str, scope: str) -> str:
    raw = f"{kind}:{hashlib.sha256(scope.encode()).hexdigest()[:12]}:{last}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def read_page_token(token: str, kind: str, scope: str) -> str:
    if not token:
        return ""
    try:
        got_kind, digest, last = base64.urlsafe_b64decode(token.encode()).decode().split(":", 2)
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidArgument.one("page_token", "not a page token of this list") from None
    if got_kind != kind or digest != hashlib.sha256(scope.encode()).hexdigest()[:12]:
        raise errors.InvalidArgument.one(
            "page_token", "the page token belongs to another list or other filters"
        )
    return last


def read_page_id(token: str, kind: str, scope: str) -> int:
    """The integer last key of *token* (0 for the first page); InvalidArgument as
    `read_page_token`, and when the key is not an integer."""
    last = read_page_token(token, kind, scope)
    if not token:
        return 0
    try:
        return int(last)
    except ValueError:
        raise errors.InvalidArgument.one("page_token", "not a page token of this list") from None
