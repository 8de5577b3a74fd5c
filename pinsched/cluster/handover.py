"""What a daemon does when an account's lease arrives or leaves (`Member`'s `on_take` and
`on_lose`).

Arriving (`take`): the account's row and its stored pacer state are read afresh (the pace moves
with the lease: spacing, day caps, a 429 slow-down or spam cool-down continue where the last
owner left them, so a takeover never bursts an account); its in-flight jobs go to its dispatcher,
SUBMITTED ones first (reconciled before anything new is sent: the restart reconciliation of
`dispatch.reconciling`), then QUEUED and CANCELLING ones; its PENDING and RETRYING jobs within
the scheduler's window go onto the heap.

Leaving (`lose`): the account's held jobs are forgotten and its dispatcher's queue emptied at
once; when the account is given up for rebalancing (`release`), its pacer state is saved for the
next owner before the lease is let go (and every tick, `tick`, for the accounts held, so a
member killed without warning leaves a recent pace behind). A request already on its way
finishes; what it commits afterwards is fenced (`store.leases.Fence`), so the next owner finds
the job SUBMITTED and reconciles it.

Every tick also reads the rows of the accounts held again: an account paused, resumed or given
new credentials through another daemon is seen here within a tick; and, while other daemons are
live, the owned accounts' jobs that wait for a delete or a PATCH of their published pin (a cancel
or an update made through another daemon) go to their dispatcher (both requests are idempotent
on Pinterest: one sent twice does no harm).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Activity, Clock
from pinsched.cluster.member import Member
from pinsched.core import flags
from pinsched.core.errors import AccountNotFound
from pinsched.core.jobs import JobState
from pinsched.dispatch.dispatcher import Dispatchers
from pinsched.media.staging import Stager
from pinsched.scheduler import Scheduler
from pinsched.store import Store

log = structlog.get_logger("pinsched.cluster")


class Handover:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        accounts: AccountRegistry,
        scheduler: Scheduler,
        dispatchers: Dispatchers,
        *,
        stager: Stager | None = None,
    ) -> None:
        self.store, self.clock, self.accounts = store, clock, accounts
        self.scheduler, self.dispatchers, self.stager = scheduler, dispatchers, stager
        self._routed: dict[str, int] = {}  # job id → version handed to its dispatcher here

    async def take(self, account_id: str) -> None:
        """Load what publishing *account_id* needs (see the module docstring)."""
        self.accounts.put(await self.store.get_account(account_id))
        await self.accounts.restore_pacer(account_id)
        await self.resume(account_id)

    async def resume(self, account_id: str) -> None:
        """Load *account_id*'s in-flight and due jobs (taken, or its lease renewed after it ran
        out on the local clock: what was skipped meanwhile is picked up again)."""
        jobs = await self.store.owned_in_flight([account_id])
        for job in jobs:  # SUBMITTED first: reconciled before anything new is sent
            self._routed[job.id] = job.version
            self.dispatchers.submit(job)
        loaded = await self.scheduler.adopt(account_id)
        if self.stager is not None:  # its videos are staged by their owner only
            await self.stager.adopt(account_id)
        if not jobs and not loaded:
            return
        log.info(
            "account_taken_over",
            account_id=account_id,
            in_flight=len(jobs),
            submitted=sum(1 for j in jobs if j.state.value == "SUBMITTED"),
            due=loaded,
        )

    def lose(self, account_id: str) -> None:
        """Stop publishing *account_id* at once."""
        self.dispatchers.drop(account_id)
        self.scheduler.drop(account_id)

    async def release(self, account_id: str) -> None:
        """*account_id* is given up (rebalancing, shutdown): save its pace for the next owner
        (its lease is still held while this runs)."""
        await self._save(account_id)

    async def _save(self, account_id: str) -> None:
        try:
            await self.accounts.save_pacer(account_id, only_if_changed=True)
        except Exception:  # the next owner starts from the last saved state
            log.warning("pacer_not_saved", account_id=account_id)

    async def tick(self, owned: list[str], *, shared: bool = True) -> None:
        """After each membership tick: save the pace of the accounts held that changed since
        it was last saved, and read their rows again (a pause, a resume or new credentials
        given through another daemon): held jobs of an account that can publish again are
        put back on the heap."""
        for account_id in owned:
            await self._save(account_id)
        versions = await self.store.account_versions(owned)  # one read for every account
        for account_id in owned:
            cached = self.accounts.cached(account_id)
            version = versions.get(account_id)  # None: deleted meanwhile, its lease goes next
            if version is None or (cached is not None and cached.version >= version):
                continue
            try:
                row = await self.store.get_account(account_id)
            except AccountNotFound:
                continue
            if cached is None or cached.version < row.version:
                self.accounts.put(row)
                if self.accounts.can_publish(account_id) and self.scheduler.held.get(account_id):
                    await self.scheduler.release(account_id)
        if shared:
            self.scheduler.nudge()  # its owned-window refill runs while others are live
        if shared and owned:
            routed: dict[str, int] = {}
            for job in await self.store.owned_in_flight(owned):
                if job.state is JobState.CANCELLING or flags.awaits_patch(job):
                    routed[job.id] = job.version
                    if self._routed.get(job.id) != job.version:
                        self.dispatchers.submit(job)
            self._routed = routed


def join(
    store: Store,
    clock: Clock,
    lease_s: float,
    activity: Activity,
    handover: Callable[[], Handover],
) -> Member:
    """This daemon's cluster member, its lease changes handed to *handover()* (built later: it
    needs the scheduler and dispatchers, which take the member's fence)."""
    member: Member

    def tick(owned: list[str]) -> Awaitable[None]:
        return handover().tick(owned, shared=member.shared())

    member = Member(
        store,
        clock,
        lease_s=lease_s,
        on_take=lambda account_id: handover().take(account_id),
        on_lose=lambda account_id: handover().lose(account_id),
        on_release=lambda account_id: handover().release(account_id),
        on_tick=tick,
        on_resume=lambda account_id: handover().resume(account_id),
        activity=activity,
    )
    return member
