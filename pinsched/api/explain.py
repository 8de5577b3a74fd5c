"""ExplainJob: gather what the daemon knows about one job (store row, account, live pace,
dispatcher memory) without changing any of it, hand it to the pure `pinsched.core.explain`, and
convert the answer to `JobExplanation`."""

from __future__ import annotations

from datetime import timedelta

from pinsched.api import convert as cv
from pinsched.core import explain as ex
from pinsched.core import explanation as exn
from pinsched.core.jobs import JobState
from pinsched.core.retry import retry_deadline
from pinsched.service import PinService
from pinsched.v1 import scheduler_pb2

E = scheduler_pb2.JobExplanation


async def gather(service: PinService, job_id: str) -> exn.Facts:
    """The facts about *job_id* now (`JobNotFound` for an unknown id)."""
    job = await service.get(job_id)  # with its history
    accounts, pool = service.accounts, service.dispatchers
    account = accounts.cached(job.account_id)
    now, mono = service.clock.now(), service.clock.monotonic()
    pace = None
    if job.state is JobState.QUEUED and account is not None:
        pace = exn.pace_wait(accounts.pacer(job.account_id), accounts.app_bucket, mono)
    settle_at = None
    if job.state is JobState.SUBMITTED:
        settle_at = (job.submitted_at or job.updated_at) + timedelta(seconds=pool.settle_s)
    return exn.Facts(
        job=job,
        now=now,
        account=account,
        app_refused=accounts.app_refused,
        pace=pace,
        retry_until=retry_deadline(
            planned_at=job.planned_at, window_end=job.window_end, retry_for=job.retry_for
        ),
        queue_position=pool.queue_position(job.account_id, job.id),
        failed_looks=pool.read_failures.get(job.id, 0),
        settle_at=settle_at,
    )


def to_proto(x: exn.Explanation) -> scheduler_pb2.JobExplanation:
    msg = E(
        job_id=x.job_id,
        state=cv.state_to_proto(x.state),
        phase=E.Phase.Value(f"PHASE_{x.phase.value}"),
        summary=x.summary,
        hold_detail=x.hold_detail,
        attempts=x.attempts,
        board_id=x.board_id,
        failed_looks=x.failed_looks,
        outcome=x.outcome,
        pinterest_pin_id=x.pinterest_pin_id,
        queue_position=x.queue_position,
        at_risk=x.at_risk,
    )
    msg.explained_at.CopyFrom(cv.timestamp_to_proto(x.explained_at))
    if x.next_action_at is not None:
        msg.next_action_at.CopyFrom(cv.timestamp_to_proto(x.next_action_at))
        msg.wait.CopyFrom(cv.duration_to_proto(x.wait))
    if x.hold is not None:
        msg.hold_reason = E.HoldReason.Value(f"HOLD_REASON_{x.hold.value}")
    if x.rule is not None:
        msg.pacing_rule = E.PacingRule.Value(f"PACING_RULE_{x.rule.value}")
    if x.retry_until is not None:
        msg.retry_until.CopyFrom(cv.timestamp_to_proto(x.retry_until))
        msg.retry_left.CopyFrom(cv.duration_to_proto(x.retry_left))
    if x.last_error is not None:
        msg.last_error.CopyFrom(cv.error_to_proto(x.last_error))
    if x.looking_since is not None:
        msg.looking_since.CopyFrom(cv.timestamp_to_proto(x.looking_since))
    return msg


async def explain_job(service: PinService, job_id: str) -> scheduler_pb2.JobExplanation:
    """ExplainJob's answer for *job_id*."""
    return to_proto(ex.explain(await gather(service, job_id)))
