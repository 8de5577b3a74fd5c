"""The one page-token codec (`pinsched.api.pagination`): round trips, and a token of another
list, other filters or no list at all refused as INVALID_ARGUMENT on `page_token`."""

from __future__ import annotations

import base64

import pytest

from pinsched.api.pagination import page_size, page_token, read_page_id, read_page_token
from pinsched.core import errors


def test_a_token_reads_back_its_last_key() -> None:
    """A token gives back the last key it was made with, for the same list and filters; the
    empty token is the first page."""
    token = page_token("jobs", "01JH:with:colons", "acme\nDELIVERED")
    assert read_page_token(token, "jobs", "acme\nDELIVERED") == "01JH:with:colons"
    assert read_page_token("", "jobs", "acme") == ""
    assert read_page_id(page_token("wh", "42", "hook\nDEAD"), "wh", "hook\nDEAD") == 42
    assert read_page_id("", "wh", "hook\nDEAD") == 0


def test_the_webhook_token_keeps_its_wire_format() -> None:
    """Webhook delivery tokens are still `base64url("wh:<12 hex>:<id>")`, so tokens handed out
    before the codec was shared stay valid."""
    raw = base64.urlsafe_b64decode(page_token("wh", "7", "scope")).decode()
    kind, digest, last = raw.split(":")
    assert (kind, len(digest), last) == ("wh", 12, "7")


@pytest.mark.parametrize(
    ("token", "kind", "scope", "why"),
    [
        ("garbage!", "wh", "s", "not a page token of this list"),
        (page_token("jobs", "x", "s"), "accounts", "s", "belongs to another list"),
        (page_token("wh", "7", "s"), "wh", "other filters", "belongs to another list"),
        (page_token("wh", "not-a-number", "s"), "wh", "s", "not a page token of this list"),
    ],
)
def test_foreign_tokens_are_refused(token: str, kind: str, scope: str, why: str) -> None:
    """A malformed token, a token of another list or filters, and a webhook token whose key is
    not an id are refused, naming `page_token`."""
    with pytest.raises(errors.InvalidArgument) as info:
        read_page_id(token, kind, scope)
    ((field, description),) = [(v.field, v.description) for v in info.value.violations]
    assert field == "page_token"
    assert why in description


@pytest.mark.parametrize(("asked", "given"), [(0, 100), (1, 1), (1000, 1000)])
def test_page_sizes(asked: int, given: int) -> None:
    """0 means the default of 100; 1 to 1000 are kept as asked."""
    assert page_size(asked) == given


@pytest.mark.parametrize("asked", [-1, 1001])
def test_page_sizes_out_of_range(asked: int) -> None:
    """A page size outside 0..1000 is refused, naming the field."""
    with pytest.raises(errors.InvalidArgument, match="between 1 and 1000"):
        page_size(asked)
