"""Checks of the Account fields that route an account's calls: `ad_account_id` (Pinterest's
query parameter, `^\\d+$`, at most 18 digits) and `api_base` (an absolute http(s) URL whose host
is not link-local nor a cloud-metadata service: the same address rule as webhooks, since the
daemon sends the account's tokens there). Pure."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from pinsched.api.fields import url_problem
from pinsched.core.errors import FieldViolation
from pinsched.v1 import account_pb2
from pinsched.webhooks.policy import host_problem

AD_ACCOUNT_ID_MAX: Final = 18


def ad_account_id_problem(value: str) -> str | None:
    """Why *value* is not a Pinterest ad account id, or None ("" means none: fine)."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        return f"must be digits only (Pinterest's ^\\d+$); got {value[:40]!r}"
    if len(value) > AD_ACCOUNT_ID_MAX:
        return f"at most {AD_ACCOUNT_ID_MAX} digits, got {len(value)}"
    return None


def api_base_problem(value: str) -> str | None:
    """Why *value* cannot be an account's Pinterest API base, or None ("" = the daemon's)."""
    if not value:
        return None
    problem = url_problem(value)
    if problem is not None:
        return problem
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (it is shown by GetAccount and in webhooks)"
    if parts.query or parts.fragment:
        return (
            "must not have a query or fragment (for example https://api-sandbox.pinterest.com/v5)"
        )
    host_issue = host_problem(parts.hostname or "")
    if host_issue is not None:
        return f"refused: {host_issue} (link-local and metadata addresses are never allowed)"
    return None


def routing_violations(
    account: account_pb2.Account, prefix: str = "account", paths: frozenset[str] | None = None
) -> list[FieldViolation]:
    """Problems of *account*'s `ad_account_id` and `api_base` (only those in *paths*, if given)."""
    out = []
    for name, check in (("ad_account_id", ad_account_id_problem), ("api_base", api_base_problem)):
        if paths is not None and name not in paths:
            continue
        problem = check(getattr(account, name))
        if problem is not None:
            out.append(FieldViolation(f"{prefix}.{name}", problem))
    return out
