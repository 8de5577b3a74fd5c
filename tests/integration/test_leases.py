"""Account leases and membership in the store, on both backends (`db_url`): one owner at a time,
a fencing epoch that grows on every change of hands, and fenced writes that commit nothing once
the lease is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from pinsched.core.accounts import Account
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition, transition
from pinsched.store import Fence, LeaseLost, Store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=10)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    await s.create_account(Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW))
    yield s
    await s.close()


async def test_one_owner_at_a_time_and_the_epoch_grows_on_takeover(store: Store) -> None:
    """A holds the lease; B cannot take it until it expires; then B gets it at a higher epoch,
    and A's renewal of its old epoch keeps nothing."""
    a = await store.take_lease("acme", "A", NOW, TTL)
    assert a is not None
    assert await store.take_lease("acme", "B", NOW + timedelta(seconds=5), TTL) is None
    renewed = await store.take_lease("acme", "A", NOW + timedelta(seconds=5), TTL)
    assert renewed is not None
    assert renewed.epoch == a.epoch
    later = NOW + timedelta(seconds=14)
    assert await store.take_lease("acme", "B", later, TTL) is None  # A renewed until +15 s
    b = await store.take_lease("acme", "B", NOW + timedelta(seconds=15), TTL)
    assert b is not None
    assert b.owner == "B"
    assert b.epoch == a.epoch + 1
    assert await store.renew_leases("A", [a], NOW + timedelta(seconds=16), TTL) == []
    [held] = await store.leases()
    assert (held.owner, held.epoch) == ("B", b.epoch)


async def test_renewal_keeps_exactly_the_leases_still_held_at_their_epoch(store: Store) -> None:
    """One renewal of 600 leases (more than one statement's worth): the one another member took
    over and the one that ran out are not renewed; every other is, to now + ttl."""
    ids = [f"a{i:03d}" for i in range(600)]
    for account_id in ids:
        await store.create_account(
            Account(id=account_id, access_token="t", created_at=NOW, updated_at=NOW)
        )
    held = [await store.take_lease(a, "A", NOW, TTL) for a in ids]
    leases = [lease for lease in held if lease is not None]
    assert len(leases) == 600
    # a001 runs out early (A let it go), then B takes it; a550 only runs out.
    await store.release_lease(leases[1])
    assert await store.take_lease("a001", "B", NOW, TTL) is not None
    await store.release_lease(leases[550])
    later = NOW + timedelta(seconds=5)
    kept = await store.renew_leases("A", leases, later, TTL)
    assert [lease.account_id for lease in kept] == [a for a in ids if a not in ("a001", "a550")]
    assert {(lease.owner, lease.expires_at) for lease in kept} == {("A", later + TTL)}
    rows = {lease.account_id: lease for lease in await store.leases()}
    assert rows["a001"].owner == "B"
    assert rows["a550"].expires_at <= later
    assert rows["a599"].expires_at == later + TTL


async def test_a_fenced_write_after_losing_the_lease_commits_nothing(store: Store) -> None:
    """A job change fenced by A's old epoch raises LeaseLost once B took the account over:
    the job, its event log and the sequence are as they were; B's fence commits."""
    a = await store.take_lease("acme", "A", NOW, TTL)
    assert a is not None
    job = Job(
        id="job1",
        account_id="acme",
        state=JobState.PENDING,
        pin=PinSpec(board_id="1", media=ImageUrl(url="https://x/a.jpg"), title="t"),
        scheduled_at=NOW,
        planned_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    entry = Transition(from_state=None, to_state=JobState.PENDING, time=NOW, reason="new")
    [(job, _)] = await store.create_jobs([job], [entry])
    queued = transition(job, JobState.QUEUED, now=NOW, reason="due")
    job, _ = await store.commit(job, *queued, fence=Fence("acme", "A", a.epoch, NOW))
    takeover = NOW + timedelta(seconds=11)
    b = await store.take_lease("acme", "B", takeover, TTL)
    assert b is not None
    seq = await store.last_sequence()
    submitted = transition(job, JobState.SUBMITTED, now=takeover, reason="sending")
    with pytest.raises(LeaseLost):
        await store.commit(job, *submitted, fence=Fence("acme", "A", a.epoch, takeover))
    assert (await store.get_job(job.id)).state is JobState.QUEUED
    assert await store.last_sequence() == seq
    await store.commit(job, *submitted, fence=Fence("acme", "B", b.epoch, takeover))
    assert (await store.get_job(job.id)).state is JobState.SUBMITTED


async def test_an_expired_lease_fences_even_its_own_owner(store: Store) -> None:
    """A write fenced at a time past the lease's expiry is refused, even with the right epoch."""
    a = await store.take_lease("acme", "A", NOW, TTL)
    assert a is not None
    with pytest.raises(LeaseLost):
        await store.commit_many([], fence=Fence("acme", "A", a.epoch, NOW + TTL))


async def test_members_live_by_heartbeat_and_leaving_frees_their_leases(store: Store) -> None:
    """Members are live until their heartbeat expires; a member that leaves lets its leases go
    at once, so another takes them over without waiting for expiry."""
    await store.heartbeat("A", NOW, TTL)
    await store.heartbeat("B", NOW, timedelta(seconds=3))
    assert await store.live_members(NOW + timedelta(seconds=1)) == ["A", "B"]
    assert await store.live_members(NOW + timedelta(seconds=5)) == ["A"]
    a = await store.take_lease("acme", "A", NOW, TTL)
    assert a is not None
    await store.leave("A")
    assert await store.live_members(NOW) == ["B"]
    b = await store.take_lease("acme", "B", NOW + timedelta(seconds=1), TTL)
    assert b is not None
    assert b.epoch == a.epoch + 1
