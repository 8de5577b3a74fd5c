"""Carrying out a decision about a submission (`Applying`, mixed into
`dispatcher.AccountDispatcher`): the one place where a `core` decision about a job in flight is
applied. Before the commit, its effects outside the job: the pacer (`Pacer`), the account's hold
or re-auth, a token refresh (then decided again, `core.outcomes.after_refresh`), or a
reconciliation instead of a commit; then the commit through `store.changes.change`, decided
again on the fresh row after a lost race (a recorded cancel carried out, `core.flags`); after
it, a look again later (`LOOK_AGAIN`). Where the committed job goes next is the router's.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import structlog

from pinsched.core import flags, outcomes
from pinsched.core.accounts import Account
from pinsched.core.decision import Decision, FollowUp, Pacer
from pinsched.core.jobs import Job, JobError, JobState

if TYPE_CHECKING:
    from pinsched.dispatch.dispatcher import Dispatchers

log = structlog.get_logger("pinsched.dispatcher")
S = JobState


class Applying:
    """The apply step of `AccountDispatcher` (which provides what is declared)."""

    pool: Dispatchers

    if TYPE_CHECKING:  # provided by `AccountDispatcher` (another mixin)

        async def _reconcile_and_settle(self, job: Job, err: JobError | None) -> None: ...

    async def _carry_out(self, job: Job, decision: Decision, account: Account) -> None:
        """Apply a decision about *job*'s submission: its effects on the account, a refresh or
        a reconciliation it asks for, then the commit (a recorded cancel carried out)."""
        pool = self.pool
        pacer = pool.accounts.pacer(job.account_id)
        mono = pool.clock.monotonic()
        match decision.pacer:
            case Pacer.SUCCESS:
                pacer.strikes = 0
            case Pacer.RATE_LIMITED:
                pacer.rate_limited(mono, decision.pacer_s)
            case Pacer.SPAM_BLOCKED:
                pacer.spam_blocked(mono, decision.pacer_s)
        match decision.follow_up:
            case FollowUp.RECONCILE:
                await self._reconcile_and_settle(job, decision.error)
                return
            case FollowUp.REFRESH:
                assert decision.error is not None
                decision = await self._refreshed(job, decision.error, account)
            case FollowUp.HOLD_ACCOUNT:
                await pool.accounts.hold(job.account_id, decision.note)
            case FollowUp.NEEDS_REAUTH:
                await pool.accounts.mark_needs_reauth(job.account_id, decision.note)
        if decision.commits:
            await self._commit_outcome(job, decision)
        if decision.pacer in (Pacer.RATE_LIMITED, Pacer.SPAM_BLOCKED):
            await pool.accounts.save_pacer(job.account_id)  # a restart must not burst

    async def _refreshed(self, job: Job, err: JobError, account: Account) -> Decision:
        """Refresh the account's token once (a 401) and decide again with the answer."""
        pool = self.pool
        result = await pool.accounts.refresh(account, reason="401")
        failure = None if isinstance(result, Account) else result
        return outcomes.after_refresh(
            job,
            err,
            refreshed=failure is None,
            client_refused=failure is not None and failure.client_refused,
            permanent=failure is not None and failure.permanent,
            refresh_error=failure.error if failure is not None else None,
            policy=pool.settings.retry,
            now=pool.clock.now(),
            rng=pool.rng,
        )

    async def _commit_outcome(self, job: Job, decision: Decision) -> None:
        """Commit an outcome of *job*'s submission on the job as it is now."""
        pool = self.pool
        if decision.follow_up is not FollowUp.LOOK_AGAIN:
            pool.forget(job.id)
        try:
            done = await pool.change(job, lambda j: flags.carry_out_cancel(j, decision))
        except sqlite3.IntegrityError:
            # Another job claimed this pin first (unique pin id): look again, excluding it.
            pin_id = decision.changes.get("pinterest_pin_id")
            log.warning("pin_already_claimed", job_id=job.id, pin_id=pin_id)
            pool.later(pool.read_retry_s(job.id), job)
            return
        if done is None:
            return
        new = done.job
        if new.state in (S.DELIVERED, S.CANCELLING) and decision.to is S.DELIVERED:
            log.info(
                "pin_delivered",
                job_id=job.id,
                account_id=job.account_id,
                pin_id=new.pinterest_pin_id,
                attempt=new.attempts,
                reason=decision.reason,
            )
        if decision.follow_up is FollowUp.LOOK_AGAIN and new.state is S.SUBMITTED:
            pool.later(decision.delay_s or 0.001, new)
