"""Who may reach the API: the listen-address policy.

The policy (checked by `Daemon.start` before anything binds, and by `config.load_config` for the
command line): a gRPC or HTTP address (`listen`, `http_listen`) that is not loopback (`0.0.0.0`,
`::`, a LAN address, any host name but `localhost`) needs a way to tell callers apart: an API
token (`PINSCHED_API_TOKEN`, clients send `authorization: Bearer <token>`) or mutual TLS
(`PINSCHED_TLS_CLIENT_CA_FILE`).
Server-only TLS encrypts the traffic but still lets anyone who reaches the port call every RPC, so
it does not count. `allow_insecure_listen` (`--allow-insecure-listen`,
`PINSCHED_ALLOW_INSECURE_LISTEN=1`) overrides the policy for a private network (a pod's own
network namespace, a compose network that publishes no port).

The bearer-token check itself is `bearer_matches` (a constant-time compare), called by the gRPC
interceptor `app._TokenAuth` and by the HTTP door's middleware; TLS credentials are loaded by
`app.Daemon._bind` (gRPC) and `http.server.ssl_context` (HTTP, the same files). This module does
not bind sockets and does not read the environment.
"""

from __future__ import annotations

import hmac
import ipaddress

from pinsched.config import Config, ConfigError

__all__ = [
    "InsecureListen",
    "bearer_matches",
    "check_listen_policy",
    "is_loopback",
]


class InsecureListen(ConfigError):
    """The daemon would serve an unauthenticated API on a non-loopback address."""


def is_loopback(listen: str) -> bool:
    """Whether the host of *listen* (`host:port`, `[v6]:port`) is a loopback address.

    Host names other than `localhost` count as not loopback: they are not resolved here.
    """
    host = listen.rpartition(":")[0].strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen_policy(config: Config) -> None:
    """Raise `InsecureListen` when *config* would expose an unauthenticated API (gRPC or HTTP)."""
    authenticated = bool(config.api_token) or bool(config.tls_client_ca_file)
    if authenticated or config.allow_insecure_listen:
        return
    for address in (config.listen, config.http_listen):
        if address is not None and not is_loopback(address):
            raise _refusal(address)


def bearer_matches(header: str | bytes, token: str) -> bool:
    """Whether an `authorization` header value is `Bearer <token>` (constant-time compare).

    The one check both doors use: the gRPC interceptor and the HTTP middleware."""
    got = header.encode() if isinstance(header, str) else bytes(header)
    return hmac.compare_digest(got, f"Bearer {token}".encode())


def _refusal(address: str) -> InsecureListen:
    return InsecureListen(
        f"refusing to listen on {address}: it is not a loopback address and no caller "
        "authentication is configured. Set PINSCHED_API_TOKEN (clients then send "
        "'authorization: Bearer <token>') or mutual TLS (PINSCHED_TLS_CLIENT_CA_FILE / "
        "--tls-client-ca with PINSCHED_TLS_CERT_FILE and PINSCHED_TLS_KEY_FILE), or, on a "
        "private network only, PINSCHED_ALLOW_INSECURE_LISTEN=1 / --allow-insecure-listen"
    )

