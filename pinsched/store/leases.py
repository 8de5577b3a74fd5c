"""Membership and account leases in the store: the database says which daemon
publishes an account, until when, and under which fencing epoch. Mixed into `Store`.

* `members`: each daemon's heartbeat (`heartbeat`, `leave`, `live_members`).
* `account_leases`: one row per account: its owner, an `epoch` that grows every time the
  account changes hands (or its owner retakes it after letting it expire), and `expires_at`.
  `take_lease` is one conditional write, so two daemons never both win; `renew_leases` keeps
  what is still ours; `release_lease` lets an account go at once (rebalancing, shutdown).
* Fencing: a write given a `Fence` checks, in its own transaction, that the lease is still
  this daemon's, at that epoch and unexpired, and raises `LeaseLost` otherwise (nothing of the
  write is committed). On PostgreSQL the check locks the lease row (`FOR SHARE`), so a takeover
  waits for the fenced transaction and sees what it committed; on SQLite the single writer
  serialises them anyway.

Times are the callers' clock (microseconds, like every other column). Who *should* own an
account is `pinsched.core.membership`'s decision; `pinsched.cluster` runs the leases. The reads
of the jobs of the accounts a member owns (`owned_due_window`, `owned_in_flight`) live here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from pinsched.core.jobs import Job
from pinsched.store import codec
from pinsched.store.cluster_view import record_takeover
from pinsched.store.driver import Reader, Tx
from pinsched.store.rows import _JOB_COLUMNS, Event, _job_from_row

T = TypeVar("T")

#: Leases renewed per statement (two parameters each).
_RENEW_CHUNK = 500


class LeaseLost(Exception):
    """This daemon no longer holds the account's lease at the epoch it acted under: the write
    was not committed, and nothing more may be sent for that account."""


@dataclass(frozen=True, slots=True)
class Lease:
    account_id: str
    owner: str
    epoch: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Fence:
    """What a fenced write must still hold: *owner*'s lease of *account_id* at *epoch*,
    unexpired at *now*."""

    account_id: str
    owner: str
    epoch: int
    now: datetime


async def check_fence(db: Tx, fence: Fence) -> None:
    """Raise LeaseLost unless *fence* still holds, inside the writing transaction *db*."""
    lock = " FOR SHARE" if db.dialect.name == "postgresql" else ""
    row = await db.fetchone(
        f"SELECT owner, epoch, expires_at FROM account_leases WHERE account_id = ?{lock}",
        (fence.account_id,),
    )
    if (
        row is None
        or row[0] != fence.owner
        or int(row[1]) != fence.epoch
        or int(row[2]) <= codec.to_us(fence.now)
    ):
        raise LeaseLost(fence.account_id)


def _lease(row: Sequence[object]) -> Lease:
    return Lease(str(row[0]), str(row[1]), int(str(row[2])), codec.from_us(int(str(row[3]))))


class LeasesMixin:
    """Members and account leases; mixed into `Store`."""

    _reader: Reader

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def heartbeat(self, member_id: str, now: datetime, ttl: timedelta) -> None:
        """Record that *member_id* is alive until now + *ttl* (joining if it is new)."""
        until = codec.to_us(now + ttl)

        async def op(db: Tx, _: list[Event]) -> None:
            await db.execute(
                "INSERT INTO members (member_id, started_at, alive_until) VALUES (?,?,?) "
                "ON CONFLICT (member_id) DO UPDATE SET alive_until = excluded.alive_until",
                (member_id, codec.to_us(now), until),
            )

        await self._write(op)

    async def leave(self, member_id: str) -> None:
        """Forget *member_id* and let its leases expire at once."""

        async def op(db: Tx, _: list[Event]) -> None:
            await db.execute("DELETE FROM members WHERE member_id = ?", (member_id,))
            await db.execute(
                "UPDATE account_leases SET expires_at = 0 WHERE owner = ?", (member_id,)
            )

        await self._write(op)

    async def live_members(self, now: datetime) -> list[str]:
        """The members whose heartbeat has not expired at *now*, by id."""
        rows = await self._reader.execute_fetchall(
            "SELECT member_id FROM members WHERE alive_until > ? ORDER BY member_id",
            (codec.to_us(now),),
        )
        return [str(r[0]) for r in rows]

    async def take_lease(
        self, account_id: str, member_id: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """Take (or renew) *account_id*'s lease for *member_id*: the lease, or None while another
        member holds it unexpired. The epoch grows whenever the lease was expired or another's."""
        now_us, until = codec.to_us(now), codec.to_us(now + ttl)

        async def op(db: Tx, _: list[Event]) -> Lease | None:
            await db.execute(
                "INSERT INTO account_leases (account_id, owner, epoch, expires_at) "
                "VALUES (?, '', 0, 0) ON CONFLICT (account_id) DO NOTHING",
                (account_id,),
            )
            renewed = await db.execute(
                "UPDATE account_leases SET expires_at = ? "
                "WHERE account_id = ? AND owner = ? AND expires_at > ?",
                (until, account_id, member_id, now_us),
            )
            if not renewed:
                before = await db.fetchone(
                    "SELECT owner, epoch, expires_at FROM account_leases WHERE account_id = ?",
                    (account_id,),
                )
                taken = await db.execute(
                    "UPDATE account_leases SET owner = ?, epoch = epoch + 1, expires_at = ? "
                    "WHERE account_id = ? AND expires_at <= ?",
                    (member_id, until, account_id, now_us),
                )
                if taken and before is not None and before[0] not in ("", member_id):
                    await record_takeover(db, account_id, before, member_id, now_us)
            row = await db.fetchone(
                "SELECT account_id, owner, epoch, expires_at FROM account_leases "
                "WHERE account_id = ?",
                (account_id,),
            )
            return _lease(row) if row is not None and row[1] == member_id else None

        return await self._write(op)

    async def renew_leases(
        self, member_id: str, leases: Sequence[Lease], now: datetime, ttl: timedelta
    ) -> list[Lease]:
        """Extend those of *leases* that *member_id* still holds at their epoch, unexpired;
        the leases it still has."""
        now_us, until = codec.to_us(now), codec.to_us(now + ttl)

        async def op(db: Tx, _: list[Event]) -> list[Lease]:
            renewed: set[tuple[str, int]] = set()
            for start in range(0, len(leases), _RENEW_CHUNK):  # one statement per chunk
                chunk = leases[start : start + _RENEW_CHUNK]
                pairs = ", ".join(["(?, CAST(? AS BIGINT))"] * len(chunk))
                rows = await db.fetchall(
                    "UPDATE account_leases SET expires_at = ? WHERE owner = ? AND expires_at > ? "
                    f"AND (account_id, epoch) IN (VALUES {pairs}) RETURNING account_id, epoch",
                    (
                        until,
                        member_id,
                        now_us,
                        *(v for x in chunk for v in (x.account_id, x.epoch)),
                    ),
                )
                renewed.update((str(r[0]), int(r[1])) for r in rows)
            return [
                Lease(x.account_id, member_id, x.epoch, now + ttl)
                for x in leases
                if (x.account_id, x.epoch) in renewed
            ]

        return await self._write(op)

    async def release_lease(self, lease: Lease) -> None:
        """Give *lease* up at once (if it is still held at its epoch)."""

        async def op(db: Tx, _: list[Event]) -> None:
            await db.execute(
                "UPDATE account_leases SET expires_at = 0 "
                "WHERE account_id = ? AND owner = ? AND epoch = ?",
                (lease.account_id, lease.owner, lease.epoch),
            )

        await self._write(op)

    async def leases(self) -> list[Lease]:
        """Every account lease (held or expired), by account."""
        rows = await self._reader.execute_fetchall(
            "SELECT account_id, owner, epoch, expires_at FROM account_leases ORDER BY account_id"
        )
        return [_lease(tuple(r)) for r in rows]

    # ------------------------------------------------- the jobs of the accounts one member owns
    # (PostgreSQL only: on SQLite the single daemon owns every account and reads every job.)

    async def account_ids(self) -> list[str]:
        """Every account's id."""
        rows = await self._reader.execute_fetchall("SELECT id FROM accounts ORDER BY id")
        return [str(r[0]) for r in rows]

    async def owned_due_window(
        self, after: tuple[int, str], until_us: int, limit: int, account_ids: Sequence[str]
    ) -> list[tuple[str, int]]:
        """`Store.due_window` restricted to the jobs of *account_ids*."""
        if not account_ids:
            return []
        rows = await self._reader.execute_fetchall(
            "SELECT id, due_us FROM jobs WHERE state IN ('PENDING', 'RETRYING') "
            "AND account_id = ANY(?) AND (due_us, id) > (?, ?) AND due_us <= ? "
            "ORDER BY due_us, id LIMIT ?",
            (list(account_ids), after[0], after[1], until_us, limit),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def account_versions(self, account_ids: Sequence[str]) -> dict[str, int]:
        """The stored version of each of *account_ids* that still exists (PostgreSQL)."""
        if not account_ids:
            return {}
        rows = await self._reader.execute_fetchall(
            "SELECT id, version FROM accounts WHERE id = ANY(?)", (list(account_ids),)
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def owned_in_flight(self, account_ids: Sequence[str]) -> list[Job]:
        """`Store.in_flight_jobs` of *account_ids*: QUEUED, SUBMITTED and CANCELLING jobs and
        delivered pins with a pending remote update; SUBMITTED first (they are reconciled
        before anything new is sent), then in planned order."""
        if not account_ids:
            return []
        rows = await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE account_id = ANY(?) AND "
            "(state IN ('QUEUED', 'SUBMITTED', 'CANCELLING') OR remote_pending = 1) "
            "ORDER BY CASE WHEN state = 'SUBMITTED' THEN 0 ELSE 1 END, planned_at, id",
            (list(account_ids),),
        )
        return [_job_from_row(tuple(r)) for r in rows]
