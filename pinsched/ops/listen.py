"""The listen-address policy, once for every door (gRPC `listen` and HTTP `http_listen`). Pure.

A non-loopback address (`0.0.0.0`, `::`, a LAN address, any host name but `localhost`) needs a
way to tell callers apart: an API token or mutual TLS (a client CA). Server-only TLS encrypts but
authenticates nobody, so it does not count. `allow_insecure` overrides the rule (a private
network). `config.load_config` reports a refusal under the setting's own name;
`security.check_listen_policy` (run by `Daemon.start` for configurations built in code) raises
`security.InsecureListen`. Both ask `exposed`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping


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


def exposed(
    addresses: Mapping[str, str | None], *, authenticated: bool, allow_insecure: bool
) -> list[str]:
    """The names in *addresses* (setting → `host:port`, None when that door is off) whose
    address the policy refuses: not loopback while callers are not *authenticated* (API token or
    mutual TLS), unless *allow_insecure*."""
    if authenticated or allow_insecure:
        return []
    return [name for name, address in addresses.items() if address and not is_loopback(address)]
