"""`validate_only`: SchedulePin, BatchSchedulePins and UpdateJob checked and answered without
persisting anything. The same service computes the plan (`PinService.preview`, the update's
decision); `pinsched.checks.pins` makes the remote checks, whose problems for every item are
reported together (`pins.raise_for`). Reads only: never a write to the store or Pinterest.
What could not be checked (the token's scopes, when Pinterest never said them) is no error:
the answered job's history says it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from pinsched.checks import pins
from pinsched.checks.pins import Checker, Problem
from pinsched.core.errors import AlreadyExists, VersionMismatch
from pinsched.core.jobs import Job, JobState, PinSpec, ScheduleSpec, Transition
from pinsched.core.requests import Update
from pinsched.service import PinService
from pinsched.store import Store


class DryRun:
    def __init__(self, service: PinService, checker: Checker) -> None:
        self.service, self.checker = service, checker

    async def schedule_results(
        self, specs: Sequence[ScheduleSpec], *, prefixes: Sequence[str] = ("",)
    ) -> list[tuple[Job, bool]]:
        """For each request the first job it would create (empty id), never created; a request
        whose `request_id` names a job already answers it (`created` false) as the call would,
        and one that reuses it with other content is ALREADY_EXISTS (`repeats`)."""
        now = self.service.clock.now()
        problems: list[Problem] = []
        out: list[tuple[Job, bool]] = []
        for spec in specs:
            await self.service.accounts.get(spec.account_id)  # AccountNotFound, as the call
        known = await repeats(self.service.store, specs)
        earlier: dict[str, Job] = {}  # request id → the job an earlier request would create
        for spec, prefix, seen in zip(specs, prefixes, known, strict=True):
            if seen is None and spec.request_id in earlier:
                seen = earlier[spec.request_id]
            if seen is not None:
                out.append((seen, False))
                continue
            account = await self.service.accounts.get(spec.account_id)
            planned = await self.service.preview(spec)
            found = await self._check(spec.account_id, spec.pin, prefix, spec.also_boards)
            problems += found
            scheduled = spec.scheduled_at if spec.next_free_slot is None else planned
            out.append(
                (
                    Job(
                        id="",
                        account_id=account.id,
                        pin=spec.pin,
                        state=JobState.PENDING,
                        scheduled_at=scheduled,
                        planned_at=planned,
                        window=spec.window,
                        local_time=spec.local_time,
                        request_id=spec.request_id,
                        request_hash=spec.request_hash,
                        created_at=now,
                        updated_at=now,
                        retry_for=spec.retry_for,
                        version=0,
                        history=_untold(found, now),
                    ),
                    False,
                )
            )
            if spec.request_id:
                earlier[spec.request_id] = out[-1][0]
        pins.raise_for(_dedupe(problems))
        return out

    async def _check(
        self, account_id: str, pin: PinSpec, prefix: str, also_boards: Sequence[str] = ()
    ) -> list[Problem]:
        account = await self.service.accounts.get(account_id)
        at = f"{prefix}." if prefix else ""
        problems = await self.checker.check(
            account, pin, prefix=f"{at}pin", account_field=f"{at}account_id"
        )
        if any(
            p.precondition or (p.field.endswith("account_id") and not p.unchecked) for p in problems
        ):
            return problems  # the token does not work: the other boards cannot be checked
        for k, board in enumerate(also_boards):
            other = dataclasses.replace(pin, board_id=board, board_section_id="")
            found = await self.checker.check(
                account, other, prefix=f"{at}pin", account_field=f"{at}account_id"
            )
            problems += [
                dataclasses.replace(p, field=f"{at}also_boards[{k}]")
                if p.field == f"{at}pin.board_id"
                else p
                for p in found
            ]
        return problems

    async def update(self, job_id: str, request: Update, *, expected_version: int) -> Job:
        """The job as UpdateJob would leave it; nothing changes."""
        job = await self.service.get(job_id)
        if expected_version and job.version != expected_version:
            raise VersionMismatch(job_id, expected_version, job.version)
        decide = self.service.update_decision(request)
        now = self.service.clock.now()
        new, _ = decide(job, now)
        found = await self._check(job.account_id, new.pin, "job")
        pins.raise_for(_dedupe(found))
        history = (*new.history, *_untold(found, now, job.state))
        return dataclasses.replace(
            new, version=job.version, updated_at=job.updated_at, history=history
        )

    async def reslot(self, job_id: str, *, expected_version: int, not_before: datetime) -> Job:
        """UpdateJob to `next_free_slot`: the job with the slot it would take."""
        job = await self.service.get(job_id)
        if expected_version and job.version != expected_version:
            raise VersionMismatch(job_id, expected_version, job.version)
        spec = ScheduleSpec(
            account_id=job.account_id,
            pin=job.pin,
            scheduled_at=not_before,
            next_free_slot=not_before,
        )
        placement = await self.service.preview_slot(spec)
        pins.raise_for(_dedupe(await self._check(job.account_id, job.pin, "job")))
        return dataclasses.replace(
            job, planned_at=placement.planned_at, scheduled_at=placement.planned_at
        )


async def repeats(store: Store, specs: Sequence[ScheduleSpec]) -> list[Job | None]:
    """For each request the stored job its `request_id` already names (None: a new request).
    ALREADY_EXISTS, worded as the store words it, when a request id comes back with other
    content, stored or earlier in the batch."""
    stored = await store.jobs_by_request_id(spec.request_id for spec in specs)
    hashes: dict[str, str] = {rid: job.request_hash for rid, job in stored.items()}
    owners: dict[str, str] = {rid: job.id for rid, job in stored.items()}
    out: list[Job | None] = []
    for i, spec in enumerate(specs):
        rid = spec.request_id
        if rid and rid in hashes and hashes[rid] != spec.request_hash:
            where = f"requests[{i}]." if len(specs) > 1 else ""
            owner = owners.get(rid, "")
            raise AlreadyExists(
                f"{where}request_id {rid!r} was already used for job "
                f"{owner or 'an earlier request of this batch'} with different content"
            )
        if rid and rid not in hashes:
            hashes[rid] = spec.request_hash
        out.append(stored.get(rid) if rid else None)
    return out


def _untold(
    problems: Sequence[Problem], now: datetime, state: JobState = JobState.PENDING
) -> tuple[Transition, ...]:
    """A history entry saying what could not be checked (none when everything was)."""
    untold = pins.unchecked(_dedupe(problems))
    if not untold:
        return ()
    return (
        Transition(
            from_state=None if state is JobState.PENDING else state,
            to_state=state,
            time=now,
            reason=f"validate_only: not checked: {untold}",
        ),
    )


def _dedupe(problems: Sequence[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
