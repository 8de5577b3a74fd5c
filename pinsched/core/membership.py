"""What a member of a cluster (several daemons on one database) does with its account leases:
pure decisions, no I/O and no clock (times are given).

* `plan`: from the accounts, the live members and the leases this member holds, which accounts
  to take (rendezvous hashing gives them to it and it does not hold them) and which to let go
  (it holds them but they are now another live member's, or they are gone). Taking is the
  store's conditional write, so a plan never makes two owners: it only says what to try.
* `may_act`: whether a held lease still allows sending, on this process's monotonic clock with a
  safety margin before its expiry (a process that was paused wakes up past it and sends nothing).
* `Ownership`: what the scheduler, the router and the dispatchers ask of the member (a single
  daemon on SQLite has none: it owns every account).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from pinsched.core.rendezvous import owner


class Ownership(Protocol):
    """Which accounts this daemon publishes now."""

    def owns(self, account_id: str) -> bool:
        """Whether this daemon holds *account_id*'s lease, safely unexpired."""
        ...

    def owned(self) -> list[str]:
        """The accounts `owns` is true for, by id."""
        ...

    def shared(self) -> bool:
        """Whether other daemons were live at the last look (they may commit jobs for the
        accounts this one owns)."""
        ...


@dataclass(frozen=True, slots=True)
class Plan:
    take: tuple[str, ...]
    release: tuple[str, ...]


def plan(accounts: Iterable[str], members: Collection[str], me: str, held: Collection[str]) -> Plan:
    """Which of *accounts* member *me* should try to take, and which of the *held* ones it
    should release, given the live *members* (*me* counts as live while it runs)."""
    pool = sorted({*members, me})
    wanted = {a for a in accounts if owner(a, pool) == me}
    take = tuple(sorted(wanted - set(held)))
    release = tuple(sorted(set(held) - wanted))
    return Plan(take, release)


def may_act(expires_mono: float, now_mono: float, margin_s: float) -> bool:
    """Whether a lease that expires at *expires_mono* (this process's monotonic seconds,
    counted from before the write that took or renewed it) still allows sending at *now_mono*,
    keeping *margin_s* in hand."""
    return now_mono < expires_mono - margin_s


def margin_s(lease_s: float) -> float:
    """The safety margin kept before a lease's expiry: a fifth of the lease (2 s of 10 s)."""
    return lease_s / 5
