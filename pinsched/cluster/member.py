"""One daemon's membership of the cluster and the account leases it holds.

Every `interval_s` (a third of the lease) on the injected clock, `tick`:

1. heartbeats (alive until now + lease);
2. renews the leases it holds; one that could not be renewed (another member took it: the
   lease had expired) is dropped at once (`on_lose`: nothing more is sent for it);
3. reads the live members and the accounts, and asks `core.membership.plan` what to take and
   what to let go: an account that now belongs to another member is dropped here first
   (`on_lose`), then its lease released, so the other takes it at its next tick; an account
   that is this member's is taken when its lease is free or expired (one conditional write:
   never two owners), then handed over (`on_take`).

`owns` answers from the local monotonic clock: a lease counts until its expiry (measured from
before the write that took or renewed it) minus a safety margin, so a process that was paused
past its lease sends nothing when it wakes, even before its next tick (which it then runs at
once: the account is taken again, at a new epoch, if nobody took it meanwhile). `fence` gives
what every dispatcher write must still hold (`store.leases.Fence`, checked in the write's
transaction). `leave` (at shutdown) deletes the member and lets its leases go at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from pinsched.clock import Activity, Clock, sleep_or_wake
from pinsched.core import membership
from pinsched.store import Fence, Lease, LeaseLost, Store

log = structlog.get_logger("pinsched.cluster")

#: The lease of an account, and how long a member counts as live after its heartbeat.
LEASE_S = 10.0


def new_member_id() -> str:
    """A member id that names the host and process and is new at every start."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class Held:
    lease: Lease
    expires_mono: float  # this process's monotonic time the lease ends at (from before the write)


@dataclass(slots=True)
class Counts:
    """What the member did, for the metrics."""

    taken: int = 0  # leases acquired
    takeovers: int = 0  # … of accounts another member (or an earlier run) held before
    released: int = 0  # leases given up for rebalancing
    lost: int = 0  # leases found taken by another member at renewal


class Member:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        member_id: str | None = None,
        lease_s: float = LEASE_S,
        on_take: Callable[[str], Awaitable[None]],
        on_lose: Callable[[str], None],
        on_release: Callable[[str], Awaitable[None]] | None = None,
        on_tick: Callable[[list[str]], Awaitable[None]] | None = None,
        on_resume: Callable[[str], Awaitable[None]] | None = None,
        activity: Activity | None = None,
    ) -> None:
        """*on_take* loads an account just taken; *on_lose* stops publishing one at once;
        *on_release* runs while an account given up is still held (its pace saved);
        *on_tick* gets the accounts held after each tick; *on_resume* reloads an account whose
        lease ran out on the local clock (work for it was skipped) and was renewed after all."""
        self.store, self.clock = store, clock
        self.id = member_id or new_member_id()
        self.lease_s = lease_s
        self.ttl = timedelta(seconds=lease_s)
        self.interval_s = lease_s / 3
        self.margin_s = membership.margin_s(lease_s)
        self.on_take, self.on_lose = on_take, on_lose
        self.on_release, self.on_tick, self.on_resume = on_release, on_tick, on_resume
        self.activity = activity or Activity()
        self.held: dict[str, Held] = {}
        self.members: list[str] = []  # the live members seen at the last tick
        self.counts = Counts()
        self.ticks = 0
        self._wake = asyncio.Event()
        self._woken: set[str] = set()  # leases found run out that woke the loop already

    # ------------------------------------------------------------------ what others ask

    def owns(self, account_id: str) -> bool:
        held = self.held.get(account_id)
        if held is None:
            return False
        if membership.may_act(held.expires_mono, self.clock.monotonic(), self.margin_s):
            return True
        if account_id not in self._woken:  # ran out unrenewed (a pause): look now, once
            self._woken.add(account_id)
            self._wake.set()
        return False

    def owned(self) -> list[str]:
        mono = self.clock.monotonic()
        return sorted(
            a
            for a, h in self.held.items()
            if membership.may_act(h.expires_mono, mono, self.margin_s)
        )

    def shared(self) -> bool:
        return any(m != self.id for m in self.members)

    def fence(self, account_id: str) -> Fence:
        """The lease a write for *account_id* must still hold; LeaseLost when none is (safely)."""
        held = self.held.get(account_id)
        if held is None or not self.owns(account_id):
            raise LeaseLost(account_id)
        return Fence(account_id, self.id, held.lease.epoch, self.clock.now())

    def wake(self) -> None:
        """Tick now rather than at the next interval (an account was created here)."""
        self._wake.set()

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `interval_s` until *stop*; a failed tick (the database unreachable) is
        logged and tried again (leases not renewed run out on the local clock meanwhile)."""
        self.activity.enter()
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception:
                    log.exception("cluster_tick_failed", member_id=self.id)
                self.activity.leave()
                try:
                    await sleep_or_wake(self.clock, self.interval_s, stop, self._wake)
                finally:
                    self.activity.enter()
                    self._wake.clear()
        finally:
            self.activity.leave()

    async def tick(self) -> None:
        self.ticks += 1
        now = self.clock.now()
        await self.store.heartbeat(self.id, now, self.ttl)
        await self._renew()
        self.members = await self.store.live_members(self.clock.now())
        accounts = await self.store.account_ids()
        todo = membership.plan(accounts, self.members, self.id, list(self.held))
        for account_id in todo.release:
            await self._release(account_id)
        for account_id in todo.take:
            await self._take(account_id)
        if self.on_tick is not None:
            await self.on_tick(self.owned())

    async def _renew(self) -> None:
        if not self.held:
            return
        started = self.clock.monotonic()
        leases = [h.lease for h in self.held.values()]
        kept = await self.store.renew_leases(self.id, leases, self.clock.now(), self.ttl)
        kept_ids = {lease.account_id for lease in kept}
        resumed = []
        for lease in kept:
            if lease.account_id in self.held:
                before = self.held[lease.account_id]
                stale = lease.account_id in self._woken or not membership.may_act(
                    before.expires_mono, self.clock.monotonic(), self.margin_s
                )
                self.held[lease.account_id] = Held(lease, started + self.lease_s)
                self._woken.discard(lease.account_id)
                if stale:
                    resumed.append(lease.account_id)
        for account_id in [a for a in self.held if a not in kept_ids]:
            self.counts.lost += 1
            log.warning("lease_lost", member_id=self.id, account_id=account_id)
            self._drop(account_id)
        for account_id in resumed:
            if self.on_resume is None:
                continue
            try:
                await self.on_resume(account_id)
            except Exception:
                # Its jobs could not be reloaded (the database, briefly): resume it again at
                # the next tick rather than hold an account whose queue was dropped.
                log.exception("resume_failed", member_id=self.id, account_id=account_id)
                self._woken.add(account_id)

    async def _take(self, account_id: str) -> None:
        started = self.clock.monotonic()
        lease = await self.store.take_lease(account_id, self.id, self.clock.now(), self.ttl)
        if lease is None:
            return  # another member still holds it: try again at the next tick
        self.held[account_id] = Held(lease, started + self.lease_s)
        self._woken.discard(account_id)
        self.counts.taken += 1
        if lease.epoch > 1:  # a takeover is worth an operator's eye; a first lease is routine
            self.counts.takeovers += 1
            log.info("lease_taken", member_id=self.id, account_id=account_id, epoch=lease.epoch)
        try:
            await self.on_take(account_id)
        except Exception:
            # Its jobs could not be loaded: let it go, so that this or another member takes it
            # afresh (and loads them) rather than holding an account it does not publish.
            log.exception("handover_failed", member_id=self.id, account_id=account_id)
            await self._release(account_id)

    async def _release(self, account_id: str) -> None:
        held = self.held.get(account_id)
        self._drop(account_id)  # nothing more is sent for it, before anyone else may take it
        if held is not None:
            if self.on_release is not None:
                await self.on_release(account_id)
            self.counts.released += 1
            await self.store.release_lease(held.lease)
            log.info("lease_released", member_id=self.id, account_id=account_id)

    def _drop(self, account_id: str) -> None:
        if self.held.pop(account_id, None) is not None:
            self.on_lose(account_id)

    async def leave(self) -> None:
        """Leave the cluster (shutdown, after the dispatchers stopped): save the paces, forget
        every account and let their leases go at once."""
        for account_id in list(self.held):
            if self.on_release is not None:
                await self.on_release(account_id)
            self._drop(account_id)
        await self.store.leave(self.id)
