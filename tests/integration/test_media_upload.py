"""Uploading videos to the daemon (`UploadMedia` over a real gRPC channel, `POST /v1/media` on
the HTTP door) and using them in `video_asset` pins: content addressing, the media directory
beside the database, the sweep of unreferenced uploads, and the bad input of every new field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from pinsched.app import Daemon
from pinsched.media.assets import MediaAssets, media_dir
from pinsched.testing import FakeClock
from pinsched.v1 import job_pb2, media_pb2, media_pb2_grpc, scheduler_pb2
from pinsched_client import AsyncClient, pin, schedule_request
from tests.conftest import Api, soon

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
SHA = hashlib.sha256(VIDEO).hexdigest()


def chunks(
    data: bytes, content_type: str = "video/mp4", size: int = 1000
) -> list[media_pb2.UploadMediaRequest]:
    parts = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [
        media_pb2.UploadMediaRequest(content_type=content_type if i == 0 else "", data=p)
        for i, p in enumerate(parts)
    ]


async def upload(
    api: Api, requests: list[media_pb2.UploadMediaRequest]
) -> media_pb2.UploadMediaResponse:
    stub = media_pb2_grpc.MediaServiceStub(api.channel)

    async def gen() -> AsyncIterator[media_pb2.UploadMediaRequest]:
        for r in requests:
            yield r

    return await stub.UploadMedia(gen())


def asset_pin(api: Api, asset_id: str, **cover: Any) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=soon(3600))
    req.pin.media_source.CopyFrom(
        job_pb2.MediaSource(
            video_asset=job_pb2.VideoAsset(
                asset_id=asset_id, **(cover or {"cover_image_key_frame_time": 1})
            )
        )
    )
    return req


async def test_upload_streams_to_the_media_directory(api: Api) -> None:
    """Chunks streamed to UploadMedia land once, fsynced, as a file named by their sha256
    beside the database (never in SQLite); the same bytes again give the same asset."""
    got = await upload(api, chunks(VIDEO))
    assert (got.asset_id, got.sha256, got.size_bytes, got.content_type) == (
        SHA,
        SHA,
        len(VIDEO),
        "video/mp4",
    )
    stored = media_dir(api.daemon.config.db_path) / SHA
    assert stored.read_bytes() == VIDEO
    again = await upload(api, chunks(VIDEO, size=333))
    assert again.asset_id == SHA
    assert sorted(p.name for p in stored.parent.iterdir()) == [SHA, f"{SHA}.json"]
    await api.create_account()
    job = await api.jobs.SchedulePin(asset_pin(api, SHA))
    assert job.pin.media_source.video_asset.asset_id == SHA
    assert job.state == job_pb2.Job.STATE_PENDING


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        (chunks(VIDEO, content_type="image/png"), "content_type"),
        (chunks(VIDEO, content_type=""), "content_type"),
        (chunks(b""), "data"),
        ([], "content_type"),
    ],
)
async def test_bad_uploads_name_the_field(
    api: Api, requests: list[media_pb2.UploadMediaRequest], field: str
) -> None:
    """A missing or non-video content type, no bytes, or no message at all is
    INVALID_ARGUMENT naming the field, and nothing is left in the media directory."""
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await upload(api, requests)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (exc.value.details() or "")
    directory = media_dir(api.daemon.config.db_path)
    assert not directory.exists() or list(directory.iterdir()) == []


async def test_too_large_upload_is_refused(tmp_path: Path) -> None:
    """Bytes beyond the limit are refused (INVALID_ARGUMENT on data) and the partial file is
    removed."""
    assets = MediaAssets(tmp_path / "m", FakeClock(), max_bytes=10)

    async def gen() -> AsyncIterator[bytes]:
        yield b"x" * 6
        yield b"y" * 6

    with pytest.raises(Exception, match="data") as exc:
        await assets.receive("video/mp4", gen())
    assert type(exc.value).__name__ == "InvalidArgument"
    assert list((tmp_path / "m").iterdir()) == []


@pytest.mark.parametrize(
    ("source", "field"),
    [
        (
            {"video_asset": job_pb2.VideoAsset(asset_id="nope", cover_image_key_frame_time=1)},
            "pin.media_source.video_asset.asset_id",
        ),
        (
            {"video_asset": job_pb2.VideoAsset(asset_id="a" * 64, cover_image_key_frame_time=1)},
            "pin.media_source.video_asset.asset_id",
        ),
        (
            {"video_asset": job_pb2.VideoAsset(asset_id=SHA)},
            "pin.media_source.video_asset.cover_image_url",
        ),
        (
            {"video_asset": job_pb2.VideoAsset(asset_id=SHA, cover_image_key_frame_time=-1)},
            "pin.media_source.video_asset.cover_image_key_frame_time",
        ),
        (
            {"video_url": job_pb2.VideoUrl(cover_image_url="https://e.com/c.jpg")},
            "pin.media_source.video_url.url",
        ),
        (
            {"video_url": job_pb2.VideoUrl(url="ftp://e.com/v.mp4", cover_image_key_frame_time=1)},
            "pin.media_source.video_url.url",
        ),
        (
            {
                "video_url": job_pb2.VideoUrl(
                    url="http://169.254.169.254/v.mp4", cover_image_key_frame_time=1
                )
            },
            "pin.media_source.video_url.url",
        ),
        (
            {
                "video_url": job_pb2.VideoUrl(
                    url="http://metadata.google.internal/v.mp4", cover_image_key_frame_time=1
                )
            },
            "pin.media_source.video_url.url",
        ),
        (
            {"video_url": job_pb2.VideoUrl(url="https://e.com/v.mp4", cover_image_url="nope")},
            "pin.media_source.video_url.cover_image_url",
        ),
    ],
)
async def test_bad_video_sources_name_the_field(
    api: Api, source: dict[str, Any], field: str
) -> None:
    """Every bad video_url / video_asset field is INVALID_ARGUMENT naming it; nothing is
    scheduled."""
    await upload(api, chunks(VIDEO))
    await api.create_account()
    req = api.pin_request(at=soon(3600))
    req.pin.media_source.CopyFrom(job_pb2.MediaSource(**source))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await api.jobs.SchedulePin(req)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (exc.value.details() or "")
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())
    assert list(listed.jobs) == []


async def test_http_door_takes_a_raw_upload(make_daemon: Callable[..., Daemon]) -> None:
    """`POST /v1/media` stores the raw body like UploadMedia; a wrong content type or an
    empty body is a 400 naming the field, as JSON."""
    daemon = make_daemon()
    await daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.http_port}/v1/media"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                base, data=VIDEO, headers={"Content-Type": "video/mp4"}
            ) as resp:
                body = await resp.json()
                assert resp.status == 200
                assert (body["asset_id"], body["size_bytes"]) == (SHA, str(len(VIDEO)))
            for data, ctype, field in (
                (VIDEO, "text/plain", "content_type"),
                (b"", "video/mp4", "data"),
            ):
                async with session.post(base, data=data, headers={"Content-Type": ctype}) as resp:
                    text = await resp.text()
                    assert resp.status == 400
                    assert field in json.loads(text)["error"]["message"]
        assert (media_dir(daemon.config.db_path) / SHA).read_bytes() == VIDEO
    finally:
        await daemon.stop(grace_s=1.0)


async def test_sweep_removes_unreferenced_uploads_after_the_grace(tmp_path: Path) -> None:
    """An upload no job refers to is removed once the grace period passed on the clock; one
    that a job names is kept."""
    clock = FakeClock()
    assets = MediaAssets(tmp_path / "m", clock)

    async def gen(data: bytes) -> AsyncIterator[bytes]:
        yield data

    kept = await assets.receive("video/mp4", gen(b"kept"))
    dropped = await assets.receive("video/quicktime", gen(b"dropped"))

    async def in_use(asset_id: str) -> bool:
        return asset_id == kept.asset_id

    assert await assets.sweep(3600, in_use) == 0  # too young
    await clock.advance(timedelta(hours=1).total_seconds())
    assert await assets.sweep(3600, in_use) == 1
    assert assets.get(dropped.asset_id) is None
    assert assets.get(kept.asset_id) is not None
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        kept.asset_id,
        f"{kept.asset_id}.json",
    ]


async def test_python_client_uploads_a_file_and_schedules_it(api: Api, tmp_path: Path) -> None:
    """`AsyncClient.upload_media` streams a file in chunks; `pin(video_asset_id=...)` then
    schedules it as a video_asset pin."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(VIDEO)
    async with AsyncClient(f"127.0.0.1:{api.daemon.port}") as client:
        got = await client.upload_media(str(path), "video/mp4", chunk_bytes=100)
        assert (got.asset_id, got.size_bytes) == (SHA, len(VIDEO))
        await api.create_account()
        job = await client.schedule_pin(
            schedule_request(
                "acme",
                pin("1001", video_asset_id=got.asset_id, cover_image_key_frame_time=0),
                scheduled_at=soon(3600),
            )
        )
    assert job.pin.media_source.video_asset.asset_id == SHA
    with pytest.raises(ValueError, match="at most one"):
        pin("1001", video_url="https://e.com/v.mp4", video_asset_id=SHA)


async def test_store_knows_which_uploads_jobs_refer_to(api: Api) -> None:
    """`asset_in_use` (what the sweep asks) is true for an asset a job names and false
    otherwise, also once the job is cancelled (still a job referring to it)."""
    await upload(api, chunks(VIDEO))
    await api.create_account()
    job = await api.jobs.SchedulePin(asset_pin(api, SHA))
    assert await api.daemon.store.asset_in_use(SHA)
    assert not await api.daemon.store.asset_in_use("b" * 64)
    await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
    assert await api.daemon.store.asset_in_use(SHA)


async def test_http_upload_needs_the_api_token(make_daemon: Callable[..., Daemon]) -> None:
    """With an API token configured, `POST /v1/media` without it is a 401 and stores
    nothing; with it, the upload is stored."""
    token = "media-upload-token-0123456789"
    daemon = make_daemon(api_token=token)
    await daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.http_port}/v1/media"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                base, data=VIDEO, headers={"Content-Type": "video/mp4"}
            ) as resp:
                assert resp.status == 401
            assert not (media_dir(daemon.config.db_path) / SHA).exists()
            async with session.post(
                base,
                data=VIDEO,
                headers={"Content-Type": "video/mp4", "Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 200
        assert (media_dir(daemon.config.db_path) / SHA).exists()
    finally:
        await daemon.stop(grace_s=1.0)
