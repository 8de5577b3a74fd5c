"""`pinsched cluster status` over daemons that really share one PostgreSQL database: what it
reads (members, leases, takeovers) is what the daemons did, when one of them goes silent and
when one of them stops cleanly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pinsched.cli.cluster import as_data
from pinsched.cli.main import main
from pinsched.store.cluster_view import read_cluster
from pinsched.store.schema import MIGRATIONS
from tests.cluster.conftest import LEASE_S, Nodes

ACCOUNTS = [f"acct{i:02d}" for i in range(8)]


async def status(nodes: Nodes) -> dict[str, Any]:
    """The status as data, judged at the first daemon's clock."""
    view = await read_cluster(nodes.url, len(MIGRATIONS), takeovers=50, timeout_s=5)
    return as_data(view, now_us=int(nodes.clocks[0].now().timestamp() * 1_000_000))


async def test_a_silent_member_shows_gone_and_its_accounts_as_expired_takeovers(
    nodes: Nodes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two daemons share the accounts; the second is paused past its lease: the status shows
    it gone, every lease held by the first, and one `expired` takeover per account that moved,
    at the lease's new epoch; the command line prints the same members and takeovers."""
    first = await nodes.start(0)
    await nodes.start(1)
    for account_id in ACCOUNTS:
        await first.create_account(account_id)
    await nodes.run(LEASE_S)
    a, b = nodes.member_id(0), nodes.member_id(1)
    before = {x["account_id"]: x["owner"] for x in (await status(nodes))["leases"]}
    moved = sorted(k for k, v in before.items() if v == b)
    assert moved, before  # rendezvous gave the second daemon a share

    await nodes.run(3 * LEASE_S, running=[0])  # the second is paused
    data = await status(nodes)
    assert {m["id"]: m["live"] for m in data["members"]} == {a: True, b: False}
    assert {x["account_id"]: (x["owner"], x["held"]) for x in data["leases"]} == {
        k: (a, True) for k in ACCOUNTS
    }
    epochs = {x["account_id"]: x["epoch"] for x in data["leases"]}
    got = sorted((t["account_id"], t["previous_owner"], t["new_owner"], t["epoch"], t["reason"])
                 for t in data["takeovers"] if t["previous_owner"] == b)  # fmt: skip
    assert got == [(k, b, a, epochs[k], "expired") for k in moved]

    capsys.readouterr()  # the in-process daemons' log lines so far
    assert await asyncio.to_thread(main, ["cluster", "status", "--db", nodes.url, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {m["id"] for m in printed["members"]} == {a, b}
    assert {t["account_id"] for t in printed["takeovers"] if t["previous_owner"] == b} == set(moved)


async def test_a_clean_stop_hands_its_accounts_over_as_released(nodes: Nodes) -> None:
    """A daemon stopped cleanly leaves the members and lets its leases go: the other takes its
    accounts at its next tick, recorded as `released` takeovers, long before a lease expires."""
    first = await nodes.start(0)
    await nodes.start(1)
    for account_id in ACCOUNTS:
        await first.create_account(account_id)
    await nodes.run(LEASE_S)
    a, b = nodes.member_id(0), nodes.member_id(1)
    moved = sorted(x["account_id"] for x in (await status(nodes))["leases"] if x["owner"] == b)
    assert moved

    second = nodes.apis[1]
    assert second is not None
    await second.close(grace_s=0.5)
    nodes.apis[1] = None
    await nodes.run(LEASE_S / 2)  # less than a lease: only a release explains the move
    data = await status(nodes)
    assert [m["id"] for m in data["members"]] == [a]
    released = sorted(t["account_id"] for t in data["takeovers"] if t["reason"] == "released")
    assert released == moved
    assert all(x["owner"] == a and x["held"] for x in data["leases"])
