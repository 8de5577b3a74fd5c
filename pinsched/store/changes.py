"""The one write path of a job: `change(store, job, decide)` reads, decides (a pure function
returning a `core.decision.Decision`), applies (`core.decision.apply`) and commits with
compare-and-set, deciding again on the fresh row when the race is lost; given a *fence* (an
account lease, `store.leases.Fence`), it is checked in the same transaction, and a lost lease
raises `LeaseLost` with nothing committed. Its twin for accounts is
`change_account`. Both run in `retrying`: the only compare-and-set retry loop of the code base,
with one budget (`BUDGET`) and one error when it is spent (`KeepsChanging`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, TypeVar

import structlog

from pinsched.core.accounts import Account
from pinsched.core.decision import Decision, apply
from pinsched.core.errors import FailedPrecondition, VersionMismatch
from pinsched.core.jobs import Job, JobState, Transition
from pinsched.store.leases import Fence
from pinsched.store.rows import StaleJob

log = structlog.get_logger("pinsched.store")
T = TypeVar("T")

#: Tries of one change before giving up (each lost race re-reads and decides again).
BUDGET: Final = 20


class KeepsChanging(FailedPrecondition):
    """A change lost the compare-and-set `BUDGET` times in a row."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} keeps changing; try again")


class Lost(Exception):
    """Raised by an attempt of `retrying` that lost a race and must be tried again."""


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    conflict: type[Exception] | tuple[type[Exception], ...] = Lost,
) -> T:
    """Run *attempt* until it does not raise *conflict*, at most `BUDGET` times; then
    `KeepsChanging` naming *what*."""
    for _ in range(BUDGET):
        try:
            return await attempt()
        except conflict:
            continue
    raise KeepsChanging(what)


class JobWrites(Protocol):
    async def get_job(self, job_id: str, *, with_history: bool = False) -> Job: ...

    async def commit_many(
        self, changes: Sequence[tuple[Job, Job, Transition]], *, fence: Fence | None = None
    ) -> list[tuple[Job, int]]: ...


class AccountWrites(Protocol):
    async def get_account(self, account_id: str) -> Account: ...


@dataclass(frozen=True, slots=True)
class Changed:
    """What `change` did: the job as committed (or as it is, when nothing was to commit) and
    the decision made about it."""

    job: Job
    decision: Decision

    @property
    def committed(self) -> bool:
        return self.decision.commits


Expect = Callable[[Job], bool] | frozenset[JobState]


async def change(
    store: JobWrites,
    job: Job | str,
    decide: Callable[[Job], Decision],
    *,
    now: Callable[[], datetime],
    expect: Expect | None = None,
    expected_version: int = 0,
    fence: Callable[[Job], Fence | None] | None = None,
) -> Changed | None:
    """Decide about *job* (or the job of that id, read now) and commit the decision.

    A lost race re-reads the job and decides again, while the fresh row is still one *expect*
    accepts (states, or a predicate; None: always); otherwise the change is dropped (None).
    With *expected_version* the job must be at that version, and a lost race is
    `VersionMismatch` instead. *decide* may raise (a refused request): nothing is committed.
    """
    current = job if isinstance(job, Job) else await store.get_job(job)
    job_id = current.id

    async def attempt() -> Changed | None:
        nonlocal current
        if expected_version and current.version != expected_version:
            raise VersionMismatch(job_id, expected_version, current.version)
        decision = decide(current)
        changes = apply(current, decision, now=now())
        if not changes:
            return Changed(current, decision)
        try:
            if fence is None:
                committed = await store.commit_many(changes)
            else:
                committed = await store.commit_many(changes, fence=fence(current))
        except StaleJob:
            current = await store.get_job(job_id)
            if expected_version:
                raise VersionMismatch(job_id, expected_version, current.version) from None
            if expect is not None and not _accepts(expect, current):
                log.info("change_dropped", job_id=job_id, state=current.state.value)
                return None
            raise Lost() from None
        return Changed(committed[-1][0], decision)

    return await retrying(attempt, f"job {job_id!r}")


def _accepts(expect: Expect, job: Job) -> bool:
    return job.state in expect if isinstance(expect, frozenset) else expect(job)


async def change_account(
    store: AccountWrites,
    account_id: str,
    decide: Callable[[Account], Account],
    write: Callable[[Account, Account], Awaitable[Account]],
) -> Account:
    """Read the account, let *decide* compute its next version, and *write* it (a
    compare-and-set raising `VersionMismatch` when the account changed meanwhile: read and
    decide again)."""

    async def attempt() -> Account:
        old = await store.get_account(account_id)
        return await write(old, decide(old))

    return await retrying(attempt, f"account {account_id!r}", conflict=VersionMismatch)
