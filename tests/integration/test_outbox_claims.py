"""Webhook deliveries claimed by one daemon at a time on PostgreSQL (`store.outbox_claims`):
a claim keeps others off a delivery and off the later deliveries of its job, a claim that ran
out (its daemon was killed) is taken over, and a late result of a lost claim changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from pinsched.store import Store, codec, postgres

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CLAIM = timedelta(seconds=60)


@pytest.fixture
async def two(
    db_backend: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Store, Store]]:
    """Two daemons' stores on one PostgreSQL database, with three deliveries of endpoint `e`:
    ids 1 and 2 of job `j1` (in that order), 3 of job `j2`."""
    if db_backend != "postgresql":
        pytest.skip("deliveries are claimed on PostgreSQL only")
    monkeypatch.setattr(postgres, "LOCK_KEY", 0x0E0E0101, raising=False)
    a = await Store.open(db_url)
    monkeypatch.setattr(postgres, "LOCK_KEY", 0x0E0E0102, raising=False)
    b = await Store.open(db_url)
    conn = await asyncpg.connect(db_url)
    try:
        at = codec.to_us(NOW)
        await conn.executemany(
            "INSERT INTO webhook_deliveries (endpoint, event_seq, message_id, order_key, "
            "event_type, payload, next_attempt_at, created_at, updated_at) "
            "VALUES ('e', $1, $2, $3, 'job.x', '{}', $4, $4, $4)",
            [(1, "m1", "j1", at), (2, "m2", "j1", at), (3, "m3", "j2", at)],
        )
    finally:
        await conn.close()
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


async def due(store: Store, who: str, at: datetime) -> list[int]:
    return [d.id for d in await store.webhook_due("e", at, claimant=who, claim_until=at + CLAIM)]


async def delivered(store: Store, who: str, delivery_id: int, at: datetime) -> bool:
    return await store.webhook_record(
        delivery_id,
        state="DELIVERED",
        attempts=1,
        next_attempt_at=at,
        status=200,
        error=None,
        now=at,
        claimant=who,
    )


async def test_a_killed_senders_claims_are_taken_over_in_order(
    two: tuple[Store, Store],
) -> None:
    """A claims the head of each job; B gets nothing while A's claims hold (not even job j1's
    second delivery); once they ran out B takes them over; A's late result is refused, and j1's
    second delivery is due only after B recorded the first."""
    a, b = two
    assert await due(a, "A", NOW) == [1, 3]
    assert await due(b, "B", NOW + timedelta(seconds=30)) == []
    later = NOW + CLAIM + timedelta(seconds=1)  # A was killed: its claims ran out
    assert await due(b, "B", later) == [1, 3]
    assert not await delivered(a, "A", 1, later)  # A's answer came too late: B owns it now
    assert (await b.webhook_list(state="PENDING", limit=10))[0].id == 1
    assert await due(b, "B", later) == [1, 3]  # B's own claims, still its
    assert await delivered(b, "B", 1, later)
    assert await due(a, "A", later) == [2]
    assert await due(b, "B", later) == [3]


async def test_two_claimers_at_once_never_get_the_same_delivery(
    two: tuple[Store, Store],
) -> None:
    """Two daemons claiming at the same moment split the due deliveries between them."""
    a, b = two
    got_a, got_b = await asyncio.gather(due(a, "A", NOW), due(b, "B", NOW))
    assert sorted(got_a + got_b) == [1, 3]


async def test_a_stopping_sender_releases_its_claims(two: tuple[Store, Store]) -> None:
    """Claims A gives back at its stop are due for B at once, not when they run out."""
    a, b = two
    assert await due(a, "A", NOW) == [1, 3]
    assert await a.webhook_release("A") == 2
    assert await due(b, "B", NOW) == [1, 3]
