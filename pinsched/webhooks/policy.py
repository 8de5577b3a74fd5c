"""Webhook delivery policy: the retry schedule, what an HTTP outcome means, and which addresses a
webhook may never reach. Pure: no I/O, no clock reads, no randomness of its own.

Retry schedule. After failed attempt *n* the next one waits a **full-jitter** delay drawn in
`[1 s, RETRY_CAPS_S[n-1]]` (5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, then 12 h for every
later retry). The jitter is not drawn from a random generator but from a hash of the delivery's
key and the attempt number: uniform across deliveries (so retries after an outage spread out),
yet reproducible, so the time a delivery has already spent retrying follows from its attempt
count alone and survives restarts. Retrying stops `RETRY_WINDOW_S` (24 h) after the first
attempt: the delay that would cross it is cut so the last attempt lands exactly on it, and a
failure there makes the delivery DEAD.

Address rule. A webhook may target public, private (10/8, 172.16/12, 192.168/16, fc00::/7, CGNAT)
and loopback addresses, but never a link-local address (169.254.0.0/16, fe80::/10) nor a cloud
metadata service (169.254.169.254, 169.254.170.2, fd00:ec2::254, 100.100.100.200, and host names
like `metadata.google.internal`), also when written as an IPv4-mapped, NAT64 or 6to4 IPv6
address: those hand out instance credentials to whoever can make the daemon send a request.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Final

#: Upper bound of the delay after failed attempt n (index n-1); the last repeats.
RETRY_CAPS_S: Final[tuple[float, ...]] = (
    5,
    30,
    120,
    600,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
)
#: How long a delivery is retried, from its first attempt to its last.
RETRY_WINDOW_S: Final = 24 * 3600.0
#: The shortest delay between two attempts.
MIN_DELAY_S: Final = 1.0

METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
METADATA_HOSTS: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.ip_network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- retry schedule ----------------------------------------------------------------------------


def jitter_fraction(key: str, attempt: int) -> float:
    """A number in [0, 1) that is uniform over keys and fixed for (*key*, *attempt*)."""
    digest = hashlib.sha256(f"{key}\x00{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def retry_cap_s(attempt: int) -> float:
    """The upper bound of the delay after failed attempt *attempt* (1-based)."""
    return float(RETRY_CAPS_S[min(attempt, len(RETRY_CAPS_S)) - 1])


def retry_delay_s(key: str, attempt: int) -> float:
    """The full-jitter delay after failed attempt *attempt* (1-based) of delivery *key*, before
    the 24 h window is applied."""
    return max(MIN_DELAY_S, retry_cap_s(attempt) * jitter_fraction(key, attempt))


def next_retry_s(key: str, attempts: int) -> float | None:
    """Seconds from failed attempt number *attempts* to the next attempt, or None when the
    delivery has been retried for `RETRY_WINDOW_S` and is now DEAD."""
    if attempts < 1:
        raise ValueError(f"attempts counts the attempts made, >= 1; got {attempts}")
    spent = 0.0
    for n in range(1, attempts):
        spent += retry_delay_s(key, n)
        if spent >= RETRY_WINDOW_S:
            return None
    return min(retry_delay_s(key, attempts), RETRY_WINDOW_S - spent)


def retry_plan(key: str) -> list[float]:
    """Every delay *key* would wait if each attempt failed (docs, tests)."""
    delays: list[float] = []
    while (delay := next_retry_s(key, len(delays) + 1)) is not None:
        delays.append(delay)
    return delays


# --- outcomes ----------------------------------------------------------------------------------


class Verdict(enum.Enum):
    DELIVERED = "DELIVERED"  # 2xx
    RETRY = "RETRY"  # anything else, while the window lasts
    DEAD = "DEAD"  # the window is over
    GONE = "GONE"  # 410: the endpoint is disabled, its pending deliveries die


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    retry_in_s: float = 0.0  # for RETRY


def judge(status: int | None, *, key: str, attempts: int) -> Outcome:
    """What attempt number *attempts* of delivery *key* ending with HTTP *status* (None: no
    response: timeout, connection error, refused address) means."""
    if status is not None and 200 <= status < 300:
        return Outcome(Verdict.DELIVERED)
    if status == 410:
        return Outcome(Verdict.GONE)
    delay = next_retry_s(key, attempts)
    return Outcome(Verdict.DEAD) if delay is None else Outcome(Verdict.RETRY, delay)


# --- address safety ----------------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # ::a.b.c.d (deprecated), not :: nor ::1
        return ipaddress.IPv4Address(int(ip))
    return None


def address_problem(address: str | IPAddress) -> str | None:
    """Why a webhook may not connect to *address* (an IP, IPv6 scope allowed), or None."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _unscoped(ip)
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(inner)
            return None if problem is None else f"{problem} (embedded in {ip})"
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    return None


def _unscoped(ip: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(ip)) if ip.scope_id else ip


def host_problem(host: str) -> str | None:
    """Why a webhook URL may not name *host* (before resolving it), or None."""
    name = host.strip("[]").rstrip(".").lower()
    if name in METADATA_HOSTS:
        return f"{name} is a cloud metadata host"
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return None
    return address_problem(ip)
