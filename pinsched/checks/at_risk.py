"""The look ahead of a pin's moment: `preflight_lead_time_s` before a PENDING job's planned
time, check with Pinterest what publishing needs (the token and its scopes, the board, the
section, the image URLs, a video's media id: `pinsched.checks.pins`) and say so while there is
time to fix it. Scopes Pinterest never told are no risk; a `job.at_risk` reason says they were
not checked.

A failing check appends a `job.at_risk` note (event and webhook, the reason in words); a later
pass that finds everything right appends `job.at_risk_cleared` (`pinsched.core.notes`: the job
row and its state are left alone). A job at risk is checked again every `interval_s` until it is
due; a job found fine is checked once per planned time. A check that could not be made (Pinterest
or the image host unreachable) is no verdict: nothing is said. Whether a job is at risk survives a
restart: it is read back from the job's own history.

Never in the way of a publish: the checks are reads (never the account's write bucket, which
pins, updates and deletes share), at most `concurrency` at a time, in their own task, and not
in the last `MIN_AHEAD_S` before a job is due; a job whose account cannot publish is left to
ExplainJob (it is held, not at risk). A pass finds its jobs in one range of the due-time index
(`Store.pending_planned`), never by reading the whole backlog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import structlog

from pinsched.accounts.registry import AccountRegistry
from pinsched.checks import pins
from pinsched.checks.pins import Checker
from pinsched.clock import Activity, Clock, periodic
from pinsched.core import notes
from pinsched.core.errors import JobNotFound
from pinsched.core.jobs import Job
from pinsched.store import Store

log = structlog.get_logger("pinsched.checks.at_risk")

#: Jobs read per pass at most.
MAX_PER_PASS: Final = 1000
#: A job due sooner than this is not checked (too late to fix; the publish is under way).
MIN_AHEAD_S: Final = 30.0


@dataclass(slots=True)
class _Seen:
    planned_at: datetime
    risk: str  # "" when the last check passed


class AtRiskWatch:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        accounts: AccountRegistry,
        checker: Checker,
        *,
        lead_s: float,
        interval_s: float = 60.0,
        concurrency: int = 4,
        activity: Activity | None = None,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        """*owns*: in a cluster, whether this daemon publishes an account now (only its owner
        checks its jobs, so a check is made and reported once)."""
        self.store, self.clock, self.accounts, self.checker = store, clock, accounts, checker
        self.owns = owns
        self.lead_s, self.interval_s = lead_s, interval_s
        self.activity = activity or Activity()
        self._gate = asyncio.Semaphore(concurrency)
        self._seen: dict[str, _Seen] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """A pass at start and then every `interval_s`, until *stop* is set (0 lead: off)."""
        if self.lead_s <= 0:
            return
        await periodic(
            self.clock, self.activity, self.interval_s, stop, self.run_pass, name="at_risk_pass"
        )

    async def run_pass(self) -> int:
        """Check the PENDING jobs due within the lead time that need it; how many were checked."""
        now = self.clock.now()
        jobs = await self.store.pending_planned(
            now + timedelta(seconds=min(MIN_AHEAD_S, self.lead_s)),
            now + timedelta(seconds=self.lead_s),
            MAX_PER_PASS,
        )
        due = [j for j in jobs if self._needs_check(j)]
        self._seen = {j.id: s for j in jobs if (s := self._seen.get(j.id)) is not None}
        await asyncio.gather(*(self._check(j) for j in due))
        return len(due)

    def _needs_check(self, job: Job) -> bool:
        seen = self._seen.get(job.id)
        fresh = seen is None or seen.planned_at != job.planned_at
        mine = self.owns is None or self.owns(job.account_id)
        return (
            mine
            and (fresh or bool(seen and seen.risk))
            and self.accounts.can_publish(job.account_id)
        )

    async def _check(self, job: Job) -> None:
        async with self._gate:
            seen = self._seen.get(job.id)
            if seen is None:  # first look since the start: what did the history say?
                try:
                    stored = await self.store.get_job(job.id, with_history=True)
                except JobNotFound:
                    return
                seen = _Seen(job.planned_at, notes.last_risk(stored.history))
            account = await self.accounts.get(job.account_id)
            pin = await self.store.load_pin(job.pin)
            problems = await self.checker.check(account, pin)
            verdict = [p for p in problems if not p.unavailable and not p.unchecked]
            if any(p.unavailable for p in problems) and not verdict:
                log.info("at_risk_check_unavailable", job_id=job.id, reason=pins.summary(problems))
                self._seen[job.id] = _Seen(job.planned_at, seen.risk)
                return
            risk = pins.summary(verdict)
            if risk and (untold := pins.unchecked(problems)):
                risk = f"{risk}; not checked: {untold}"
            await self._say(job, seen.risk, risk)
            self._seen[job.id] = _Seen(job.planned_at, risk)

    async def _say(self, job: Job, before: str, now_risk: str) -> None:
        at = self.clock.now()
        if now_risk and now_risk != before:
            entry = notes.at_risk(job, at, now_risk)
        elif before and not now_risk:
            entry = notes.at_risk(job, at, "every check passes again", cleared=True)
        else:
            return
        try:
            await self.store.append_note(job, entry)
        except JobNotFound:
            return
        log.warning(
            "job_at_risk" if now_risk else "job_at_risk_cleared",
            job_id=job.id,
            account_id=job.account_id,
            reason=entry.reason,
        )
