"""Who may reach the API: the listen-address policy.

The policy (its rule is `ops.listen`, checked by `Daemon.start` before anything binds, and by
`config.load_config` for the command line): a gRPC or HTTP address (`listen`, `http_listen`)
that is not loopback (`0.0.0.0`, `::`, a LAN address, any host name but `localhost`) needs a
way to tell callers apart: an API token (`PINSCHED_API_TOKEN`, clients send
`authorization: Bearer <token>`) or mutual TLS (`PINSCHED_TLS_CLIENT_CA_FILE`).
Server-only TLS encrypts the traffic but still lets anyone who reaches the port call every RPC, so
it does not count. `allow_insecure_listen` (`--allow-insecure-listen`,
`PINSCHED_ALLOW_INSECURE_LISTEN=1`) overrides the policy for a private network (a pod's own
network namespace, a compose network that publishes no port).

`warnings` lists what is allowed but unsafe (logged at start by `Daemon.start`, printed by
`pinsched config check`): a token sent in clear text over a non-loopback address, an open API on
a non-loopback address, a short API token, Pinterest tokens stored unencrypted.

The bearer-token check itself is `bearer_matches` (a constant-time compare, scheme in any case),
called by the gRPC door's `api.guard.Guard` and by the HTTP door's middleware; TLS credentials
are loaded by `app.Daemon._bind` (gRPC) and `http.server.ssl_context` (HTTP, the same files).
This module does not bind sockets and does not read the environment.
"""

from __future__ import annotations

import hmac

from pinsched.config import Config, ConfigError
from pinsched.ops import listen
from pinsched.ops.listen import is_loopback
from pinsched.store.location import redact

__all__ = [
    "MIN_API_TOKEN",
    "InsecureListen",
    "bearer_matches",
    "bearer_token",
    "check_listen_policy",
    "warnings",
]

#: An API token shorter than this is warned about (it can be guessed or brute-forced).
MIN_API_TOKEN = 16


class InsecureListen(ConfigError):
    """The daemon would serve an unauthenticated API on a non-loopback address."""


def check_listen_policy(config: Config) -> None:
    """Raise `InsecureListen` when *config* would expose an unauthenticated API (gRPC or HTTP):
    the rule is `ops.listen.exposed`, the same one `config.load_config` applies."""
    addresses = {"listen": config.listen, "http_listen": config.http_listen}
    for name in listen.exposed(
        addresses,
        authenticated=bool(config.api_token) or bool(config.tls_client_ca_file),
        allow_insecure=config.allow_insecure_listen,
    ):
        raise _refusal(addresses[name] or "")


def bearer_token(value: str | bytes) -> bytes | None:
    """The token of an `authorization` header value `Bearer <token>` (scheme in any case), or
    None when the value has another form."""
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else bytes(value)
    scheme, sep, token = raw.strip().partition(b" ")
    if not sep or scheme.lower() != b"bearer":
        return None
    return token.strip()


def bearer_matches(header: str | bytes, token: str) -> bool:
    """Whether an `authorization` header value is `Bearer <token>` (scheme in any case,
    constant-time compare): the one check every door uses (gRPC guard, HTTP door, `/mcp`)."""
    got = bearer_token(header)
    return got is not None and hmac.compare_digest(got, token.encode())


def _refusal(address: str) -> InsecureListen:
    return InsecureListen(
        f"refusing to listen on {address}: it is not a loopback address and no caller "
        "authentication is configured. Set PINSCHED_API_TOKEN (clients then send "
        "'authorization: Bearer <token>') or mutual TLS (PINSCHED_TLS_CLIENT_CA_FILE / "
        "--tls-client-ca with PINSCHED_TLS_CERT_FILE and PINSCHED_TLS_KEY_FILE), or, on a "
        "private network only, PINSCHED_ALLOW_INSECURE_LISTEN=1 / --allow-insecure-listen"
    )


def warnings(config: Config) -> list[str]:
    """What *config* allows but should not (one sentence each, saying what to do)."""
    out: list[str] = []
    remote = not is_loopback(config.listen)
    if remote and config.tls_cert_file is None:
        if config.api_token:
            out.append(
                f"listening on {config.listen} without TLS: the API token and the Pinterest tokens "
                "sent with CreateAccount/UpdateAccount cross the network in clear text; set "
                "PINSCHED_TLS_CERT_FILE and PINSCHED_TLS_KEY_FILE, or keep the port on a private "
                'network (docs/operations.md, "TLS")'
            )
        else:
            out.append(
                f"listening on {config.listen} without TLS nor an API token: anyone who reaches "
                "the port can call every RPC; only acceptable on a private network"
            )
    if config.api_token and len(config.api_token) < MIN_API_TOKEN:
        out.append(
            f"the API token has {len(config.api_token)} characters: use at least 32 "
            "random characters (e.g. `openssl rand -hex 32`)"
        )
    if not config.secret_key:
        out.append(
            f"Pinterest tokens are stored unencrypted in {redact(config.db_path)}: set "
            "PINSCHED_SECRET_KEY (a Fernet key or a random passphrase of 16+ characters) to "
            "encrypt them at rest"
        )
    return out
