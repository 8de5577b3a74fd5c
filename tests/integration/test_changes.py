"""`store.changes`: the one compare-and-set write path of a job (and of an account), on a real
SQLite store; the races are real commits made between the read and the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pinsched.core.accounts import Account
from pinsched.core.decision import LEAVE, Decision
from pinsched.core.errors import VersionMismatch
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition, touch
from pinsched.store import Fence, Store
from pinsched.store.changes import BUDGET, KeepsChanging, change, change_account

S = JobState
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    await s.create_account(Account(id="acme", access_token="tok", created_at=NOW, updated_at=NOW))
    job = Job(
        id="j1",
        account_id="acme",
        state=S.PENDING,
        pin=PinSpec(board_id="1", media=ImageUrl(url="https://x/a.jpg"), title="t"),
        scheduled_at=NOW,
        planned_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    entry = Transition(from_state=None, to_state=S.PENDING, time=NOW, reason="scheduled")
    await s.create_jobs([job], [entry])
    yield s
    await s.close()


class Racing:
    """The real store, where another writer touches the job right before each of our commits
    (for the first *races* commits): every one of those is a lost compare-and-set."""

    def __init__(self, store: Store, races: int) -> None:
        self.store, self.races = store, races

    async def get_job(self, job_id: str, *, with_history: bool = False) -> Job:
        return await self.store.get_job(job_id, with_history=with_history)

    async def commit_many(
        self, changes: Sequence[tuple[Job, Job, Transition]], *, fence: Fence | None = None
    ) -> list[tuple[Job, int]]:
        if self.races > 0:
            self.races -= 1
            current = await self.store.get_job(changes[0][0].id)
            await self.store.commit(current, *touch(current, now=NOW, reason="the other writer"))
        return await self.store.commit_many(changes, fence=fence)


def clock() -> datetime:
    return NOW


async def test_a_decision_is_committed_and_answered(store: Store) -> None:
    """change() reads the job, commits the decision and returns the committed version."""
    done = await change(
        store, "j1", lambda j: Decision(to=S.CANCELLED, reason="cancelled"), now=clock
    )
    assert done is not None
    assert done.committed
    assert (done.job.state, done.job.version) == (S.CANCELLED, 2)
    assert (await store.get_job("j1")).state is S.CANCELLED


async def test_a_lost_race_decides_again_on_the_fresh_row(store: Store) -> None:
    """After a lost compare-and-set the decision is made again on the row the winner left."""
    seen: list[int] = []

    def decide(j: Job) -> Decision:
        seen.append(j.version)
        return Decision(reason="updated", changes={"attempts": j.attempts + 1})

    done = await change(Racing(store, races=2), "j1", decide, now=clock)
    assert done is not None
    assert seen == [1, 2, 3]
    assert done.job.version == 4


async def test_nothing_to_decide_commits_nothing(store: Store) -> None:
    """LEAVE commits nothing and answers the job as it is."""
    done = await change(store, "j1", lambda j: LEAVE, now=clock)
    assert done is not None
    assert not done.committed
    assert (await store.get_job("j1")).version == 1


async def test_a_change_is_dropped_once_the_job_left_the_expected_states(store: Store) -> None:
    """With *expect*, a lost race on a job now in another state drops the change (None)."""
    job = await store.get_job("j1")
    await store.commit(job, *touch(job, now=NOW, reason="meanwhile"))
    moved = await change(
        store,
        job,  # the stale version: its commit loses
        lambda j: Decision(to=S.QUEUED, reason="due"),
        now=clock,
        expect=lambda j: j.version == 1,
    )
    assert moved is None
    assert (await store.get_job("j1")).state is S.PENDING


async def test_an_expected_version_is_checked_and_a_lost_race_is_aborted(store: Store) -> None:
    """With *expected_version* another version is VersionMismatch, and so is a lost race."""
    with pytest.raises(VersionMismatch):
        await change(store, "j1", lambda j: LEAVE, now=clock, expected_version=7)
    with pytest.raises(VersionMismatch):
        await change(
            Racing(store, races=1),
            "j1",
            lambda j: Decision(reason="x"),
            now=clock,
            expected_version=1,
        )


async def test_one_budget_and_one_error_when_it_is_spent(store: Store) -> None:
    """A change that loses BUDGET races in a row ends with KeepsChanging naming the job."""
    with pytest.raises(KeepsChanging, match="job 'j1' keeps changing"):
        await change(Racing(store, races=BUDGET), "j1", lambda j: Decision(reason="x"), now=clock)
    done = await change(
        Racing(store, races=BUDGET - 1), "j1", lambda j: Decision(reason="x"), now=clock
    )
    assert done is not None
    assert done.committed


async def test_an_account_change_is_decided_again_after_a_lost_race(store: Store) -> None:
    """change_account re-reads and decides again when the account changed meanwhile."""
    raced = False

    async def write(old: Account, new: Account) -> Account:
        nonlocal raced
        if not raced:
            raced = True
            other = old.replace(display_name="other", version=old.version + 1)
            await store.update_account(old, other)
        return await store.update_account(old, new)

    def decide(old: Account) -> Account:
        return old.replace(paused=True, version=old.version + 1, updated_at=NOW + timedelta(1))

    updated = await change_account(store, "acme", decide, write)
    assert (updated.paused, updated.display_name, updated.version) == (True, "other", 3)
