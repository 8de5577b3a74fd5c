"""Is a media URL fetchable, of the right type and size? (validate_only and the checks ahead of
a pin's moment.) I/O: one aiohttp session of its own.

`UrlProbe.image(url)` sends a HEAD (a GET of the first byte when the server refuses HEAD or does
not say the size) and answers None or a `Finding`: an HTTP error, a content type that is not an
image, a size over Pinterest's limit, a host that does not resolve or refuses connections; or,
marked `unavailable`, no answer in time (no verdict on the URL). Like webhooks
(`webhooks.endpoints.SafeResolver`), it never connects to a link-local or cloud metadata address,
checked for the URL's host, each address it resolves to, and every redirect (followed by hand,
at most `MAX_REDIRECTS`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit

import aiohttp

from pinsched.webhooks.endpoints import BlockedAddress, SafeResolver
from pinsched.webhooks.policy import host_problem

#: When set, the only hosts probed; any other is `unavailable` (the test suite's network policy:
#: nothing but loopback).
ALLOWED_HOSTS: frozenset[str] | None = None
#: Pinterest's limit for an image pin's file (its help centre: "up to 20 MB").
IMAGE_URL_MAX_BYTES: Final = 20 * 1000 * 1000
MAX_REDIRECTS: Final = 5
_RANGE_TOTAL = re.compile(r"bytes\s+\d+-\d+/(\d+)")


class _NotAllowed(Exception):
    """The host is outside `ALLOWED_HOSTS`."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What is wrong with a URL; `unavailable`: it could not be checked."""

    message: str
    unavailable: bool = False


class UrlProbe:
    def __init__(self, *, timeout_s: float = 10.0, resolver: SafeResolver | None = None) -> None:
        self.timeout_s = timeout_s
        self._resolver = resolver or SafeResolver()
        self._session: aiohttp.ClientSession | None = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(resolver=self._resolver, limit=32),
                headers={"user-agent": "pinsched/0.1 (preflight)"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def image(self, url: str, *, max_bytes: int = IMAGE_URL_MAX_BYTES) -> Finding | None:
        """None when *url* answers an image of at most *max_bytes*; else what is wrong."""
        host = urlsplit(url).hostname or ""
        try:
            problem = await asyncio.wait_for(self._image(url, max_bytes), self.timeout_s * 2)
        except BlockedAddress as exc:
            problem = f"refused: {exc} (link-local and cloud metadata addresses are never fetched)"
        except _NotAllowed as exc:
            return Finding(f"not checked: {exc} is outside the allowed hosts", True)
        except TimeoutError:
            return Finding(f"no answer within {self.timeout_s:g} s", True)
        except aiohttp.ClientConnectorDNSError as exc:
            blocked = isinstance(exc.os_error, BlockedAddress)
            problem = (
                f"refused: {exc.os_error} (link-local and cloud metadata addresses are "
                "never fetched)"
                if blocked
                else f"cannot be fetched: {host} does not resolve"
            )
        except aiohttp.ClientConnectorError as exc:
            problem = f"cannot be fetched: {host} refuses connections ({exc.os_error})"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Finding(f"could not be checked: {type(exc).__name__}: {exc}", True)
        return Finding(problem) if problem else None

    async def _image(self, url: str, max_bytes: int) -> str | None:
        status, headers, final = await self._fetch("HEAD", url)
        size = _size(headers)
        if status in (403, 405, 501) or (200 <= status < 300 and size is None):
            status, headers, final = await self._fetch("GET", final, first_byte=True)
            size = _size(headers)
        if not 200 <= status < 300:
            return f"answers HTTP {status}"
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            return f"is {kind or 'of no content type'}, not an image"
        if size is not None and size > max_bytes:
            return f"is {size:,} bytes, over Pinterest's limit of {max_bytes:,} bytes"
        return None

    async def _fetch(
        self, method: str, url: str, *, first_byte: bool = False
    ) -> tuple[int, dict[str, str], str]:
        session = self._sess()
        extra = {"range": "bytes=0-0"} if first_byte else {}
        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            if (problem := host_problem(host)) is not None:
                raise BlockedAddress(problem)
            if ALLOWED_HOSTS is not None and host not in ALLOWED_HOSTS:
                raise _NotAllowed(host)
            async with session.request(method, url, headers=extra, allow_redirects=False) as resp:
                headers = {k.lower(): v for k, v in resp.headers.items()}
                if resp.status in (301, 302, 303, 307, 308) and "location" in headers:
                    url = urljoin(url, headers["location"])
                    continue
                return resp.status, headers, url
        raise ValueError(f"more than {MAX_REDIRECTS} redirects")


def _size(headers: dict[str, str]) -> int | None:
    """The full size of the resource: a Content-Range's total, else Content-Length (not for a
    partial answer)."""
    if match := _RANGE_TOTAL.search(headers.get("content-range", "")):
        return int(match.group(1))
    if "content-range" not in headers and headers.get("content-length", "").isdigit():
        return int(headers["content-length"])
    return None
