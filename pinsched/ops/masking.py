"""How a URL that may carry credentials is shown: `mask_url` and `url_secrets`.

A webhook URL can hold a password (`https://user:pass@host/`) or a token in its query
(`?token=...`). Wherever pinsched shows such a URL (ListWebhookDeliveries, error messages,
`pinsched config check`, logs) it shows `mask_url(url)`: scheme, host, port and path kept (so an
operator still recognises the endpoint), userinfo replaced by `***`, each query value by `***`
(names kept), fragment dropped. `url_secrets` lists the parts that are masked, so that the log
processor can mask them should they appear anywhere else. Pure; no I/O.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

MASK: Final = "***"


def mask_url(url: str) -> str:
    """*url* with its userinfo and query values replaced by `***` and no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK  # unparseable: show nothing of it
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{MASK}@" if "@" in parts.netloc else ""
    netloc += host + (f":{port}" if port else "")
    out = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    if parts.query:
        names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
        out += "?" + "&".join(f"{name}={MASK}" for name in names) if names else f"?{MASK}"
    return out


def url_secrets(url: str) -> list[str]:
    """The credential-like parts of *url*: userinfo (raw and decoded), query values, the query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    out: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        out += [userinfo, unquote(userinfo)]
        if parts.password:
            out += [parts.password, unquote(parts.password)]
    if parts.query:
        out.append(parts.query)
        out += [value for _, value in parse_qsl(parts.query, keep_blank_values=True) if value]
    if parts.fragment:
        out.append(parts.fragment)
    return [s for s in dict.fromkeys(out) if s]


def scrub(text: str, url: str) -> str:
    """*text* (an error message) with *url* shown masked and its secret parts as `***`."""
    text = text.replace(url, mask_url(url))
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
