"""Looking for the pin of a job whose request may have reached Pinterest (`Reconciling`, mixed
into `dispatcher.AccountDispatcher`): an unknown outcome, or a job found SUBMITTED at start-up.

It lists the board's recent pins (`reconcile.py` finds the candidates) and asks
`core.settle.after_search` what that means; the board unreadable, `core.settle.
after_read_failure` (one token refresh per run of failed reads on a 401). The board not found
(404) means no pin on it either.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from pinsched.core import reconcile, settle
from pinsched.core.accounts import Account
from pinsched.core.decision import Decision
from pinsched.core.jobs import Job, JobError, JobState
from pinsched.pinterest import client as pt
from pinsched.store import JobFilter

if TYPE_CHECKING:
    from pinsched.dispatch.dispatcher import Dispatchers

log = structlog.get_logger("pinsched.dispatcher")
S = JobState


class Reconciling:
    """The reconciliation steps of `AccountDispatcher` (which provides what is declared)."""

    pool: Dispatchers

    def enqueue(self, job_id: str) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by `AccountDispatcher` (another mixin)

        async def _commit_outcome(self, job: Job, decision: Decision) -> None: ...

    async def _reconcile_and_settle(self, job: Job, err: JobError | None) -> None:
        """Settle a job whose request may have reached Pinterest (see the module docstring)."""
        pool = self.pool
        account = await pool.accounts.get(job.account_id)
        err = err or settle.interrupted()
        settle_at = (job.submitted_at or job.updated_at) + timedelta(seconds=pool.settle_s)
        read_started = pool.clock.now()
        try:
            found = await self._find_pin(job, account.access_token)
        except pt.ReadFailed as exc:
            await self._read_failed(job, err, account, exc)
            return
        pool.read_failures.pop(job.id, None)
        decision = settle.after_search(
            job,
            err,
            found,
            read_started=read_started,
            settle_at=settle_at,
            policy=pool.settings.retry,
            now=pool.clock.now(),
            rng=pool.rng,
        )
        if decision.error is not None:  # looked for again: remember why
            pool.unknown_errors[job.id] = decision.error
        await self._commit_outcome(job, decision)

    async def _read_failed(
        self, job: Job, err: JobError, account: Account, exc: pt.ReadFailed
    ) -> None:
        """The board could not be read: the job stays SUBMITTED and is looked for again, with
        backoff, until `core.settle.after_read_failure` hands it to the user."""
        pool = self.pool
        log.warning("reconcile_failed", job_id=job.id, account_id=job.account_id, error=str(exc))
        failures = pool.read_failures.get(job.id, 0)
        failed = settle.after_read_failure(err, failures=failures, problem=str(exc))
        if failed is not None:
            await self._commit_outcome(job, failed)
            return
        pool.unknown_errors[job.id] = err
        if isinstance(exc.outcome, pt.AuthExpired) and job.id not in pool.read_failures:
            pool.read_failures[job.id] = 1  # one refresh per run of failed reads
            result = await pool.accounts.refresh(account, reason="401 on a read")
            if isinstance(result, Account):
                self.enqueue(job.id)
                return
        pool.later(pool.read_retry_s(job.id), job)

    async def _find_pin(self, job: Job, token: str) -> str | reconcile.Ambiguous | settle.Search:
        """The id of *job*'s pin among its board's recent pins, `Ambiguous`, ABSENT, or
        INCONCLUSIVE (raises ReadFailed). The board's `board_pins_modified_at` is not used."""
        pool = self.pool
        since = job.submitted_at or job.updated_at
        rank = await self._twin_rank(job)
        found: list[reconcile.Candidate] = []
        bookmark: str | None = None
        for _ in range(pool.settings.reconcile_pages):
            try:
                page = await pool.client.board_pins(
                    token,
                    job.pin.board_id,
                    bookmark=bookmark,
                    page_size=pool.settings.reconcile_page_size,
                )
            except pt.ReadFailed as exc:
                gone = exc.outcome
                if isinstance(gone, pt.Rejected) and gone.error.http_status == 404:
                    return settle.Search.ABSENT  # no such board (for this user): no pin on it
                raise
            ids = [str(p.get("id")) for p in page.items]
            owned = await pool.store.owned_pin_ids(ids)
            found += reconcile.candidates(job.pin, page.items, submitted_at=since, owned=owned)
            if not page.bookmark or reconcile.search_exhausted(page.items, since):
                return reconcile.choose(job.pin, found, rank=rank) or settle.Search.ABSENT
            bookmark = page.bookmark
        return reconcile.choose(job.pin, found, rank=rank) or settle.Search.INCONCLUSIVE

    async def _twin_rank(self, job: Job) -> int:
        """How many SUBMITTED jobs of the account with the same content were submitted before
        *job* (each of them takes an earlier candidate pin; see `reconcile.choose`)."""
        twins = await self.pool.store.list_jobs(
            JobFilter(
                account_id=job.account_id,
                states=frozenset({S.SUBMITTED}),
                board_id=job.pin.board_id,
            ),
            limit=1000,
        )
        key = (job.submitted_at or job.updated_at, job.id)
        return sum(
            1
            for t in twins
            if t.id != job.id
            and reconcile.same_content(t.pin, job.pin)
            and (t.submitted_at or t.updated_at, t.id) < key
        )
