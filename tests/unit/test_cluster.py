"""Rendezvous hashing spreads accounts evenly over the members and moves only what it must."""

from __future__ import annotations

from pinsched.core.rendezvous import assignment, owner

ACCOUNTS = [f"acct-{i:04d}" for i in range(3000)]


def test_accounts_spread_evenly_over_the_members() -> None:
    """3,000 accounts over three members: each gets a third, within 10 %."""
    got = assignment(ACCOUNTS, ["a", "b", "c"])
    counts = {m: sum(1 for o in got.values() if o == m) for m in "abc"}
    assert all(900 <= n <= 1100 for n in counts.values()), counts


def test_a_member_leaving_moves_only_its_accounts() -> None:
    """When c leaves, exactly c's accounts move, and they spread over a and b."""
    before = assignment(ACCOUNTS, ["a", "b", "c"])
    after = assignment(ACCOUNTS, ["a", "b"])
    moved = {acct for acct in ACCOUNTS if before[acct] != after[acct]}
    assert moved == {acct for acct in ACCOUNTS if before[acct] == "c"}
    assert {after[acct] for acct in moved} == {"a", "b"}


def test_a_member_joining_takes_about_its_share_from_the_others() -> None:
    """When d joins three members, only accounts d wins move (about a quarter)."""
    before = assignment(ACCOUNTS, ["a", "b", "c"])
    after = assignment(ACCOUNTS, ["a", "b", "c", "d"])
    moved = [acct for acct in ACCOUNTS if before[acct] != after[acct]]
    assert all(after[acct] == "d" for acct in moved)
    assert 600 <= len(moved) <= 900


def test_the_answer_ignores_member_order_and_needs_members() -> None:
    """Every daemon computes the same owner whatever order it lists members in."""
    assert owner("x", ["a", "b", "c"]) == owner("x", ["c", "a", "b"])
    assert owner("x", []) is None
