"""Per-account publish loops: read → pace → send → decide → apply (DESIGN §6).

One `AccountDispatcher` task per account takes its jobs in order, waits for the account's pace
(spacing, caps, write bucket, app-wide bucket), records SUBMITTED (committed *before* the request
leaves), calls Pinterest once, asks `outcome.decide` what the answer means (the failure table:
`core.outcomes`) and carries the decision out (`_carry_out`): the pacer's effect, the account's
hold or re-auth, a token refresh (then decided again), a reconciliation (`reconciling`), and the
commit through `store.changes.change`, which re-decides on the fresh row when a concurrent
cancel or update won the race (outcomes are facts; a recorded cancel is carried out there,
`core.flags`). Where the committed job goes next is the router's business (`dispatch.router`).

Deletes (cancel of a published pin) and PATCHes are `remote.RemoteChanges`, mixed in.

Several daemons on one database (`ownership` and `fence` given, `pinsched.cluster`): jobs are
taken only for accounts this daemon owns; every job write carries the account lease's `Fence`
(checked in the write's transaction: a daemon that lost the lease commits nothing, `LeaseLost`),
and right before a request leaves, `may_send` checks the lease on the local monotonic clock with
a safety margin (a daemon paused past its lease sends nothing when it wakes). `drop` forgets an
account's queue when its lease goes.

Stopping: no new request leaves once `stop()` is called; in-flight ones get the grace period,
then their task is cancelled and the job stays SUBMITTED, reconciled at the next start.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Activity, Clock, sleep_or_wake
from pinsched.core import remote_policy as remote
from pinsched.core import settle
from pinsched.core.accounts import Account
from pinsched.core.decision import Decision
from pinsched.core.errors import JobNotFound
from pinsched.core.jobs import Job, JobError, JobState
from pinsched.core.membership import Ownership
from pinsched.core.retry import RetryPolicy
from pinsched.core.staging import park
from pinsched.dispatch import outcome as answers
from pinsched.dispatch.applying import Applying
from pinsched.dispatch.reconciling import Reconciling
from pinsched.dispatch.remote import RemoteChanges
from pinsched.media import staging
from pinsched.pinterest import client as pt
from pinsched.store import Fence, LeaseLost, Store
from pinsched.store.changes import Changed, Expect, change

log = structlog.get_logger("pinsched.dispatcher")
S = JobState
#: A decision about a submission is committed while the job is still in flight.
IN_FLIGHT: frozenset[JobState] = frozenset({S.SUBMITTED, S.CANCELLING})


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchSettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    spam_cooldown_s: float = 6 * 3600.0
    #: How long a lost request may still reach Pinterest; None = the client's request timeout.
    settle_s: float | None = None
    reconcile_pages: int = 10
    reconcile_page_size: int = 100
    #: How long Pinterest's reads may lag its writes: added to the request timeout before
    #: "no pin" may be concluded.
    read_lag_s: float = 5.0
    #: How long a delete or PATCH of a published pin is retried before giving up.
    remote_retry_for_s: float = remote.GIVE_UP_AFTER_S


class Dispatchers:
    """The pool of per-account dispatchers."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        client: pt.PinterestClient,
        accounts: AccountRegistry,
        *,
        settings: DispatchSettings,
        video_staging: bool = False,
        rng: random.Random | None = None,
        activity: Activity | None = None,
        ownership: Ownership | None = None,
        fence: Callable[[str], Fence] | None = None,
    ) -> None:
        self.store, self.clock, self.client, self.accounts = store, clock, client, accounts
        self.ownership = ownership
        self._fence = fence
        self.fenced = 0  # writes refused because the lease had gone (LeaseLost)
        self.settings = settings
        self.video_staging = video_staging  # a job whose video is not ready is parked
        self.rng = rng or random.Random()
        self._by_account: dict[str, AccountDispatcher] = {}
        self.stopping = asyncio.Event()
        self.activity = activity or Activity()
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._timers: dict[str, asyncio.Task[None]] = {}  # job id → its one pending timer
        self.read_failures: dict[str, int] = {}  # job id → failed looks in a row
        self.unknown_errors: dict[str, JobError] = {}  # job id → why its pin is looked for
        self.remote_refreshed: set[str] = set()  # jobs whose delete/PATCH refreshed the token
        self.remote_failures: dict[str, int] = {}  # job id → failed deletes in a row

    @property
    def settle_s(self) -> float:
        """How long after a submission "no pin" may be concluded (timeout + read lag)."""
        s = self.settings.settle_s
        return self.client.timeout_s + self.settings.read_lag_s if s is None else s

    def submit(self, job: Job, *, reread: bool = False) -> None:
        """Queue *job* on its account's dispatcher, which takes this copy (the newest
        committed, as the router hands it over) or, with *reread*, reads the row again when the
        job's turn comes."""
        if self.stopping.is_set():
            return  # left in the store as it is; recovered at the next start
        if self.ownership is not None and not self.ownership.owns(job.account_id):
            return  # another daemon's account: its owner has it
        d = self._by_account.get(job.account_id)
        if d is None:
            d = self._by_account[job.account_id] = AccountDispatcher(self, job.account_id)
        d.enqueue(job.id, None if reread else job)

    def later(self, delay_s: float, job: Job) -> None:
        """Hand *job* back to its dispatcher after *delay_s* (look for a pin again, retry a
        delete or a PATCH); forgotten at stop (the store still has the job). Its row is read
        again then: the job may have changed meanwhile (a newer update already sent), and a
        PATCH built from this copy would put back the pin's older text.

        A job has one timer: a newer one replaces a pending one, which was set by an earlier
        look at the job. Two would be two retry chains, each sending at its own backoff, so
        the job's requests would come faster than its backoff says."""
        if self.stopping.is_set():
            return
        job_id = job.id
        pending = self._timers.pop(job_id, None)
        if pending is not None:
            pending.cancel()

        due = self.clock.monotonic() + delay_s  # from now, not from when the task first runs

        async def fire() -> None:
            await self.clock.sleep(due - self.clock.monotonic())
            self.submit(job, reread=True)

        def done(task: asyncio.Task[None]) -> None:
            if self._timers.get(job_id) is task:
                del self._timers[job_id]

        task = asyncio.create_task(fire())
        self._timers[job_id] = task
        task.add_done_callback(done)

    def may_send(self, account_id: str) -> bool:
        """Whether a request for *account_id* may leave now (its lease is held, safely
        unexpired on the local clock; always with a single daemon)."""
        return self.ownership is None or self.ownership.owns(account_id)

    def drop(self, account_id: str) -> None:
        """Forget the queued jobs of *account_id* (its lease went to another daemon); a job
        being handled finishes, its writes fenced."""
        d = self._by_account.get(account_id)
        if d is not None:
            d.queue.clear()
            d.queued.clear()
            d.known.clear()

    def queue_position(self, account_id: str, job_id: str) -> int:
        """How many jobs of the account's dispatcher queue come before *job_id* (0 if none)."""
        d = self._by_account.get(account_id)
        if d is None or job_id not in d.queued:
            return 0
        return list(d.queue).index(job_id)

    def forget(self, job_id: str) -> None:
        """Drop what is remembered about a job whose submission is settled."""
        self.read_failures.pop(job_id, None)
        self.unknown_errors.pop(job_id, None)

    def read_retry_s(self, job_id: str) -> float:
        """Backoff before looking again for *job_id*'s pin after a failed read."""
        n = self.read_failures[job_id] = self.read_failures.get(job_id, 0) + 1
        return settle.look_again_s(n, self.settings.retry, self.rng)

    async def change(
        self, job: Job | str, decide: Callable[[Job], Decision], expect: Expect | None = IN_FLIGHT
    ) -> Changed | None:
        """Commit what *decide* says about *job* (`store.changes.change`), fenced by its
        account's lease when there is one (LeaseLost: nothing committed)."""
        fence = None
        if self._fence is not None:
            make = self._fence

            def fence(current: Job) -> Fence:
                return make(current.account_id)

        return await change(self.store, job, decide, now=self.clock.now, expect=expect, fence=fence)

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; let in-flight requests finish within *grace_s*; then cancel."""
        self.stopping.set()
        for t in list(self._timers.values()):
            t.cancel()
        for d in self._by_account.values():
            d.wake.set()
        tasks = [d.task for d in self._by_account.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for t in pending:
                log.warning("dispatch_cancelled_at_stop", task=t.get_name(), grace_s=grace_s)


class AccountDispatcher(Applying, Reconciling, RemoteChanges):
    def __init__(self, pool: Dispatchers, account_id: str) -> None:
        self.pool = pool
        self.account_id = account_id
        self.queue: deque[str] = deque()
        self.queued: set[str] = set()
        #: The newest committed version seen of each queued job (the router hands it over with
        #: its event): taken instead of reading the row again. Absent: read the row.
        self.known: dict[str, Job] = {}
        self.wake = asyncio.Event()
        self.waiting = False  # parked on `wake` (counted idle by pool.activity)
        pool.activity.enter()
        self.task = asyncio.create_task(self._run(), name=f"dispatch-{account_id}")

    def enqueue(self, job_id: str, job: Job | None = None) -> None:
        """Queue *job_id* (once); *job* is its newest committed version if the caller has it
        (kept unless a newer one is already known), None to have the row read when its turn
        comes."""
        if job is None:
            self.known.pop(job_id, None)
        else:
            seen = self.known.get(job_id)
            if seen is None or job.version >= seen.version:
                self.known[job_id] = job
        if job_id not in self.queued:
            self.queued.add(job_id)
            self.queue.append(job_id)
            if self.waiting:
                self.waiting = False
                self.pool.activity.enter()
            self.wake.set()

    async def _run(self) -> None:
        pool = self.pool
        try:
            await self._loop()
        finally:
            if not self.waiting:
                pool.activity.leave()
                self.waiting = True

    async def _loop(self) -> None:
        pool = self.pool
        while not pool.stopping.is_set():
            if not self.queue:
                self.wake.clear()
                if not self.waiting:
                    self.waiting = True
                    pool.activity.leave()
                await self.wake.wait()
                continue
            job_id = self.queue.popleft()
            self.queued.discard(job_id)
            known = self.known.pop(job_id, None)
            try:
                await self._handle(job_id, known)
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                # The account went to another daemon: nothing was committed, and nothing more
                # is sent for it here (its new owner reconciles what is in flight).
                pool.fenced += 1
                log.warning("dispatch_fenced", job_id=job_id, account_id=self.account_id)
                pool.drop(self.account_id)
            except Exception:
                log.exception("dispatch_failed", job_id=job_id, account_id=self.account_id)
                if not pool.stopping.is_set():
                    try:
                        job = await pool.store.get_job(job_id)
                    except JobNotFound:
                        continue  # deleted with its account
                    pool.later(pool.read_retry_s(job_id), job)

    async def _handle(self, job_id: str, known: Job | None = None) -> None:
        # The committed job the router handed over, else the row. A newer commit that the
        # router has not routed yet makes the SUBMITTED compare-and-set below lose: re-read.
        if known is not None:
            job = known
        else:
            try:
                job = await self.pool.store.get_job(job_id)
            except JobNotFound:
                return  # deleted with its account while it waited (a timer, the queue)
        if job.state is S.QUEUED:
            await self._publish(job)
        elif job.state is S.SUBMITTED:
            await self._reconcile_and_settle(job, self.pool.unknown_errors.pop(job.id, None))
        elif job.state is S.CANCELLING:
            await self._delete(job)
        elif job.state is S.DELIVERED and job.remote_update and job.remote_update.pending:
            await self._patch(job)

    async def _pace(self, job: Job) -> bool:
        """Wait for the account's pace; False when stopping or the account can't publish."""
        pool = self.pool
        while not pool.stopping.is_set():
            if not pool.accounts.can_publish(job.account_id):
                return False
            pacer = pool.accounts.pacer(job.account_id)
            mono = pool.clock.monotonic()
            wait = pacer.pin_delay(mono) or pacer.write_delay(mono)
            if not wait:
                wait = pool.accounts.app_bucket.try_take(mono)
                if wait:
                    pacer.bucket.tokens += 1.0  # give the account token back
            if not wait:
                return True
            await self._sleep(wait)
        return False

    async def _sleep(self, seconds: float) -> None:
        """Sleep on the clock (idle for `Activity`), waking early when the pool stops."""
        pool = self.pool
        pool.activity.leave()
        try:
            await sleep_or_wake(pool.clock, seconds, pool.stopping)
        finally:
            pool.activity.enter()

    async def _publish(self, job: Job) -> None:
        pool = self.pool
        early = (job.send_at - pool.clock.now()).total_seconds()
        if early > 0:  # queued ahead of time by the scheduler: publish at the instant it is due
            await self._sleep(early)
            if pool.stopping.is_set():
                return  # still QUEUED: recovered at the next start
        if not await self._pace(job):
            if not pool.stopping.is_set():
                await self._hold(job)
            return  # stopping: still QUEUED, recovered at the next start
        # Cancelled or changed while we waited? Not re-read here: the SUBMITTED commit below is
        # a compare-and-set on the version read in `_handle`, and a lost one looks again.
        if pool.video_staging:
            parked = await pool.change(job, park, expect=frozenset({S.QUEUED}))
            if parked is None or parked.committed:
                return  # its video is not on Pinterest yet: PENDING until it is (staging)
            job = parked.job
        account = await pool.accounts.get(job.account_id)
        if pool.accounts.needs_refresh(account):
            refreshed = await pool.accounts.refresh(account, reason="expires soon", proactive=True)
            if isinstance(refreshed, Account):
                account = refreshed
            elif not pool.accounts.can_publish(job.account_id):
                await self._hold(job)
                return
        if pool.stopping.is_set():
            return  # no new request leaves after stop(); still QUEUED
        # Inline image bytes, read only to send; a staged video as its Pinterest media id.
        pin = staging.pin_to_send(await pool.store.load_pin(job.pin), job.media)
        now = pool.clock.now()
        # Dispatch lateness is measured on the first send of a round (not on a retry, nor on
        # the send after a 429, which does not count as an attempt).
        first = job.late_by is None or (job.attempts == 0 and job.next_attempt_at is None)
        submit = Decision(
            to=S.SUBMITTED,
            reason=f"attempt {job.attempts + 1}",
            changes={
                "attempts": job.attempts + 1,
                "submitted_at": now,
                "late_by": (now - job.planned_at) if first else job.late_by,
            },
        )
        # Changed since it was read: if it is still QUEUED (updated in place), it is taken
        # again with its new content (the pin above is stale); otherwise whoever changed it
        # owns it now.
        sent = await pool.change(job, lambda _: submit, expect=frozenset())
        if sent is None:
            fresh = await pool.store.get_job(job.id)
            if fresh.state is S.QUEUED:
                self.enqueue(job.id, fresh)
            return
        submitted = sent.job
        if not pool.may_send(job.account_id):
            # The lease ran out meanwhile (a pause): SUBMITTED but never sent; the new owner
            # reconciles it (no pin: sent again after the settle time).
            log.warning("send_fenced", job_id=job.id, account_id=job.account_id)
            pool.fenced += 1
            pool.drop(job.account_id)
            return
        pacer = pool.accounts.pacer(job.account_id)
        strikes = pacer.strikes
        pacer.record_pin(pool.clock.monotonic())
        pacer.strikes = strikes  # the 429 streak ends with a success, not with a send
        pool.in_flight += 1
        pool.idle.clear()
        try:
            started = pool.clock.monotonic()
            answer = await pool.client.create_pin(account.access_token, pin)
            log.info(
                "pin_submitted",
                job_id=job.id,
                account_id=job.account_id,
                attempt=submitted.attempts,
                outcome=type(answer).__name__,
                latency_ms=round((pool.clock.monotonic() - started) * 1000, 1),
                pinterest_rid=getattr(getattr(answer, "error", None), "pinterest_request_id", None),
            )
        finally:
            pool.in_flight -= 1
            if not pool.in_flight:
                pool.idle.set()
        decision = answers.decide(
            submitted,
            answer,
            strikes=pacer.strikes,
            spam_cooldown_s=pool.settings.spam_cooldown_s,
            policy=pool.settings.retry,
            now=pool.clock.now(),
            rng=pool.rng,
        )
        await self._carry_out(submitted, decision, account)

    async def _hold(self, job: Job) -> None:
        """Send a QUEUED job of an account that cannot publish back to PENDING (held)."""
        pool = self.pool
        state = (
            "app credentials refused"
            if pool.accounts.app_refused
            else (await pool.accounts.get(job.account_id)).state.value
        )
        held = Decision(to=S.PENDING, reason=f"held: account cannot publish ({state})")
        await pool.change(job, lambda _: held, expect=frozenset({S.QUEUED}))
