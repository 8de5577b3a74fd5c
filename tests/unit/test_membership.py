"""What a cluster member does with its leases: take what rendezvous hashing gives it, let go of
what another live member now wins, and stop sending before its lease runs out."""

from __future__ import annotations

from pinsched.core.membership import margin_s, may_act, plan
from pinsched.core.rendezvous import owner

ACCOUNTS = [f"a{i:03d}" for i in range(60)]


def test_a_lone_member_takes_every_account() -> None:
    """Alone (even before its own heartbeat is seen), a member takes every account."""
    assert plan(ACCOUNTS, [], "m1", []).take == tuple(ACCOUNTS)


def test_a_member_takes_its_share_and_releases_what_a_newcomer_wins() -> None:
    """Holding everything when a second member appears, a member releases exactly the accounts
    the newcomer wins and takes nothing."""
    todo = plan(ACCOUNTS, ["m1", "m2"], "m1", ACCOUNTS)
    assert todo.take == ()
    assert set(todo.release) == {a for a in ACCOUNTS if owner(a, ["m1", "m2"]) == "m2"}
    assert todo.release


def test_accounts_gone_are_released_and_held_ones_are_not_taken_again() -> None:
    """A deleted account's lease is let go; an account already held is not taken again."""
    todo = plan(["x"], [], "m1", ["x", "deleted"])
    assert todo == plan(["x"], ["m1"], "m1", ["x", "deleted"])
    assert todo.take == ()
    assert todo.release == ("deleted",)


def test_a_lease_stops_counting_a_margin_before_it_expires() -> None:
    """With a 10 s lease the margin is 2 s: usable at 7.9 s, not at 8 s or after a pause."""
    assert margin_s(10.0) == 2.0
    assert may_act(10.0, 7.9, 2.0)
    assert not may_act(10.0, 8.0, 2.0)
    assert not may_act(10.0, 100.0, 2.0)
