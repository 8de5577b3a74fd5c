"""Changes to published pins, run by an account's dispatcher: the DELETE of a cancelled pin and
the PATCH of an updated one (`RemoteChanges`, mixed into `dispatcher.AccountDispatcher`). What
the answer means is `remote.decide`; what that does to the job is `core.remote` (a delete) and
`core.flags` (a PATCH), committed with `store.changes.change`.

Both go through the account's write bucket (not the pin spacing or caps) and `remote.decide`:
backoff with jitter, Retry-After honoured, one token refresh per operation, and after
`remote_retry_for_s` of failures they give up with the pin still live. While Pinterest refuses
the app's own client credentials they wait instead (`APP_REFUSED_RETRY_S`): the pin and the
account are not at fault.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pinsched.core import flags
from pinsched.core import remote as remote_rules
from pinsched.core import remote_policy as remote
from pinsched.core.accounts import Account
from pinsched.core.decision import FollowUp
from pinsched.core.jobs import Job, JobState
from pinsched.pinterest import client as pt

if TYPE_CHECKING:
    from pinsched.dispatch.dispatcher import Dispatchers

S = JobState
#: While Pinterest refuses the app's client credentials, a delete or PATCH of a published pin
#: waits this long between tries instead of giving up (the pin and the account are fine).
APP_REFUSED_RETRY_S = 300.0


class RemoteChanges:
    """The delete and PATCH steps of `AccountDispatcher` (which provides what is declared)."""

    pool: Dispatchers

    def enqueue(self, job_id: str) -> None:
        raise NotImplementedError

    async def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def _pace_write(self, job: Job, *, hold: bool) -> bool:
        """Wait for a write token of the account (and the app) and any 429 hold, not for pin
        spacing or caps; False when stopping, or (with *hold*) the account can't publish."""
        pool = self.pool
        while not pool.stopping.is_set():
            if hold and not pool.accounts.can_publish(job.account_id):
                return False
            pacer = pool.accounts.pacer(job.account_id)
            mono = pool.clock.monotonic()
            wait = max(0.0, pacer.blocked_until - mono) or pacer.write_delay(mono)
            if not wait:
                wait = pool.accounts.app_bucket.try_take(mono)
                if wait:
                    pacer.bucket.tokens += 1.0  # give the account token back
            if not wait:
                return True
            await self._sleep(wait)
        return False

    async def _remote(
        self,
        job: Job,
        outcome: pt.Outcome,
        account: Account,
        *,
        delete: bool,
        failing_since: datetime | None,
        attempts: int,
    ) -> remote.RemoteDecision:
        """Decide after a delete/PATCH answer; slow the account down on a 429 and refresh the
        token when told (REFRESH becomes RETRY at once, or GIVE_UP/RETRY when refused)."""
        pool = self.pool
        pacer = pool.accounts.pacer(job.account_id)
        decision = remote.decide(
            outcome,
            delete=delete,
            now=pool.clock.now(),
            failing_since=failing_since,
            attempts=attempts,
            refreshed=job.id in pool.remote_refreshed,
            strikes=pacer.strikes,
            policy=pool.settings.retry,
            rng=pool.rng,
            give_up_after_s=pool.settings.remote_retry_for_s,
        )
        if decision.rate_limited:
            pacer.rate_limited(
                pool.clock.monotonic(),
                decision.hint_s if decision.hint_s is not None else decision.delay_s,
            )
        if decision.action is remote.Action.REFRESH:
            pool.remote_refreshed.add(job.id)
            result = await pool.accounts.refresh(account, reason="401")
            if isinstance(result, Account):
                return remote.RemoteDecision(action=remote.Action.RETRY, counted=False)
            if result.client_refused:  # the app's fault, not the pin's: wait, never give up
                pool.remote_refreshed.discard(job.id)  # refresh again on the next 401
                return remote.RemoteDecision(
                    action=remote.Action.RETRY,
                    counted=False,
                    delay_s=APP_REFUSED_RETRY_S,
                    error=result.error,
                )
            if result.permanent:
                return remote.RemoteDecision(action=remote.Action.GIVE_UP, error=result.error)
            return remote.decide(
                pt.Unavailable(result.error),
                delete=delete,
                now=pool.clock.now(),
                failing_since=failing_since,
                attempts=attempts,
                refreshed=True,
                strikes=0,
                policy=pool.settings.retry,
                rng=pool.rng,
                give_up_after_s=pool.settings.remote_retry_for_s,
            )
        if decision.action is not remote.Action.RETRY:
            pool.remote_refreshed.discard(job.id)
        return decision

    async def _delete(self, job: Job) -> None:
        """Delete a cancelled job's pin (`remote.decide`); giving up leaves it DELIVERED."""
        pool = self.pool
        if not await self._pace_write(job, hold=False):
            return  # stopping: still CANCELLING, carried on at the next start
        account = await pool.accounts.get(job.account_id)
        if not pool.may_send(job.account_id):
            return  # the account's lease went: its new owner deletes the pin
        outcome = await pool.client.delete_pin(account.access_token, job.pinterest_pin_id)
        attempts = pool.remote_failures.get(job.id, 0) + 1
        since = None
        if not isinstance(outcome, pt.Delivered | pt.Rejected):
            since = await self._cancelling_since(job)
        decision = await self._remote(
            job, outcome, account, delete=True, failing_since=since, attempts=attempts
        )
        if decision.action is remote.Action.RETRY:
            if decision.counted:
                pool.remote_failures[job.id] = attempts
            if decision.error is None:
                self.enqueue(job.id)  # token refreshed: send it again
            else:
                pool.later(decision.delay_s, job)
            return
        pool.remote_failures.pop(job.id, None)
        if decision.action is remote.Action.DONE:
            done = remote_rules.deleted()
        else:
            assert decision.error is not None
            refused = decision.action is remote.Action.REFUSED
            done = remote_rules.delete_failed(decision.error, refused=refused)
        await pool.change(job, lambda _: done)

    async def _cancelling_since(self, job: Job) -> datetime:
        """When the job's current cancel began (its last move into CANCELLING)."""
        full = await self.pool.store.get_job(job.id, with_history=True)
        moves = [
            h.time
            for h in full.history
            if h.to_state is S.CANCELLING and h.from_state is not S.CANCELLING
        ]
        return moves[-1] if moves else job.updated_at

    async def _patch(self, job: Job) -> None:
        """Apply a delivered pin's pending change on Pinterest (PATCH is idempotent: retried,
        through the write bucket, until `remote_retry_for_s` after its first failure)."""
        pool = self.pool
        remote_update = job.remote_update
        assert remote_update is not None
        if not await self._pace_write(job, hold=True):
            if not pool.stopping.is_set():
                pool.later(pool.read_retry_s(job.id), job)
            return
        account = await pool.accounts.get(job.account_id)
        body = {
            p.split(".", 1)[1]: getattr(job.pin, p.split(".", 1)[1]) or None
            for p in remote_update.paths
        }
        if not pool.may_send(job.account_id):
            return  # the account's lease went: its new owner sends the PATCH
        outcome = await pool.client.update_pin(account.access_token, job.pinterest_pin_id, body)
        attempts = remote_update.attempts + 1
        decision = await self._remote(
            job,
            outcome,
            account,
            delete=False,
            failing_since=remote_update.failing_since,
            attempts=attempts,
        )
        if decision.action is remote.Action.RETRY and decision.error is None:
            self.enqueue(job.id)  # token refreshed: send it again (not counted)
            return
        err = decision.error
        if decision.action is not remote.Action.RETRY:
            ok = decision.action is remote.Action.DONE
            refused = decision.action is remote.Action.REFUSED
            settled = await pool.change(
                job,
                lambda j: flags.patch_settled(
                    j, remote_update, ok=ok, refused=refused, attempts=attempts, error=err
                ),
                _REMOTE,
            )
            if settled is not None and settled.decision.follow_up is FollowUp.SEND_AGAIN:
                self.enqueue(job.id)  # a newer update arrived meanwhile: send it
            return
        counted = attempts if decision.counted else remote_update.attempts
        now = pool.clock.now()
        bumped = await pool.change(
            job,
            lambda j: flags.patch_retry(j, remote_update, attempts=counted, error=err, now=now),
            _REMOTE,
        )
        if bumped is not None:
            pool.later(decision.delay_s, bumped.job)


#: A remote update is recorded only while the pin is live (a cancel makes it moot).
_REMOTE: frozenset[JobState] = frozenset({S.DELIVERED})
