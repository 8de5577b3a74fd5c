"""Video staging beside image pins: does staging many videos delay the image pins due meanwhile?

Two rounds against the same sandbox process, each on a fresh database and daemon, 20 accounts:
without videos, then with 200 `video_url` pins (10 per account, due 2 h after the stream starts,
so with the default media lead time their staging starts with the stream: download from a
loopback server, `POST /v5/media`, the upload, status polls) scheduled right after a stream of
image pins due over a few seconds (the stream starts once every image pin is scheduled: a lead
of 2 s + 1 s per 1,000 pins). The image pins' `late_by`
p99 of both rounds is compared (target: within noise, at most 2x + 2 ms), and how many videos
were registered, uploaded and READY by the end of the stream is reported. The full run does it
twice: 1,000 images over 10 s (well below saturation) and the `lateness` stream (5,000 over
10 s, saturating the daemon), where staging must wait for the due pins
(`pinsched.media.publish_first`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bench import procs
from bench.context import (
    Ctx,
    create_accounts,
    get_jobs,
    late_ms,
    pin_request,
    schedule_all,
    wait_settled,
)
from bench.report import Row
from bench.stats import summarize
from pinsched.v1 import job_pb2
from pinsched_client import AsyncClient

ACCOUNTS = 20
VIDEOS = 200
VIDEO_BYTES = 256 * 1024
IMAGES, IMAGES_S = 1000, 10.0
ids = [f"video-bench-{i:02d}" for i in range(ACCOUNTS)]


@asynccontextmanager
async def _video_server() -> AsyncIterator[str]:
    body = bytes(range(256)) * (VIDEO_BYTES // 256)

    async def video(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/{name}.mp4", video)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _video_request(account: str, when: datetime, url: str) -> Any:
    req = pin_request(account, when)
    req.pin.media_source.Clear()
    req.pin.media_source.video_url.url = url
    req.pin.media_source.video_url.cover_image_key_frame_time = 1
    return req


async def _round(
    ctx: Ctx, name: str, videos: int, video_base: str, images: tuple[int, float]
) -> dict[str, Any]:
    db = ctx.db(name)
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    daemon, port = await procs.start_daemon(ctx.workdir, db, ctx.sandbox_url, name=name)
    # What is measured is what staging adds to a steady image load.
    k, over = images
    try:
        async with AsyncClient(f"127.0.0.1:{port}", timeout_s=60) as client:
            await create_accounts(client, ids, procs.SANDBOX_TOKEN)
            start = datetime.now(UTC) + timedelta(seconds=2.0 + k / 1000)
            jobs = await schedule_all(
                client,
                [
                    pin_request(ids[i % ACCOUNTS], start + timedelta(seconds=i * over / k))
                    for i in range(k)
                ],
            )
            # Due when the default media lead time (2 h) makes their staging start with the
            # stream: its first steps (download, commit, registration) land among the due pins.
            later = start + timedelta(hours=2)
            staged = await schedule_all(
                client,
                [
                    _video_request(ids[i % ACCOUNTS], later, f"{video_base}/v{i}.mp4")
                    for i in range(videos)
                ],
            )
            # > 0: the stream began before every pin was scheduled (a loaded machine)
            overran_s = (datetime.now(UTC) - start).total_seconds()
            await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + over))
            last = max(jobs, key=lambda j: j.planned_at.ToDatetime(tzinfo=UTC))
            await wait_settled(client, last.id, timeout_s=60)
            done = await get_jobs(client, [j.id for j in jobs])
            media = await get_jobs(client, [j.id for j in staged])
    finally:
        await daemon.stop()
    late = [
        x for j in done if j.state == job_pb2.Job.STATE_DELIVERED if (x := late_ms(j)) is not None
    ]
    states = [j.media.state for j in media if j.HasField("media")]
    return {
        "images": k,
        "over_s": over,
        "delivered": len(late),
        "late_ms": summarize(late),
        "videos": videos,
        "registered": sum(1 for j in media if j.media.pinterest_media_id),
        "ready": states.count(job_pb2.JobMedia.STATE_READY),
        "failed": states.count(job_pb2.JobMedia.STATE_FAILED),
        "scheduling_overran_s": round(overran_s, 3),
    }


async def run(ctx: Ctx) -> None:
    videos = VIDEOS // 5 if ctx.quick else VIDEOS
    streams = (
        [("videos", (ctx.sizes.stream_jobs, ctx.sizes.stream_s))]
        if ctx.quick
        else [
            ("videos", (IMAGES, IMAGES_S)),
            ("videos-saturated", (ctx.sizes.stream_jobs, ctx.sizes.stream_s)),
        ]
    )
    async with _video_server() as base:
        for key, images in streams:
            plain = await _round(ctx, f"{key}-none", 0, base, images)
            staged = await _round(ctx, f"{key}-staging", videos, base, images)
            ctx.details[key] = {"without": plain, "with": staged}
            _row(ctx, key, videos, plain, staged)


def _row(ctx: Ctx, key: str, videos: int, plain: dict[str, Any], staged: dict[str, Any]) -> None:
    p99, ref = staged["late_ms"]["p99"], plain["late_ms"]["p99"]
    ok = (
        p99 <= max(2 * ref, ref + 2.0)
        and staged["delivered"] == staged["images"]
        and staged["failed"] == 0
    )
    ctx.add(
        Row(
            key,
            f"image pins' lateness p99 while staging {videos} videos across {ACCOUNTS} "
            f"accounts ({staged['images']:,} images over {staged['over_s']:g} s)",
            p99,
            "ms",
            reference=ref,
            reference_name="no videos",
            ratio=p99 / ref if ref else None,
            target="≤ 2x + 2 ms, every image delivered, no video failed",
            passed=ok,
            notes=(
                f"p50 {staged['late_ms']['p50']:.2f} ms (without {plain['late_ms']['p50']:.2f});"
                f" by the end of the stream {staged['registered']} videos registered, "
                f"{staged['ready']} READY (sandbox processing 60 s)"
                + "".join(
                    f"; {name}: scheduling overran the stream's start by "
                    f"{r['scheduling_overran_s']:.1f} s"
                    for name, r in (("without", plain), ("with", staged))
                    if r["scheduling_overran_s"] > 0
                )
            ),
        )
    )
