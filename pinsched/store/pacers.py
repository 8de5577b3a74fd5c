"""Durable pacer state (a 429 slow-down, a spam-block cool-down, the recent pins of the day caps)
and app-wide notices in the webhook outbox; mixed into `Store`.

The pacer state is an opaque JSON object (`pinsched.core.pacing.AccountPacer.snapshot`), one row per
account, deleted with the account. Notices are outbox rows that belong to no job and no account
(for example `app.credentials_refused`); they are written in their own transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pinsched.store import codec
from pinsched.store.opening import GuardedReader
from pinsched.store.rows import Event, OutboxRow

T = TypeVar("T")


class PacerStateMixin:
    """Pacer snapshots and app notices; mixed into `Store`."""

    _reader: GuardedReader

    async def _write(self, fn: Callable[[sqlite3.Connection, list[Event]], T]) -> T:
        raise NotImplementedError

    def _insert_outbox(
        self, db: sqlite3.Connection, seq: int, rows: Sequence[OutboxRow], when: datetime
    ) -> None:
        raise NotImplementedError

    async def save_pacer(self, account_id: str, state: dict[str, Any], now: datetime) -> None:
        """Store *account_id*'s pacer snapshot (no-op when the account is gone)."""

        def op(db: sqlite3.Connection, _: list[Event]) -> None:
            if db.execute("SELECT 1 FROM accounts WHERE id=?", (account_id,)).fetchone() is None:
                return
            db.execute(
                "INSERT INTO pacer_state (account_id, state, updated_at) VALUES (?,?,?) "
                "ON CONFLICT(account_id) DO UPDATE SET state=excluded.state, "
                "updated_at=excluded.updated_at",
                (account_id, json.dumps(state, separators=(",", ":")), codec.to_us(now)),
            )

        await self._write(op)

    async def pacer_states(self) -> dict[str, dict[str, Any]]:
        """Every stored pacer snapshot by account id."""
        rows = await self._reader.execute_fetchall("SELECT account_id, state FROM pacer_state")
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

        def op(db: sqlite3.Connection, _: list[Event]) -> None:
            self._insert_outbox(db, 0, rows, now)

        await self._write(op)
