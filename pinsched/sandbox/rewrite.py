"""How the sandbox stores text and links, as Pinterest may rewrite them. Pure.

Pinterest trims the text fields of a pin and may rewrite its link (scheme and host in lower
case). pinsched must find such a pin after an unknown outcome, so the sandbox does the same:
`stored_text` trims; `stored_link` trims and lower-cases the scheme and host. Nothing else is
changed (Pinterest's full rewriting rules are not documented).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def stored_text(value: str | None) -> str | None:
    """*value* trimmed (None stays None)."""
    return None if value is None else value.strip()


def stored_link(value: str | None) -> str | None:
    """*value* trimmed, with its scheme and host in lower case (None stays None)."""
    if value is None:
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user}@{host.lower()}"
    else:
        netloc = netloc.lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))
