"""`validate_only`: SchedulePin, BatchSchedulePins and UpdateJob checked and answered without
persisting anything. The same service computes the plan (`PinService.preview`, the update's
decision); `pinsched.pinchecks` makes the remote checks, whose problems for every item are
reported together (`pinchecks.raise_for`). Reads only: never a write to the store or Pinterest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from pinsched import pinchecks
from pinsched.errors import VersionMismatch
from pinsched.jobs import Job, JobState, PinSpec, ScheduleSpec
from pinsched.pinchecks import Checker, Problem
from pinsched.service import PinService


class DryRun:
    def __init__(self, service: PinService, checker: Checker) -> None:
        self.service, self.checker = service, checker

    async def schedule_results(
        self, specs: Sequence[ScheduleSpec], *, prefixes: Sequence[str] = ("",)
    ) -> list[tuple[Job, bool]]:
        """For each request the first job it would create (empty id), never created."""
        now = self.service.clock.now()
        problems: list[Problem] = []
        out: list[tuple[Job, bool]] = []
        for spec, prefix in zip(specs, prefixes, strict=True):
            account = await self.service.accounts.get(spec.account_id)  # AccountNotFound
            planned = await self.service.preview(spec)
            problems += await self._check(spec.account_id, spec.pin, prefix, spec.also_boards)
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
                    ),
                    False,
                )
            )
        pinchecks.raise_for(_dedupe(problems))
        return out

    async def _check(
        self, account_id: str, pin: PinSpec, prefix: str, also_boards: Sequence[str] = ()
    ) -> list[Problem]:
        account = await self.service.accounts.get(account_id)
        at = f"{prefix}." if prefix else ""
        problems = await self.checker.check(
            account, pin, prefix=f"{at}pin", account_field=f"{at}account_id"
        )
        if any(p.precondition or p.field.endswith("account_id") for p in problems):
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

    async def update(
        self,
        job_id: str,
        *,
        paths: Sequence[str],
        expected_version: int,
        pin: PinSpec,
        timing: ScheduleSpec | None,
        retry_for: timedelta | None = None,
    ) -> Job:
        """The job as UpdateJob would leave it; nothing changes."""
        job = await self.service.store.get_job(job_id, with_history=True)
        if expected_version and job.version != expected_version:
            raise VersionMismatch(job_id, expected_version, job.version)
        decide = self.service.update_decision(
            job_id, paths=paths, pin=pin, timing=timing, retry_for=retry_for
        )
        new, _ = decide(job, self.service.clock.now())
        pinchecks.raise_for(_dedupe(await self._check(job.account_id, new.pin, "job")))
        return dataclasses.replace(new, version=job.version, updated_at=job.updated_at)

    async def reslot(self, job_id: str, *, expected_version: int, not_before: datetime) -> Job:
        """UpdateJob to `next_free_slot`: the job with the slot it would take."""
        job = await self.service.store.get_job(job_id, with_history=True)
        if expected_version and job.version != expected_version:
            raise VersionMismatch(job_id, expected_version, job.version)
        spec = ScheduleSpec(
            account_id=job.account_id,
            pin=job.pin,
            scheduled_at=not_before,
            next_free_slot=not_before,
        )
        placement = await self.service.preview_slot(spec)
        pinchecks.raise_for(_dedupe(await self._check(job.account_id, job.pin, "job")))
        return dataclasses.replace(
            job, planned_at=placement.planned_at, scheduled_at=placement.planned_at
        )


def _dedupe(problems: Sequence[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
