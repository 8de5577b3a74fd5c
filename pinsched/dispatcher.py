"""Per-account publish loops: pace, submit, settle (DESIGN §6).

One `AccountDispatcher` task per account takes its jobs in order, waits for the account's pace
(spacing, caps, write bucket, app-wide bucket), records SUBMITTED (committed *before* the request
leaves), calls Pinterest once, and records the outcome (`pinterest.classify`):

    Delivered       → DELIVERED (or CANCELLING + delete when a cancel was recorded in flight)
    RateLimited     → RETRYING after the hint (else exponential in the account's 429 streak); the
                      account is held back as long and its write rate halves; not counted
    SpamBlocked     → RETRYING after a long cool-down of the whole account; not counted
    AuthExpired     → one token refresh; granted: RETRYING at once; refused: FAILED and the
                      account NEEDS_REAUTH (its other jobs are held, not attempted, not failed);
                      refused again right after a refresh: the same. Never counted
    Rejected        → PERMANENTLY_FAILED with Pinterest's code and message
    Unavailable     → RETRYING with backoff until the job's retry deadline (`retry.py`: by
                      time, not count), then PERMANENTLY_FAILED (EXHAUSTED)
    OutcomeUnknown  → reconcile before anything is retried (below); every 5xx on a create is one

Reconciling (also for a job found SUBMITTED at start-up, i.e. a crash): list the board's recent
pins (`reconcile.py`). Found → DELIVERED with that pin id (the store's unique index keeps two
jobs from claiming one pin). "No pin" is concluded only from a listing that started once the
request can no longer land or be hidden by read lag (`settle_s` after submission: the request
timeout plus `read_lag_s`); before that the job stays SUBMITTED and is looked for again at that
instant; then it is as Unavailable. Several pins that could be a bare job's → none is claimed,
the ambiguity is recorded in the history and looked at again at that instant; still ambiguous
then → FAILED for the user. Board unreadable → stays SUBMITTED, looked for again with backoff
(after RECONCILE_MAX_FAILURES looks in a row: FAILED, for the user to check); board not found
(404) → no pin on it. The listing could not prove absence → FAILED too (RetryJob sends it again).

Deletes (cancel of a published pin) and PATCHes are `remote_dispatch.RemoteChanges`, mixed into
`AccountDispatcher`.

Stopping: no new request leaves once `stop()` is called; in-flight ones get the grace period,
then their task is cancelled and the job stays SUBMITTED, reconciled at the next start. A CAS
lost to a concurrent cancel/update is re-read and the outcome applied to the fresh row (outcomes
are facts).
"""

from __future__ import annotations

import asyncio
import enum
import random
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import structlog

from pinsched import reconcile, remote, staging, tokens
from pinsched.accounts import Account
from pinsched.auth import AccountRegistry
from pinsched.clock import Activity, Clock
from pinsched.errors import JobNotFound
from pinsched.jobs import ErrorCategory, Job, JobError, JobState, touch, transition
from pinsched.pinterest import client as pt
from pinsched.remote_dispatch import RemoteChanges
from pinsched.retry import RetryPolicy, rate_limit_delay_s, retry_deadline
from pinsched.store import JobFilter, StaleJob, Store

log = structlog.get_logger("pinsched.dispatcher")
S = JobState

#: Upper bound of the wait between two looks for a pin whose board could not be read.
RECONCILE_MAX_DELAY_S = 300.0
#: Failed looks in a row (about an hour of backoff) before a SUBMITTED job is handed to the user.
RECONCILE_MAX_FAILURES = 30


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


class _Search(enum.Enum):
    ABSENT = "absent"
    INCONCLUSIVE = "inconclusive"


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
        on_retry: Callable[[Job], None],
        on_hold: Callable[[Job], None],
        rng: random.Random | None = None,
        activity: Activity | None = None,
    ) -> None:
        self.store, self.clock, self.client, self.accounts = store, clock, client, accounts
        self.settings = settings
        self.on_retry = on_retry
        self.on_hold = on_hold
        self.rng = rng or random.Random()
        self._by_account: dict[str, AccountDispatcher] = {}
        self.stopping = asyncio.Event()
        self.activity = activity or Activity()
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._timers: set[asyncio.Task[None]] = set()
        self.read_failures: dict[str, int] = {}  # job id → failed looks in a row
        self.unknown_errors: dict[str, JobError] = {}  # job id → why its pin is looked for
        self.remote_refreshed: set[str] = set()  # jobs whose delete/PATCH refreshed the token
        self.remote_failures: dict[str, int] = {}  # job id → failed deletes in a row
        self.staging: staging.Stager | None = None  # video staging (set by the daemon)

    @property
    def settle_s(self) -> float:
        """How long after a submission "no pin" may be concluded (timeout + read lag)."""
        s = self.settings.settle_s
        return self.client.timeout_s + self.settings.read_lag_s if s is None else s

    def submit(self, job: Job) -> None:
        if self.stopping.is_set():
            return  # left in the store as it is; recovered at the next start
        d = self._by_account.get(job.account_id)
        if d is None:
            d = self._by_account[job.account_id] = AccountDispatcher(self, job.account_id)
        d.enqueue(job.id)

    def later(self, delay_s: float, job: Job) -> None:
        """Hand *job* back to its dispatcher after *delay_s* (look for a pin again, retry a
        delete); forgotten at stop (the store still has the job)."""
        if self.stopping.is_set():
            return

        async def fire() -> None:
            await self.clock.sleep(delay_s)
            self.submit(job)

        task = asyncio.create_task(fire())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

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
        retry = self.settings.retry
        return min(RECONCILE_MAX_DELAY_S, retry.base_delay_s + retry.backoff_s(n, self.rng))

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; let in-flight requests finish within *grace_s*; then cancel."""
        self.stopping.set()
        for t in list(self._timers):
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


class AccountDispatcher(RemoteChanges):
    def __init__(self, pool: Dispatchers, account_id: str) -> None:
        self.pool = pool
        self.account_id = account_id
        self.queue: deque[str] = deque()
        self.queued: set[str] = set()
        self.wake = asyncio.Event()
        self.waiting = False  # parked on `wake` (counted idle by pool.activity)
        pool.activity.enter()
        self.task = asyncio.create_task(self._run(), name=f"dispatch-{account_id}")

    def enqueue(self, job_id: str) -> None:
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
            try:
                await self._handle(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch_failed", job_id=job_id, account_id=self.account_id)
                if not pool.stopping.is_set():
                    try:
                        job = await pool.store.get_job(job_id)
                    except JobNotFound:
                        continue  # deleted with its account
                    pool.later(pool.read_retry_s(job_id), job)

    async def _handle(self, job_id: str) -> None:
        job = await self.pool.store.get_job(job_id)
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
            await _sleep_or_stop(pool.clock, seconds, pool.stopping)
        finally:
            pool.activity.enter()

    async def _publish(self, job: Job) -> None:
        pool = self.pool
        early = (job.planned_at - pool.clock.now()).total_seconds()
        if early > 0:  # queued ahead of time by the scheduler: publish at the planned instant
            await self._sleep(early)
            if pool.stopping.is_set():
                return  # still QUEUED: recovered at the next start
        if not await self._pace(job):
            if not pool.stopping.is_set():
                await self._hold(job)
            return  # stopping: still QUEUED, recovered at the next start
        # Cancelled or changed while we waited? Not re-read here: the SUBMITTED commit below is
        # a compare-and-set on the version read in `_handle`, and a lost one looks again.
        if pool.staging is not None and await pool.staging.park_if_unready(job):
            return  # its video is not on Pinterest yet: PENDING until it is (pinsched.staging)
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
        try:
            submitted, _ = await pool.store.commit(
                job,
                *transition(
                    job,
                    S.SUBMITTED,
                    now=now,
                    reason=f"attempt {job.attempts + 1}",
                    attempts=job.attempts + 1,
                    submitted_at=now,
                    late_by=(now - job.planned_at) if first else job.late_by,
                ),
            )
        except StaleJob:
            # Changed since it was read: if it is still QUEUED (updated in place), take it
            # again with its new content; otherwise whoever changed it owns it now.
            fresh = await pool.store.get_job(job.id)
            if fresh.state is S.QUEUED:
                self.enqueue(job.id)
            return
        pacer = pool.accounts.pacer(job.account_id)
        strikes = pacer.strikes
        pacer.record_pin(pool.clock.monotonic())
        pacer.strikes = strikes  # the 429 streak ends with a success, not with a send
        pool.in_flight += 1
        pool.idle.clear()
        try:
            started = pool.clock.monotonic()
            outcome = await pool.client.create_pin(account.access_token, pin)
            log.info(
                "pin_submitted",
                job_id=job.id,
                account_id=job.account_id,
                attempt=submitted.attempts,
                outcome=type(outcome).__name__,
                latency_ms=round((pool.clock.monotonic() - started) * 1000, 1),
                pinterest_rid=getattr(
                    getattr(outcome, "error", None), "pinterest_request_id", None
                ),
            )
        finally:
            pool.in_flight -= 1
            if not pool.in_flight:
                pool.idle.set()
        await self._settle(submitted, outcome, account)

    async def _hold(self, job: Job) -> None:
        """Send a QUEUED job of an account that cannot publish back to PENDING (held)."""
        pool = self.pool
        state = (
            "app credentials refused"
            if pool.accounts.app_refused
            else (await pool.accounts.get(job.account_id)).state.value
        )
        for _ in range(10):
            try:
                held, _ = await pool.store.commit(
                    job,
                    *transition(
                        job,
                        S.PENDING,
                        now=pool.clock.now(),
                        reason=f"held: account cannot publish ({state})",
                    ),
                )
                break
            except StaleJob:
                # Updated in place meanwhile: hold the fresh row; anything else is not ours.
                job = await pool.store.get_job(job.id)
                if job.state is not S.QUEUED:
                    return
        else:
            return
        if pool.accounts.can_publish(job.account_id):
            pool.on_retry(held)  # released meanwhile: due again at once
        else:
            pool.on_hold(held)

    async def _settle(self, job: Job, outcome: pt.Outcome, account: Account) -> None:
        pool = self.pool
        mono = pool.clock.monotonic()
        pacer = pool.accounts.pacer(job.account_id)
        match outcome:
            case pt.Delivered() if outcome.pin_id:
                pacer.strikes = 0
                await self._delivered(job, outcome.pin_id, "published")
            case pt.Delivered():
                err = JobError(
                    category=ErrorCategory.OUTCOME_UNKNOWN,
                    retryable=True,
                    message="Pinterest answered 2xx without a pin id",
                )
                await self._reconcile_and_settle(job, err)
            case pt.RateLimited(error=err, retry_after_s=hint):
                delay = rate_limit_delay_s(
                    hint, pacer.strikes + 1, pool.rng, policy=pool.settings.retry
                )
                pacer.rate_limited(mono, hint if hint is not None else delay)
                why = (
                    f"rate limited: retry after {hint:g} s as told"
                    if hint is not None
                    else f"rate limited ({pacer.strikes} in a row): backing off"
                )
                await self._retry(job, err, delay, f"{why} (attempt not counted)", count=False)
            case pt.SpamBlocked(error=err):
                cooldown = pool.settings.spam_cooldown_s
                pacer.spam_blocked(mono, cooldown)
                await self._retry(
                    job,
                    err,
                    cooldown,
                    f"spam block: account cooling down for {cooldown:g} s (attempt not counted)",
                    count=False,
                )
            case pt.AuthExpired(error=err):
                await self._auth_expired(job, err, account)
            case pt.Rejected(error=err) if tokens.account_refusal(err):
                await pool.accounts.hold(
                    job.account_id,
                    f"Pinterest refuses the account: {err.message} (code {err.pinterest_code})",
                )
                await self._retry(
                    job,
                    err,
                    0.0,
                    "held: Pinterest refuses the whole account (attempt not counted)",
                    count=False,
                )
            case pt.Rejected(error=err):
                await self._finish(job, S.PERMANENTLY_FAILED, f"rejected: {err.message}", err)
            case pt.Unavailable(error=err):
                await self._backoff(job, err)
            case pt.OutcomeUnknown(error=err):
                await self._reconcile_and_settle(job, err)
        if isinstance(outcome, pt.RateLimited | pt.SpamBlocked):
            await pool.accounts.save_pacer(job.account_id)  # a restart must not burst

    async def _auth_expired(self, job: Job, err: JobError, account: Account) -> None:
        """401: refresh once and retry (not counted); refused, or refused again with a token
        refreshed for this very job: FAILED, and the account NEEDS_REAUTH."""
        pool = self.pool
        previous = job.last_error
        if (
            previous is not None
            and previous.category is ErrorCategory.AUTH
            and previous.http_status == 401
            and previous.retryable
        ):
            reason = f"a freshly refreshed access token was refused too: {err.message}"
            await pool.accounts.mark_needs_reauth(job.account_id, reason)
            failed = replace(err, message=reason, retryable=False)
            await self._finish(
                job,
                S.FAILED,
                "authorisation failed: re-authorise the account "
                "with UpdateAccount (attempt not counted)",
                failed,
                count=False,
            )
            return
        result = await pool.accounts.refresh(account, reason="401")
        if isinstance(result, Account):
            await self._retry(
                job, err, 0.0, "access token refreshed (attempt not counted)", count=False
            )
        elif result.client_refused:  # the app's fault, not the account's: held, not failed
            await self._retry(
                job,
                result.error,
                0.0,
                "held: Pinterest refuses the app's client credentials (attempt not counted)",
                count=False,
            )
        elif result.permanent:
            await self._finish(
                job,
                S.FAILED,
                "authorisation failed: re-authorise the account "
                "with UpdateAccount (attempt not counted)",
                result.error,
                count=False,
            )
        else:
            await self._backoff(job, result.error, note="token refresh failed: ")

    async def _reconcile_and_settle(self, job: Job, err: JobError | None) -> None:
        """Settle a job whose request may have reached Pinterest (see the module docstring)."""
        pool = self.pool
        account = await pool.accounts.get(job.account_id)
        err = err or JobError(
            category=ErrorCategory.OUTCOME_UNKNOWN,
            retryable=True,
            message="interrupted while submitted (the daemon stopped)",
        )
        settle_at = (job.submitted_at or job.updated_at) + timedelta(seconds=pool.settle_s)
        read_started = pool.clock.now()
        try:
            found = await self._find_pin(job, account.access_token)
        except pt.ReadFailed as exc:
            await self._read_failed(job, err, account, exc)
            return
        pool.read_failures.pop(job.id, None)
        if isinstance(found, str):
            await self._delivered(job, found, "reconciled: the pin was found on the board")
            return
        if found is _Search.INCONCLUSIVE:
            unsure = replace(
                err,
                message=f"{err.message}; the board listing could not prove "
                "that no pin was created: check the board, then RetryJob",
                retryable=False,
            )
            await self._finish(job, S.FAILED, "outcome unknown: needs a look", unsure)
            return
        late_enough = read_started >= settle_at
        if isinstance(found, reconcile.Ambiguous):
            ids = ", ".join(found.pin_ids)
            if late_enough:
                unsure = replace(
                    err,
                    retryable=False,
                    message=f"{err.message}; pins {ids} "
                    "could each be this job's (no title, description, link or alt "
                    "text to tell them apart): check the board, then RetryJob or "
                    "CancelJob",
                )
                await self._finish(
                    job, S.FAILED, "outcome unknown: ambiguous, needs a look", unsure
                )
                return
            note = (
                f"ambiguous: pins {ids} could each be this job's; none claimed, looking "
                "again once the request can no longer land"
            )
        elif late_enough:
            await self._backoff(job, err, note="reconciled: no pin on the board; ")
            return
        else:
            note = f"outcome unknown ({err.message}): looking for the pin before any retry"
        # The request may still land (or be hidden by read lag): look again once it cannot.
        pool.unknown_errors[job.id] = err
        noted = await self._commit(
            job, lambda j: touch(j, now=pool.clock.now(), last_error=err, reason=note)
        )
        if noted is not None and noted.state is S.SUBMITTED:
            wait = (settle_at - pool.clock.now()).total_seconds()
            pool.later(max(wait, 0.001), noted)

    async def _read_failed(
        self, job: Job, err: JobError, account: Account, exc: pt.ReadFailed
    ) -> None:
        """The board could not be read: the job stays SUBMITTED and is looked for again, with
        backoff; after RECONCILE_MAX_FAILURES looks in a row it is FAILED for the user (never
        retried blindly: the pin may exist)."""
        pool = self.pool
        log.warning("reconcile_failed", job_id=job.id, account_id=job.account_id, error=str(exc))
        if pool.read_failures.get(job.id, 0) >= RECONCILE_MAX_FAILURES:
            pool.read_failures.pop(job.id, None)
            pool.unknown_errors.pop(job.id, None)
            unsure = replace(
                err,
                message=f"{err.message}; the board could not be read to look "
                f"for the pin ({exc}): check the board, then RetryJob",
                retryable=False,
            )
            await self._finish(job, S.FAILED, "outcome unknown: needs a look", unsure)
            return
        pool.unknown_errors[job.id] = err
        if isinstance(exc.outcome, pt.AuthExpired) and job.id not in pool.read_failures:
            pool.read_failures[job.id] = 1  # one refresh per run of failed reads
            result = await pool.accounts.refresh(account, reason="401 on a read")
            if isinstance(result, Account):
                self.enqueue(job.id)
                return
        pool.later(pool.read_retry_s(job.id), job)

    async def _find_pin(self, job: Job, token: str) -> str | reconcile.Ambiguous | _Search:
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
                    return _Search.ABSENT  # no such board (for this user): no pin on it either
                raise
            ids = [str(p.get("id")) for p in page.items]
            owned = await pool.store.owned_pin_ids(ids)
            found += reconcile.candidates(job.pin, page.items, submitted_at=since, owned=owned)
            if not page.bookmark or reconcile.search_exhausted(page.items, since):
                return reconcile.choose(job.pin, found, rank=rank) or _Search.ABSENT
            bookmark = page.bookmark
        return reconcile.choose(job.pin, found, rank=rank) or _Search.INCONCLUSIVE

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

    async def _delivered(self, job: Job, pin_id: str, reason: str) -> None:
        pool = self.pool
        now = pool.clock.now()
        pool.forget(job.id)

        def apply(j: Job) -> tuple[Job, Any]:
            to = S.CANCELLING if j.cancel_requested else S.DELIVERED
            why = f"{reason}; cancel requested: deleting the pin" if j.cancel_requested else reason
            return transition(
                j,
                to,
                now=now,
                reason=why,
                pinterest_pin_id=pin_id,
                delivered_at=now,
                last_error=None,
                next_attempt_at=None,
            )

        try:
            new = await self._commit(job, apply)
        except sqlite3.IntegrityError:
            # Another job claimed this pin first (unique pin id): look again, excluding it.
            log.warning("pin_already_claimed", job_id=job.id, pin_id=pin_id)
            pool.later(pool.read_retry_s(job.id), job)
            return
        if new is not None:
            log.info(
                "pin_delivered",
                job_id=job.id,
                account_id=job.account_id,
                pin_id=pin_id,
                attempt=new.attempts,
                reason=reason,
            )
            if new.state is S.CANCELLING:
                await self._delete(new)

    async def _backoff(self, job: Job, err: JobError, note: str = "") -> None:
        """Retry a transient failure with backoff until the job's retry deadline (by time, not
        by count); past it, PERMANENTLY_FAILED (EXHAUSTED) with the last error."""
        pool = self.pool
        retry = pool.settings.retry
        now = pool.clock.now()
        deadline = retry_deadline(
            planned_at=job.planned_at, window_end=job.window_end, retry_for=job.retry_for
        )
        at = retry.next_attempt_at(job.attempts, now=now, deadline=deadline, rng=pool.rng)
        if at is None:
            why = (
                f"{job.attempts} attempts failed"
                if retry.exhausted(job.attempts)
                else f"{job.attempts} attempts failed by {deadline:%Y-%m-%dT%H:%M:%SZ}, the end "
                "of its retry budget"
            )
            exhausted = JobError(
                category=ErrorCategory.EXHAUSTED,
                message=f"{why}; last: {err.message}",
                http_status=err.http_status,
                pinterest_code=err.pinterest_code,
                pinterest_request_id=err.pinterest_request_id,
            )
            await self._finish(job, S.PERMANENTLY_FAILED, f"{note}retry budget spent", exhausted)
            return
        await self._retry(job, err, (at - now).total_seconds(), f"{note}{err.message}", count=True)

    async def _retry(
        self, job: Job, err: JobError, delay_s: float, reason: str, *, count: bool
    ) -> None:
        now = self.pool.clock.now()
        at = now + timedelta(seconds=delay_s)

        def apply(j: Job) -> tuple[Job, Any]:
            if j.cancel_requested:
                return transition(
                    j, S.CANCELLED, now=now, reason="cancelled (never published)", last_error=err
                )
            return transition(
                j,
                S.RETRYING,
                now=now,
                reason=reason,
                last_error=err,
                next_attempt_at=at,
                attempts=j.attempts if count else max(0, j.attempts - 1),
            )

        self.pool.forget(job.id)
        new = await self._commit(job, apply)
        if new is not None and new.state is S.RETRYING:
            self.pool.on_retry(new)

    async def _finish(
        self, job: Job, to: JobState, reason: str, err: JobError, *, count: bool = True
    ) -> None:
        now = self.pool.clock.now()

        def apply(j: Job) -> tuple[Job, Any]:
            if j.cancel_requested:
                return transition(
                    j, S.CANCELLED, now=now, reason="cancelled (never published)", last_error=err
                )
            return transition(
                j,
                to,
                now=now,
                reason=reason,
                last_error=err,
                next_attempt_at=None,
                attempts=j.attempts if count else max(0, j.attempts - 1),
            )

        self.pool.forget(job.id)
        await self._commit(job, apply)

    async def _commit(
        self,
        job: Job,
        apply: Callable[[Job], tuple[Job, Any]],
        expect: frozenset[JobState] = frozenset({S.SUBMITTED, S.CANCELLING}),
    ) -> Job | None:
        """Apply *apply* to the job and commit; on a lost CAS re-read and re-apply while the job
        is still in one of the *expect* states (outcomes are facts), else drop it (None)."""
        store = self.pool.store
        for _ in range(10):
            try:
                new, _ = await store.commit(job, *apply(job))
                return new
            except StaleJob:
                job = await store.get_job(job.id)
                if job.state not in expect:
                    log.info("change_dropped", job_id=job.id, state=job.state.value)
                    return None
        raise RuntimeError(f"job {job.id}: could not commit a change after 10 tries")


async def _sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        stopper.cancel()
