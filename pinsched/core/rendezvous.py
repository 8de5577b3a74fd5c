"""Spreading accounts over the daemons of one database: pure decisions.

Rendezvous (highest random weight) hashing: each account goes to the live member with the
highest hash of (member, account). Every daemon computes the same answer from the same
membership, accounts spread evenly, and when a member joins or leaves only the accounts it wins
or held move (about 1/n of them), never the others.

The leases that make "one owner at a time" true (expiry, fencing epoch) are the store's
(`pinsched.store.leases`); this module only says who *should* own what.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(member_id: str, account_id: str) -> int:
    """The rendezvous weight of *member_id* for *account_id* (stable across processes)."""
    digest = hashlib.blake2b(
        f"{member_id}\x00{account_id}".encode(), digest_size=8, person=b"pinsched"
    ).digest()
    return int.from_bytes(digest, "big")


def owner(account_id: str, members: Iterable[str]) -> str | None:
    """The member that should own *account_id* (None without members); ties go to the smaller
    id, so the answer never depends on the order of *members*."""
    best: tuple[int, str] | None = None
    for member in members:
        key = (weight(member, account_id), member)
        if best is None or key[0] > best[0] or (key[0] == best[0] and key[1] < best[1]):
            best = key
    return None if best is None else best[1]


def assignment(accounts: Iterable[str], members: Iterable[str]) -> dict[str, str | None]:
    """Each account's owner among *members*."""
    pool = sorted(set(members))
    return {account: owner(account, pool) for account in accounts}
