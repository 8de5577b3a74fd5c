"""Several in-process daemons on one PostgreSQL database: accounts spread over the live members
by rendezvous hashing, move when a member joins or stops heartbeating, and come back to a paused
member that wakes up, never with two owners at once."""

from __future__ import annotations

from collections.abc import Callable

from pinsched.app import Daemon
from pinsched.cluster.member import Member
from pinsched.core.accounts import Account
from pinsched.core.rendezvous import owner
from pinsched.store import Store
from pinsched.testing import FakeClock
from tests.cluster.conftest import LEASE_S, Nodes
from tests.conftest import Api

ACCOUNTS = [f"acct{i:02d}" for i in range(12)]


async def owners(nodes: Nodes) -> dict[str, str]:
    """Each account's current lease holder (unexpired at the first clock's time)."""
    store = nodes.daemon(0).store
    now = nodes.clocks[0].now()
    return {
        lease.account_id: lease.owner for lease in await store.leases() if lease.expires_at > now
    }


def held(nodes: Nodes, i: int) -> set[str]:
    member = nodes.daemon(i).member
    assert member is not None
    return set(member.owned())


async def test_accounts_spread_move_on_join_and_on_a_silent_member_and_come_back(
    nodes: Nodes,
) -> None:
    """One daemon takes every account; two more join and the accounts rebalance to the
    rendezvous owners; one stops heartbeating (paused) and after its lease its accounts move to
    the two others (takeovers counted); when it wakes it finds its leases lost, sends nothing
    for them, and gets its share back. No account ever has two holders."""
    first = await nodes.start(0)
    for account_id in ACCOUNTS:
        await first.create_account(account_id)
    await nodes.run(LEASE_S / 2)
    assert held(nodes, 0) == set(ACCOUNTS)  # alone: every account is its own
    await nodes.start(1)
    await nodes.start(2)
    await nodes.run(2 * LEASE_S)
    ids = [nodes.member_id(i) for i in range(3)]
    want = {a: owner(a, ids) for a in ACCOUNTS}
    assert await owners(nodes) == want
    for i in range(3):
        assert held(nodes, i) == {a for a, m in want.items() if m == ids[i]}
        assert held(nodes, i), "every member owns some of 12 accounts"
    third = held(nodes, 2)

    # The third daemon is paused: no heartbeat, no renewal; the others carry on.
    for _ in range(12):
        await nodes.run(LEASE_S / 4, running=[0, 1])
        assert not held(nodes, 0) & held(nodes, 1)
    want_two = {a: owner(a, ids[:2]) for a in ACCOUNTS}
    assert await owners(nodes) == want_two
    takeovers = sum(m.counts.takeovers for m in (nodes.daemon(i).member for i in (0, 1)) if m)
    assert takeovers >= len(third)
    assert held(nodes, 2) == third  # its clock stood still: it has not noticed yet

    # It wakes up: its leases count as gone at once (local clock), then it rejoins.
    await nodes.clocks[2].advance(3 * LEASE_S)
    assert held(nodes, 2) == set()
    await nodes.run(2 * LEASE_S)
    member = nodes.daemon(2).member
    assert member is not None
    assert member.counts.lost == len(third)
    exposed = nodes.daemon(2).metrics.render()[0].decode()
    assert f"pinsched_cluster_leases_lost_total {float(len(third))}" in exposed
    assert "pinsched_cluster_members 3.0" in exposed
    assert f"pinsched_cluster_leases_held {float(len(held(nodes, 2)))}" in exposed
    taken = sum(m.counts.takeovers for m in (nodes.daemon(i).member for i in (0, 1)) if m)
    exposed = "".join(nodes.daemon(i).metrics.render()[0].decode() for i in (0, 1))
    counted = sum(
        float(line.split()[-1])
        for line in exposed.splitlines()
        if line.startswith("pinsched_cluster_takeovers_total ")
    )
    assert counted == taken
    assert await owners(nodes) == want
    assert all(held(nodes, i) == {a for a, m in want.items() if m == ids[i]} for i in range(3))


async def test_a_daemon_that_stops_hands_its_accounts_over_at_once(nodes: Nodes) -> None:
    """A daemon stopped cleanly leaves the cluster: the other takes its accounts at its next
    tick, well before the lease would have run out."""
    first = await nodes.start(0)
    await nodes.start(1)
    ids = [nodes.member_id(0), nodes.member_id(1)]
    # Member ids are random: pick three accounts that rendezvous gives to each daemon.
    names = [f"acct{i:03d}" for i in range(200)]
    accounts = [a for a in names if owner(a, ids) == ids[0]][:3]
    accounts += [a for a in names if owner(a, ids) == ids[1]][:3]
    for account_id in accounts:
        await first.create_account(account_id)
    await nodes.run(2 * LEASE_S)
    assert held(nodes, 0) == set(accounts[:3])
    assert held(nodes, 1) == set(accounts[3:])
    api = nodes.apis[0]
    assert api is not None
    await api.close(grace_s=0.5)
    nodes.apis[0] = None
    await nodes.run(LEASE_S / 2)  # one tick of the survivor, less than a lease
    assert held(nodes, 1) == set(accounts)


async def test_one_daemon_owns_every_account_and_on_sqlite_runs_no_member(
    make_daemon: Callable[..., Daemon], db_backend: str
) -> None:
    """A daemon alone publishes every account without any membership or lease (no member,
    nothing written to the lease tables), on SQLite and on PostgreSQL; with `cluster` on
    PostgreSQL it is a member that holds the lease of every account before it is ready."""
    api = await Api.open(make_daemon())
    try:
        await api.create_account("acme")
        await api.daemon.activity.idle.wait()
        assert api.daemon.member is None
        assert api.daemon.dispatchers.ownership is None
        assert await api.daemon.store.leases() == []
    finally:
        await api.close()
    if db_backend == "sqlite":
        return
    api = await Api.open(make_daemon(cluster=True))  # takes its first leases before ready
    try:
        member = api.daemon.member
        assert member is not None
        leases = {lease.account_id: lease.owner for lease in await api.daemon.store.leases()}
        assert leases == {"acme": member.id}
        assert member.owned() == ["acme"]
    finally:
        await api.close()


async def test_an_account_whose_resume_failed_is_resumed_at_the_next_tick(pg_url: str) -> None:
    """A lease that ran out on the local clock (a pause) but was still renewed is resumed (its
    jobs reloaded); when that reload fails (the database, briefly), the next tick tries again
    instead of holding an account whose queue was dropped."""
    clock = FakeClock()
    store = await Store.open(pg_url, cluster=True)
    calls: list[str] = []

    async def resume(account_id: str) -> None:
        calls.append(account_id)
        if len(calls) == 1:
            raise ConnectionError("the database, briefly")

    async def take(account_id: str) -> None:
        return None

    try:
        now = clock.now()
        await store.create_account(
            Account(id="acme", access_token="t", created_at=now, updated_at=now)
        )
        member = Member(
            store, clock, lease_s=5.0, on_take=take, on_lose=lambda _: None, on_resume=resume
        )
        await member.tick()
        assert member.owned() == ["acme"]
        await clock.advance(4.5)  # past the local margin, before the lease's expiry
        assert member.owned() == []
        await member.tick()  # renewed: resumed, and the reload fails
        assert calls == ["acme"]
        await clock.advance(1.0)
        await member.tick()
        assert calls == ["acme", "acme"]
        assert member.owned() == ["acme"]
    finally:
        await store.close()
