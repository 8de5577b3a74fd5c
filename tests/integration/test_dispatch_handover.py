"""The dispatcher takes the committed job the router hands over instead of reading its row
again, and a handed-over job that is no longer the newest is never published as it was."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from google.protobuf import field_mask_pb2

from pinsched.core.jobs import JobState
from pinsched.sandbox import Sandbox
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api, soon
from tests.integration.test_daemon import wait_states

J = job_pb2.Job


async def test_a_due_pin_is_published_without_reading_its_row_again(
    api: Api, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pin due now is queued, submitted and delivered with no `get_job` from the dispatch
    path: the job travels with its committed event."""
    await api.create_account()
    store = api.daemon.store
    reads: list[str] = []
    real = store.get_job

    async def counting(job_id: str, **kw: Any) -> Any:
        reads.append(job_id)
        return await real(job_id, **kw)

    monkeypatch.setattr(store, "get_job", counting)
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(), title="handed over"))
    await wait_states(api, [job.id], {J.STATE_DELIVERED})
    assert [p["title"] for p in sandbox.pins()] == ["handed over"]
    assert reads == []


async def test_a_stale_handed_over_job_is_not_published(api: Api, sandbox: Sandbox) -> None:
    """A job handed to the dispatcher in an older version (QUEUED, while the row has been
    updated since and is PENDING) loses the SUBMITTED compare-and-set: nothing is sent and the
    job keeps its newer content."""
    await api.create_account()
    created = await api.jobs.SchedulePin(api.pin_request(at=soon(3600), title="old"))
    old = await api.daemon.store.get_job(created.id)
    update = scheduler_pb2.UpdateJobRequest(
        job=job_pb2.Job(id=created.id, pin=job_pb2.Pin(title="new")),
        update_mask=field_mask_pb2.FieldMask(paths=["pin.title"]),
    )
    updated = await api.jobs.UpdateJob(update)
    assert updated.version > old.version
    stale = dataclasses.replace(old, state=JobState.QUEUED, planned_at=api.daemon.clock.now())
    pool = api.daemon.dispatchers
    pool.submit(stale)
    dispatcher = pool._by_account[created.account_id]
    await pool.idle.wait()
    while dispatcher.queue or not dispatcher.waiting:  # the loop took it and went idle again
        await api.daemon.clock.sleep(0.01)
    assert sandbox.pins() == []
    now = await api.get(created.id)
    assert now.state == J.STATE_PENDING
    assert now.pin.title == "new"
    assert now.version == updated.version
