"""Inline images are stored once and travel as a reference: jobs, events, watch streams, lists,
webhooks and the event cache carry (sha256, size, content type); GetJob returns the bytes only
with `view: JOB_VIEW_FULL`, and the dispatcher reads them only to publish."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2

from pinsched.api.proto_json import PROTO_JSON
from pinsched.core.accounts import Account
from pinsched.core.jobs import ImageBase64, JobState, PinSpec, transition
from pinsched.store import Event, Outbox, Store
from pinsched.v1 import job_pb2, scheduler_pb2
from pinsched.webhooks.messages import Endpoint, OutboxRenderers
from tests.conftest import Api, soon
from tests.integration.test_daemon import wait_states
from tests.integration.test_store import NOW, make_job

J = job_pb2.Job
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 800  # ~200 KB
DIGEST = hashlib.sha256(IMAGE).hexdigest()


def image_pin(data: bytes = IMAGE, title: str = "inline") -> job_pb2.Pin:
    return job_pb2.Pin(
        board_id="1001",
        title=title,
        media_source=job_pb2.MediaSource(
            image_base64=job_pb2.ImageBase64(content_type="image/png", data=data)
        ),
    )


def media_rows(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(db)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT sha256, size FROM media ORDER BY 1")]
    finally:
        conn.close()


def largest_row(db: Path, table: str, column: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT max(length({column})) FROM {table}").fetchone()[0] or 0)
    finally:
        conn.close()


async def schedule_image(
    api: Api, *, at: datetime, data: bytes = IMAGE, title: str = "inline"
) -> job_pb2.Job:
    req = api.pin_request(at=at)
    req.pin.CopyFrom(image_pin(data, title))
    return await api.jobs.SchedulePin(req)


def assert_reference(pin: job_pb2.Pin, data: bytes = IMAGE) -> None:
    image = pin.media_source.image_base64
    assert image.data == b""
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.size_bytes == len(data)
    assert image.content_type == "image/png"


async def test_answers_lists_and_watch_events_carry_the_reference_only(api: Api) -> None:
    """SchedulePin, ListJobs, GetJob (basic) and every watch event name the image by hash and
    size without its bytes; GetJob with JOB_VIEW_FULL returns the very bytes sent."""
    await api.create_account()
    watch = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=0))
    job = await schedule_image(api, at=soon(3600))
    assert_reference(job.pin)
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(account_id="acme"))
    assert_reference(listed.jobs[0].pin)
    basic = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert_reference(basic.pin)
    full = await api.jobs.GetJob(
        scheduler_pb2.GetJobRequest(job_id=job.id, view=scheduler_pb2.JOB_VIEW_FULL)
    )
    assert full.pin.media_source.image_base64.data == IMAGE
    assert full.pin.media_source.image_base64.sha256 == DIGEST
    event = await asyncio.wait_for(watch.read(), 5)
    watch.cancel()
    assert_reference(event.job.pin)
    assert event.ByteSize() < 2000
    replay = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=0))
    replayed = await asyncio.wait_for(replay.read(), 5)
    replay.cancel()
    assert_reference(replayed.job.pin)


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_an_image_is_stored_once_and_dropped_with_its_last_job(
    api: Api, tmp_path: Path
) -> None:
    """Two jobs with the same image share one stored copy, no job or event row holds the
    bytes, and the copy goes when the last job using it is gone."""
    db = tmp_path / "pinsched.db"
    await api.create_account()
    a = await schedule_image(api, at=soon(3600), title="a")
    b = await schedule_image(api, at=soon(7200), title="b")
    assert media_rows(db) == [(DIGEST, len(IMAGE))]
    assert largest_row(db, "jobs", "pin") < 1000
    assert largest_row(db, "events", "reason") < 1000
    for job in (a, b):
        await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
    await api.daemon.store.prune(datetime.now(UTC) + timedelta(days=1), limit=1)
    assert media_rows(db) == [(DIGEST, len(IMAGE))]  # b still uses it
    await api.daemon.store.prune(datetime.now(UTC) + timedelta(days=1))
    assert media_rows(db) == []


async def test_the_published_pin_gets_the_bytes(api: Api) -> None:
    """A job with an inline image is delivered: the dispatcher read the bytes back and the
    sandbox accepted them (it refuses an image_base64 without data)."""
    await api.create_account()
    job = await schedule_image(api, at=soon(0.2))
    await wait_states(api, [job.id], {J.STATE_DELIVERED, J.STATE_PERMANENTLY_FAILED})
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert got.state == J.STATE_DELIVERED, got.last_error


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_update_keeps_replaces_or_refuses_the_image(api: Api, tmp_path: Path) -> None:
    """A title update keeps the image; a pin sent back as GetJob showed it (image named by its
    sha256) keeps it too; a new image replaces it and the old copy goes; naming an image that
    is not the job's own is INVALID_ARGUMENT."""
    db = tmp_path / "pinsched.db"
    await api.create_account()
    job = await schedule_image(api, at=soon(3600))
    other = await schedule_image(api, at=soon(3600), data=IMAGE[::-1], title="other")

    async def update(pin: job_pb2.Pin, *paths: str) -> job_pb2.Job:
        return await api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=job_pb2.Job(id=job.id, pin=pin),
                update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
            )
        )

    renamed = await update(job_pb2.Pin(title="renamed"), "pin.title")
    assert_reference(renamed.pin)
    shown = (await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))).pin
    shown.title = "again"
    again = await update(shown, "pin")
    assert_reference(again.pin)
    assert again.pin.title == "again"
    stolen = job_pb2.Pin()
    stolen.CopyFrom(shown)
    stolen.media_source.image_base64.sha256 = other.pin.media_source.image_base64.sha256
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(stolen, "pin")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pin.media_source.image_base64.data" in (caught.value.details() or "")
    new_image = b"\x89PNG\r\n\x1a\nnew" * 100
    replaced = await update(image_pin(new_image), "pin.media_source")
    assert_reference(replaced.pin, new_image)
    digests = {d for d, _ in media_rows(db)}
    assert digests == {
        hashlib.sha256(new_image).hexdigest(),
        hashlib.sha256(IMAGE[::-1]).hexdigest(),
    }
    full = await api.jobs.GetJob(
        scheduler_pb2.GetJobRequest(job_id=job.id, view=scheduler_pb2.JOB_VIEW_FULL)
    )
    assert full.pin.media_source.image_base64.data == new_image


async def test_an_unknown_view_is_invalid_argument(api: Api) -> None:
    """GetJob with a view number that is not BASIC or FULL is INVALID_ARGUMENT naming `view`."""
    await api.create_account()
    job = await schedule_image(api, at=soon(3600))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id, view=7))  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "view" in (caught.value.details() or "")


async def test_committed_events_and_webhook_bodies_hold_no_bytes(tmp_path: Path) -> None:
    """The events the store hands on (to watchers, caches, metrics) and the webhook bodies it
    writes carry the image reference, never its bytes."""
    seen: list[Event] = []

    def sink(events: Sequence[Event]) -> None:
        seen.extend(events)

    hook = Endpoint(name="h", url="https://hooks.example/a", keys=(b"k" * 16,))
    store = await Store.open(
        tmp_path / "m.db",
        on_events=sink,
        outbox=Outbox(OutboxRenderers([hook], PROTO_JSON).render_event),
    )
    try:
        await store.create_account(
            Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW)
        )
        job, entry = make_job(1)
        job = dataclasses.replace(
            job, pin=PinSpec(board_id="1", media=ImageBase64(content_type="image/png", data=IMAGE))
        )
        [(created, _)] = await store.create_jobs([job], [entry])
        await store.commit(created, *transition(created, JobState.QUEUED, now=NOW, reason="due"))
        for event in seen:
            assert event.job is not None
            media = event.job.pin.media
            assert isinstance(media, ImageBase64)
            assert (media.data, media.sha256, media.size) == (b"", DIGEST, len(IMAGE))
        assert len(seen) == 2
        for delivery in await store.webhook_list():
            body = json.loads(delivery.payload)
            assert body["data"]["job"]["pin"]["media_source"]["image_base64"] == {
                "content_type": "image/png",
                "sha256": DIGEST,
                "size_bytes": str(len(IMAGE)),
            }
            assert len(delivery.payload) < 2000
        loaded = await store.load_pin(created.pin)
        assert isinstance(loaded.media, ImageBase64)
        assert loaded.media.data == IMAGE
    finally:
        await store.close()


async def test_the_python_client_asks_for_the_bytes_only_when_told(api: Api) -> None:
    """`AsyncClient.get_job` returns the image reference by default and the bytes with
    `full=True`."""
    from pinsched_client import AsyncClient

    await api.create_account()
    job = await schedule_image(api, at=soon(3600))
    async with AsyncClient(f"127.0.0.1:{api.daemon.port}") as client:
        assert_reference((await client.get_job(job.id)).pin)
        full = await client.get_job(job.id, full=True)
    assert full.pin.media_source.image_base64.data == IMAGE
