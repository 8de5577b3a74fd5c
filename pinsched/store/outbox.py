"""The webhook outbox of the store: due deliveries, attempts, dead letters, redelivery.

Rows are written by `Store` inside each transition's own transaction (rendered by the `Outbox`
given to `Store.open`); this mixin reads and updates them. On PostgreSQL a sender's scan claims
the rows it sends (`claimant`; `pinsched.store.outbox_claims`), so several daemons never send
the same delivery at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pinsched.store import codec
from pinsched.store.driver import POSTGRESQL, Backend, Reader, Tx
from pinsched.store.outbox_claims import CLAIM, RECORD_CLAIMED, RELEASE
from pinsched.store.rows import _DELIVERY_COLUMNS, Delivery, Event, _delivery_from_row

T = TypeVar("T")


class OutboxMixin:
    """Webhook-outbox queries; mixed into `Store`."""

    _reader: Reader
    _db: Backend

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        raise NotImplementedError

    def _claims(self, claimant: str) -> str:
        """*claimant* where deliveries are claimed (PostgreSQL), else ""."""
        return claimant if self._db.dialect is POSTGRESQL else ""

    async def webhook_due(
        self,
        endpoint: str,
        now: datetime,
        limit: int = 100,
        *,
        claimant: str = "",
        claim_until: datetime | None = None,
    ) -> list[Delivery]:
        """Pending deliveries of *endpoint* that are due and first in line for their order key
        (a job's deliveries go out one at a time, in order). On PostgreSQL, with a *claimant*,
        only those no other claimant holds, claimed for it until *claim_until* (one statement,
        on its own: an autocommitted write)."""
        if self._claims(claimant) and claim_until is not None:
            at = codec.to_us(now)
            claimed = await self._reader.execute_fetchall(
                CLAIM,
                (claimant, codec.to_us(claim_until), endpoint, at, at, claimant, limit),
            )
            return sorted((_delivery_from_row(tuple(r)) for r in claimed), key=lambda d: d.id)
        rows = await self._reader.execute_fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.endpoint = ? "
            "AND d.state = 'PENDING' AND d.next_attempt_at <= ? AND d.id = ("
            "SELECT min(e.id) FROM webhook_deliveries e WHERE e.endpoint = d.endpoint "
            "AND e.order_key = d.order_key AND e.state = 'PENDING') ORDER BY d.id LIMIT ?",
            (endpoint, codec.to_us(now), limit),
        )
        return [_delivery_from_row(tuple(r)) for r in rows]

    async def webhook_next_due(self, endpoint: str) -> datetime | None:
        rows = list(
            await self._reader.execute_fetchall(
                "SELECT min(next_attempt_at) FROM webhook_deliveries "
                "WHERE endpoint = ? AND state = 'PENDING'",
                (endpoint,),
            )
        )
        return codec.opt_dt(rows[0][0])

    async def webhook_record(
        self,
        delivery_id: int,
        *,
        state: str,
        attempts: int,
        next_attempt_at: datetime,
        status: int | None,
        error: str | None,
        now: datetime,
        claimant: str = "",
    ) -> bool:
        """Record the result of one attempt; False when *claimant*'s claim on it was lost
        (PostgreSQL: it ran out and another daemon took the delivery)."""
        claimed = self._claims(claimant)
        values = [
            state,
            attempts,
            codec.to_us(next_attempt_at),
            status,
            error,
            codec.to_us(now),
            delivery_id,
        ]
        sql = (
            "UPDATE webhook_deliveries SET state=?, attempts=?, next_attempt_at=?, "
            "last_status=?, last_error=?, updated_at=? WHERE id=?"
        )
        if claimed:
            sql = sql.replace("updated_at=?", "updated_at=?, claimed_by=NULL, claim_until=NULL")
            sql += RECORD_CLAIMED
            values.append(claimed)

        async def op(db: Tx, _: list[Event]) -> bool:
            return await db.execute(sql, values) > 0

        return await self._write(op)

    async def webhook_release(self, claimant: str) -> int:
        """Give back the deliveries *claimant* claimed and did not finish (PostgreSQL)."""
        if not self._claims(claimant):
            return 0
        rows = await self._reader.execute_fetchall(RELEASE + " RETURNING id", (claimant,))
        return len(list(rows))

    async def webhook_kill_endpoint(self, endpoint: str, reason: str, now: datetime) -> int:
        """Mark every pending delivery of *endpoint* DEAD (the endpoint was disabled)."""

        async def op(db: Tx, _: list[Event]) -> int:
            return await db.execute(
                "UPDATE webhook_deliveries SET state='DEAD', last_error=?, updated_at=? "
                "WHERE endpoint=? AND state='PENDING'",
                (reason, codec.to_us(now), endpoint),
            )

        return await self._write(op)

    async def webhook_redeliver(
        self,
        *,
        now: datetime,
        endpoint: str = "",
        delivery_ids: Sequence[int] = (),
    ) -> int:
        """Send DEAD deliveries again (the given ids, or all of an endpoint, or all)."""

        async def op(db: Tx, _: list[Event]) -> int:
            where, args = ["state = 'DEAD'"], list[Any]()
            if endpoint:
                where.append("endpoint = ?")
                args.append(endpoint)
            if delivery_ids:
                where.append(f"id IN ({','.join('?' * len(delivery_ids))})")
                args.extend(delivery_ids)
            return await db.execute(
                "UPDATE webhook_deliveries SET state='PENDING', attempts=0, next_attempt_at=?, "
                f"updated_at=? WHERE {' AND '.join(where)}",
                (codec.to_us(now), codec.to_us(now), *args),
            )

        return await self._write(op)

    async def webhook_list(
        self,
        *,
        endpoint: str = "",
        state: str = "",
        after_id: int = 0,
        limit: int = 100,
    ) -> list[Delivery]:
        where, args = ["id > ?"], list[Any]([after_id])
        if endpoint:
            where.append("endpoint = ?")
            args.append(endpoint)
        if state:
            where.append("state = ?")
            args.append(state)
        rows = await self._reader.execute_fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {' AND '.join(where)} "
            "ORDER BY id LIMIT ?",
            (*args, limit),
        )
        return [_delivery_from_row(tuple(r)) for r in rows]

    async def webhook_depth(self) -> dict[tuple[str, str], int]:
        """Count of deliveries by (endpoint, state), from the counts the writing transactions
        keep (no table scan)."""
        rows = await self._reader.execute_fetchall(
            "SELECT endpoint, state, n FROM webhook_counts WHERE n > 0"
        )
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}
