"""Webhook endpoint addresses: the start-time check of the configured endpoints and the aiohttp
resolver that re-checks every connection. I/O: resolves host names with `loop.getaddrinfo`
(injectable for tests); the rule itself is `webhooks.policy.address_problem`.

`prepare_endpoints` turns `Config.webhooks` into `Endpoint`s or raises `ConfigError` naming the URL
(malformed secret, unknown event type, a URL given twice, a host that is or resolves to a
link-local or cloud metadata address). `SafeResolver` refuses, at connection time, a host any of
whose addresses is blocked, so a DNS answer that changed since the start (rebinding) cannot reach
the metadata service either.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp.abc import AbstractResolver, ResolveResult

from pinsched.config import ConfigError, WebhookEndpoint
from pinsched.webhooks.messages import Endpoint, decode_secret, pattern_problem, redacted_url
from pinsched.webhooks.policy import address_problem, host_problem

log = structlog.get_logger("pinsched.webhooks")

GetAddrInfo = Callable[..., Awaitable[list[tuple[Any, ...]]]]


class BlockedAddress(OSError):
    """A webhook host resolved to a link-local or cloud metadata address."""


def _getaddrinfo(custom: GetAddrInfo | None) -> GetAddrInfo:
    return custom or asyncio.get_running_loop().getaddrinfo


class SafeResolver(AbstractResolver):
    """aiohttp resolver that refuses a host if any of its addresses is link-local/metadata."""

    def __init__(self, getaddrinfo: GetAddrInfo | None = None) -> None:
        self._getaddrinfo = _getaddrinfo(getaddrinfo)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self._getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        out: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            if fam == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3]:
                address = f"{address}%{sockaddr[3]}"
            if (problem := address_problem(address)) is not None:
                raise BlockedAddress(f"{host} resolves to {problem}")
            out.append(
                ResolveResult(
                    hostname=host,
                    host=str(sockaddr[0]),
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return out

    async def close(self) -> None:
        return None


async def prepare_endpoints(
    configs: Sequence[WebhookEndpoint], *, getaddrinfo: GetAddrInfo | None = None
) -> list[Endpoint]:
    """Check every configured endpoint; `ConfigError` (naming the URL) for a malformed secret, an
    unknown event type, a URL given twice, or a host that is or resolves to a link-local or
    metadata address. A host that does not resolve now is only logged (checked again at send)."""
    resolver = SafeResolver(getaddrinfo)
    endpoints: list[Endpoint] = []
    for config in configs:
        endpoint = endpoint_from_config(config)
        if any(e.name == endpoint.name for e in endpoints):
            raise ConfigError(f"webhook {endpoint.label}: configured twice")
        try:
            await resolver.resolve(endpoint.host, endpoint.port, family=socket.AF_UNSPEC)
        except BlockedAddress as exc:
            raise ConfigError(
                f"webhook {endpoint.label}: refused: {exc} (link-local and metadata "
                "addresses are never allowed; loopback and private are)"
            ) from None
        except OSError as exc:
            log.warning("webhook_host_unresolved", endpoint=endpoint.label, error=str(exc))
        endpoints.append(endpoint)
    return endpoints


def endpoint_from_config(config: WebhookEndpoint) -> Endpoint:
    """Check *config* (secrets, event types, host name) into an `Endpoint`; `ConfigError` names
    the URL and the problem, never a secret."""
    where = f"webhook {redacted_url(config.url)}"
    problem = host_problem(urlsplit(config.url).hostname or "")
    if problem is not None:
        raise ConfigError(
            f"{where}: refused: {problem} (link-local and metadata addresses are "
            "never allowed; loopback and private addresses are)"
        )
    if not config.secrets:
        raise ConfigError(f"{where}: needs at least one signing secret")
    keys = []
    for i, secret in enumerate(config.secrets):
        try:
            keys.append(decode_secret(secret))
        except ValueError as exc:
            raise ConfigError(f"{where}: secrets[{i}]: {exc}") from None
    for pattern in config.event_types:
        if (why := pattern_problem(pattern)) is not None:
            raise ConfigError(f"{where}: event_types: {why}")
    return Endpoint(
        name=config.url,
        url=config.url,
        keys=tuple(keys),
        event_types=tuple(config.event_types),
        account_ids=frozenset(config.account_ids),
        timeout_s=config.timeout_s,
    )
