"""Handing an account over between two in-process daemons on one PostgreSQL database (each on
its own fake clock; leaving one clock behind is that daemon paused): the new owner reconciles the
account's SUBMITTED jobs before it sends anything new, continues the account's pace, and the
paused owner, woken after the takeover, commits nothing and sends nothing for it."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from google.protobuf import duration_pb2

from pinsched.core.jobs import JobState, transition
from pinsched.store import Fence, LeaseLost
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.cluster.conftest import LEASE_S, Nodes
from tests.conftest import ACCESS, BOARD
from tests.integration.test_video_staging import video_server  # noqa: F401 (fixture)

J = job_pb2.Job


def creates(nodes: Nodes) -> int:
    """Create requests (POST /v5/pins) the sandbox received."""
    return sum(1 for r in nodes.sandbox.requests if r.method == "POST" and r.path == "/v5/pins")


async def owner_index(nodes: Nodes, account_id: str) -> int:
    ids = [nodes.member_id(i) for i in (0, 1)]
    [lease] = [x for x in await nodes.daemon(0).store.leases() if x.account_id == account_id]
    return ids.index(lease.owner)


async def test_the_new_owner_reconciles_submitted_jobs_before_sending_anything_new(
    nodes: Nodes,
) -> None:
    """The owner of `acme` recorded a job SUBMITTED and its create reached Pinterest, then it
    was paused; the other daemon takes the account over, finds that pin (no second create) and
    only then sends the account's next due job; the old owner, woken, sends nothing more."""
    await nodes.start(0)
    await nodes.start(1)
    api = nodes.apis[0]
    assert api is not None
    await api.create_account("acme")
    await nodes.run(2 * LEASE_S)
    x = await owner_index(nodes, "acme")
    y = 1 - x
    old, new = nodes.daemon(x), nodes.daemon(y)
    assert old.member is not None
    now = nodes.clocks[x].now()

    # The owner sends the first job: SUBMITTED (fenced by its lease), and the pin lands.
    later = await api.jobs.SchedulePin(
        api.pin_request(at=now + timedelta(hours=1), title="lost answer")
    )
    job = await old.store.get_job(later.id)
    held = old.member.held["acme"].lease
    fence = Fence("acme", held.owner, held.epoch, now)
    queued, entry = transition(job, JobState.QUEUED, now=now, reason="due")
    job, _ = await old.store.commit(job, queued, entry, fence=fence)
    sent, entry = transition(
        job, JobState.SUBMITTED, now=now, reason="attempt 1", attempts=1, submitted_at=now
    )
    job, _ = await old.store.commit(job, sent, entry, fence=fence)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{nodes.sandbox.base_url}/pins",
            json={
                "board_id": BOARD,
                "title": "lost answer",
                "media_source": {"source_type": "image_url", "url": "https://example.com/a.jpg"},
            },
            headers={"Authorization": f"Bearer {ACCESS}"},
        ) as resp,
    ):
        assert resp.status == 201
        pin_id = (await resp.json())["id"]
    due = await api.jobs.SchedulePin(api.pin_request(at=now + timedelta(seconds=1), title="next"))
    assert creates(nodes) == 1

    # The owner is paused; past its lease the other daemon takes the account over.
    await nodes.run(3 * LEASE_S, running=[y])
    assert new.member is not None
    assert new.member.owned() == ["acme"]
    reconciled = await new.store.get_job(later.id, with_history=True)
    assert reconciled.state is JobState.DELIVERED
    assert reconciled.pinterest_pin_id == pin_id
    nxt = await new.store.get_job(due.id, with_history=True)
    assert nxt.state is JobState.DELIVERED
    delivered_at = next(h.sequence for h in reconciled.history if h.to_state is JobState.DELIVERED)
    sent_at = next(h.sequence for h in nxt.history if h.to_state is JobState.SUBMITTED)
    assert delivered_at < sent_at, "a new pin went out before the SUBMITTED one was reconciled"
    assert creates(nodes) == 2  # the lost answer's pin, found; the next one's: no duplicate

    # The old owner wakes: its lease is gone, its fenced writes are refused.
    await nodes.clocks[x].advance(3 * LEASE_S)
    assert old.member.owned() == []  # on its own clock, before any write
    await nodes.run(LEASE_S)
    assert old.member.counts.lost == 1  # (it may be given the account back, at a new epoch)
    fresh = await old.store.get_job(due.id)
    again = transition(fresh, JobState.CANCELLING, now=nodes.clocks[x].now(), reason="late")
    with pytest.raises(LeaseLost):
        await old.store.commit(fresh, *again, fence=Fence("acme", held.owner, held.epoch, now))
    assert (await new.store.get_job(due.id)).state is JobState.DELIVERED
    assert creates(nodes) == 2


async def test_a_paused_owner_woken_after_the_takeover_sends_nothing_and_the_pace_moves(
    nodes: Nodes,
) -> None:
    """The owner of an account paced one pin a minute sends a pin, queues the next one and is
    paused while it waits out the spacing; the other daemon takes the account over and sends the
    queued pin only when the minute is up (the pace moved with the lease); the old owner, woken,
    commits nothing and sends nothing: the pin exists once."""
    await nodes.start(0)
    await nodes.start(1)
    api = nodes.apis[0]
    assert api is not None
    await api.create_account("acme", min_spacing=duration_pb2.Duration(seconds=60))
    await nodes.run(2 * LEASE_S)
    x = await owner_index(nodes, "acme")
    y = 1 - x
    old, new = nodes.daemon(x), nodes.daemon(y)
    start = nodes.clocks[x].now()
    first = await api.jobs.SchedulePin(api.pin_request(at=start + timedelta(seconds=1), title="1"))
    second = await api.jobs.SchedulePin(api.pin_request(at=start + timedelta(seconds=2), title="2"))
    await nodes.run(LEASE_S / 2)  # the first is sent; the second waits for the spacing
    assert (await old.store.get_job(first.id)).state is JobState.DELIVERED
    assert (await old.store.get_job(second.id)).state is JobState.QUEUED
    assert creates(nodes) == 1

    # Paused: the other daemon takes the account over, and keeps to its pace.
    await nodes.run(3 * LEASE_S, running=[y])
    assert new.member is not None
    assert new.member.owned() == ["acme"]
    assert (await new.store.get_job(second.id)).state is JobState.QUEUED
    assert creates(nodes) == 1, "the takeover burst the account's pace"
    await nodes.run(3 * LEASE_S, running=[y])  # the minute is up
    done = await new.store.get_job(second.id, with_history=True)
    assert done.state is JobState.DELIVERED
    sent = next(h.time for h in done.history if h.to_state is JobState.SUBMITTED)
    assert sent >= start + timedelta(seconds=60)
    assert creates(nodes) == 2

    # The old owner wakes up, past its lease, with the second pin in its hands.
    await nodes.clocks[x].advance(6 * LEASE_S)
    await nodes.run(LEASE_S)
    assert old.dispatchers.fenced >= 1
    assert creates(nodes) == 2
    history = (await new.store.get_job(second.id, with_history=True)).history
    assert sum(1 for h in history if h.to_state is JobState.SUBMITTED) == 1


async def test_what_is_asked_through_the_other_daemon_is_done_by_the_owner(nodes: Nodes) -> None:
    """A pin scheduled through the daemon that does not own the account is published by the one
    that does (once), and its cancel, asked through the other daemon again, deletes the pin."""
    await nodes.start(0)
    await nodes.start(1)
    api = nodes.apis[0]
    assert api is not None
    await api.create_account("acme")
    await nodes.run(2 * LEASE_S)
    x = await owner_index(nodes, "acme")
    other = nodes.apis[1 - x]
    assert other is not None
    now = nodes.clocks[x].now()
    job = await other.jobs.SchedulePin(other.pin_request(at=now + timedelta(seconds=2)))
    await nodes.run(LEASE_S / 2)
    delivered = await nodes.daemon(x).store.get_job(job.id)
    assert delivered.state is JobState.DELIVERED
    assert creates(nodes) == 1
    assert [p["id"] for p in nodes.sandbox.pins()] == [delivered.pinterest_pin_id]
    await other.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
    await nodes.run(LEASE_S / 2)
    assert (await nodes.daemon(x).store.get_job(job.id)).state is JobState.CANCELLED
    assert nodes.sandbox.pins() == []


async def test_a_video_known_to_both_daemons_is_staged_once_by_its_owner(
    nodes: Nodes,
    video_server: str,  # noqa: F811 (the fixture imported above)
) -> None:
    """A video job that both daemons know of (scheduled on the first, loaded by the second when
    it starts) is staged by the account's owner alone: one media registration at Pinterest, not
    one per daemon, and the pin is published once."""
    lead = {"media_lead_time_s": 30.0}
    first = await nodes.start(0, **lead)
    await first.create_account("acme")
    nodes.sandbox.state.media.processing_s = 1.0
    request = first.pin_request(at=nodes.clocks[0].now() + timedelta(seconds=60))
    request.pin.media_source.video_url.url = f"{video_server}/v.mp4"
    request.pin.media_source.video_url.cover_image_url = "https://example.com/cover.jpg"
    job = await first.jobs.SchedulePin(request)
    await nodes.start(1, **lead)
    await nodes.run(90)
    x = await owner_index(nodes, "acme")
    done = await nodes.daemon(x).store.get_job(job.id)
    assert done.state is JobState.DELIVERED
    registrations = [
        r for r in nodes.sandbox.requests if r.method == "POST" and r.path == "/v5/media"
    ]
    assert len(registrations) == 1
    assert creates(nodes) == 1
