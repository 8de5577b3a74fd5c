"""What `serve` checks before it opens anything, shared with `pinsched config check`.

`preflight(config)` is the one code path: the listen policy, the secret key setting, the TLS
files (readable), and the webhook endpoints (secrets, event types, a URL given twice, a host
that is or resolves to a link-local or metadata address). It raises `ConfigError` naming the key,
so `config check` exits 2 on exactly the settings `serve` would refuse. `ListenError` is the one
check that only binding can make: the address is in use or not available.
"""

from __future__ import annotations

import asyncio

from pinsched import security
from pinsched.config import Config, ConfigError
from pinsched.ops import crypto
from pinsched.webhooks.endpoints import GetAddrInfo, prepare_endpoints
from pinsched.webhooks.messages import Endpoint

__all__ = ["ListenError", "preflight"]

TLS_FILES = {
    "tls_cert_file": "PINSCHED_TLS_CERT_FILE",
    "tls_key_file": "PINSCHED_TLS_KEY_FILE",
    "tls_client_ca_file": "PINSCHED_TLS_CLIENT_CA_FILE",
}


class ListenError(ConfigError):
    """`listen` or `metrics_listen` cannot be bound (in use, or not an address of this host)."""


async def preflight(config: Config, *, getaddrinfo: GetAddrInfo | None = None) -> list[Endpoint]:
    """Check *config* as `serve` does before opening the store; return the webhook endpoints."""
    security.check_listen_policy(config)
    if config.secret_key is not None:
        crypto.parse_keys(config.secret_key)
    await asyncio.to_thread(_check_tls_files, config)
    return await prepare_endpoints(config.webhooks, getaddrinfo=getaddrinfo)


def _check_tls_files(config: Config) -> None:
    for name, env in TLS_FILES.items():
        path = getattr(config, name)
        if path is None:
            continue
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise ConfigError(
                f"{name} ({env}): cannot read {path!r}: {exc.strerror or exc}"
            ) from None
