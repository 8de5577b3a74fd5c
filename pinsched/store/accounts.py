"""Accounts in the store: create, read, compare-and-set update (with the posting-schedule re-plan
and the account's outbox rows in the same transaction), delete; tokens sealed at rest with the
store's `TokenCipher` when one is set. Mixed into `Store`."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pinsched.core.accounts import Account
from pinsched.core.errors import AccountNotFound, AlreadyExists, FailedPrecondition, VersionMismatch
from pinsched.core.jobs import Job, Transition
from pinsched.store.driver import Reader, Tx
from pinsched.store.rows import (
    _ACTIVE_SQL,
    ACCOUNT_EXTRA_COLUMNS,
    AccountOutboxRenderer,
    Event,
    OutboxRow,
    TokenCipher,
    _account_from_row,
    _account_row,
)
from pinsched.store.slots import replan_account, schedule_json

T = TypeVar("T")
_EXTRA_SET = ", ".join(f"{c}=?" for c in ACCOUNT_EXTRA_COLUMNS)


class AccountsMixin:
    """The accounts table; `Store` provides what is declared here."""

    _reader: Reader
    _cipher: TokenCipher | None
    _account_outbox: AccountOutboxRenderer | None

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _append_event(self, db: Tx, job: Job, entry: Transition) -> Event:
        raise NotImplementedError

    async def _insert_outbox(
        self, db: Tx, seq: int, rows: Sequence[OutboxRow], when: datetime
    ) -> None:
        raise NotImplementedError

    @property
    def cipher(self) -> TokenCipher | None:
        """The cipher secrets are sealed with at rest (None: encryption is off)."""
        return self._cipher

    def _seal(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        if self._cipher is None:
            return row
        seal = self._cipher.encrypt
        return (
            row[0],
            row[1],
            seal(row[2]) if row[2] else "",
            seal(row[3]) if row[3] else "",
            *row[4:],
        )

    def _open(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        if self._cipher is None:
            return row
        unseal = self._cipher.decrypt
        return (
            row[0],
            row[1],
            unseal(row[2]) if row[2] else "",
            unseal(row[3]) if row[3] else "",
            *row[4:],
        )

    async def create_account(self, account: Account) -> Account:
        async def op(db: Tx, _: list[Event]) -> Account:
            try:
                await db.execute(
                    "INSERT INTO accounts (id, display_name, access_token, refresh_token, "
                    "access_expires_at, pacing, paused, needs_reauth, state_reason, version, "
                    f"created_at, updated_at, {', '.join(ACCOUNT_EXTRA_COLUMNS)}) "
                    f"VALUES ({','.join('?' * (12 + len(ACCOUNT_EXTRA_COLUMNS)))})",
                    self._seal(_account_row(account)),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"account {account.id!r} already exists") from None
            if account.posting_schedule is not None:
                await db.execute(
                    "UPDATE accounts SET posting_schedule=? WHERE id=?",
                    (schedule_json(account), account.id),
                )
            return account

        return await self._write(op)

    async def get_account(self, account_id: str) -> Account:
        rows = await self._reader.execute_fetchall(
            "SELECT *, posting_schedule FROM accounts WHERE id = ?", (account_id,)
        )
        if not rows:
            raise AccountNotFound(account_id)
        return _account_from_row(self._open(tuple(next(iter(rows)))))

    async def list_accounts(self, *, after_id: str = "", limit: int = 100) -> list[Account]:
        rows = await self._reader.execute_fetchall(
            "SELECT *, posting_schedule FROM accounts WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [_account_from_row(self._open(tuple(r))) for r in rows]

    async def update_account(
        self,
        old: Account,
        new: Account,
        *,
        replan: tuple[datetime, datetime] | None = None,
        moved: list[Job] | None = None,
    ) -> Account:
        """Compare-and-set *old* → *new* (new.version must be old.version + 1).

        With *replan* `(now, horizon_end)` and a changed posting schedule, the account's PENDING
        slotted jobs are re-planned into the new one in the same transaction (appended to
        *moved*).
        """

        async def op(db: Tx, events: list[Event]) -> Account:
            row = self._seal(_account_row(new))
            changed = await db.execute(
                "UPDATE accounts SET display_name=?, access_token=?, refresh_token=?, "
                "access_expires_at=?, pacing=?, paused=?, needs_reauth=?, state_reason=?, "
                f"version=?, updated_at=?, {_EXTRA_SET} WHERE id=? AND version=?",
                (*row[1:10], row[11], *row[12:], new.id, old.version),
            )
            if changed == 0:
                current = await db.fetchone("SELECT version FROM accounts WHERE id=?", (old.id,))
                if current is None:
                    raise AccountNotFound(old.id)
                raise VersionMismatch(old.id, old.version, int(current[0]))
            await db.execute(
                "UPDATE accounts SET posting_schedule=? WHERE id=?", (schedule_json(new), new.id)
            )
            if replan is not None and new.posting_schedule != old.posting_schedule:
                changes = await replan_account(db, new, now=replan[0], horizon_end=replan[1])
                for _, job, entry in changes:
                    events.append(await self._append_event(db, job, entry))
                if moved is not None:
                    moved.extend(job for _, job, _ in changes)
            if self._account_outbox is not None:
                rows = self._account_outbox(old, new)
                if rows:
                    await self._insert_outbox(db, 0, rows, new.updated_at)
            return new

        return await self._write(op)

    async def delete_account(self, account_id: str) -> None:
        """Delete an account with no active jobs (its settled jobs and their events go too, so
        an account created later with the same id sees none of them)."""

        async def op(db: Tx, _: list[Event]) -> None:
            if await db.fetchone("SELECT 1 FROM accounts WHERE id=?", (account_id,)) is None:
                raise AccountNotFound(account_id)
            counted = await db.fetchone(
                f"SELECT count(*) FROM jobs WHERE account_id=? AND state IN ({_ACTIVE_SQL})",
                (account_id,),
            )
            active = counted[0] if counted else 0
            if active:
                raise FailedPrecondition(
                    f"account {account_id!r} has {active} active jobs; cancel them or delete "
                    "with force"
                )
            await db.execute(
                "DELETE FROM events WHERE job_id IN (SELECT id FROM jobs WHERE account_id=?)",
                (account_id,),
            )
            await db.execute("DELETE FROM jobs WHERE account_id=?", (account_id,))
            await db.execute("DELETE FROM accounts WHERE id=?", (account_id,))

        await self._write(op)
