"""Durable pacer state (a 429 slow-down, a spam-block cool-down, the recent pins of the day caps)
and app-wide notices in the webhook outbox; mixed into `Store`.

The pacer state is an opaque JSON object (`pinsched.pacing.AccountPacer.snapshot`), one row per
account, deleted with the account. Notices are outbox rows that belong to no job and no account
(for example `app.credentials_refused`); they are written in their own transaction.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pinsched.store import codec
from pinsched.store.driver import Reader, Tx
from pinsched.store.rows import Event, OutboxRow

T = TypeVar("T")


class PacerStateMixin:
    """Pacer snapshots and app notices; mixed into `Store`."""

    _reader: Reader

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _insert_outbox(
        self, db: Tx, seq: int, rows: Sequence[OutboxRow], when: datetime
    ) -> None:
        raise NotImplementedError

    async def save_pacer(self, account_id: str, state: dict[str, Any], now: datetime) -> None:
        """Store *account_id*'s pacer snapshot (no-op when the account is gone)."""

        async def op(db: Tx, _: list[Event]) -> None:
            if await db.fetchone("SELECT 1 FROM accounts WHERE id=?", (account_id,)) is None:
                return
            await db.execute(
                "INSERT INTO pacer_state (account_id, state, updated_at) VALUES (?,?,?) "
                "ON CONFLICT(account_id) DO UPDATE SET state=excluded.state, "
                "updated_at=excluded.updated_at",
                (account_id, json.dumps(state, separators=(",", ":")), codec.to_us(now)),
            )

        await self._write(op)

    async def pacer_states(
        self, account_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Every stored pacer snapshot (or those of *account_ids*) by account id."""
        if account_ids is None:
            rows = await self._reader.execute_fetchall("SELECT account_id, state FROM pacer_state")
        else:
            marks = ",".join("?" * len(account_ids))
            rows = (
                await self._reader.execute_fetchall(
                    f"SELECT account_id, state FROM pacer_state WHERE account_id IN ({marks})",
                    tuple(account_ids),
                )
                if account_ids
                else []
            )
        out: dict[str, dict[str, Any]] = {}
        for account_id, raw in rows:
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                out[str(account_id)] = value
        return out

    async def enqueue_notice(self, rows: Sequence[OutboxRow], now: datetime) -> None:
        """Commit webhook deliveries that belong to no job (an app-wide notice)."""
        if not rows:
            return

        async def op(db: Tx, _: list[Event]) -> None:
            await self._insert_outbox(db, 0, rows, now)

        await self._write(op)
