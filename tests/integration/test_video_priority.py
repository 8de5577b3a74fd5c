"""Due image pins go before video staging: a video whose staging starts while a stream of image
pins is due waits for the stream, then is staged in time for its own pin (fake clock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import job_pb2
from tests.conftest import Api
from tests.integration import test_video_staging as staging
from tests.integration.test_video_staging import drive, get, video_request

# The staging tests' fixtures: a FakeClock, a sandbox on it, a daemon factory, a video server.
clock, sb, new_daemon, video_server = (
    staging.clock,
    staging.sb,
    staging.new_daemon,
    staging.video_server,
)
J = job_pb2.Job


async def test_staging_waits_for_the_image_pins_due_meanwhile(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """Ten image pins due from the instant a video's staging starts: every pin is created
    before the video is downloaded or registered, all on time, and the video pin still goes
    out on time."""
    api = await Api.open(new_daemon())
    try:
        await api.create_account()
        video_at = clock.now() + timedelta(hours=3)
        stage_at = video_at - timedelta(hours=2)  # media_lead_time: 2 h
        images = [
            await api.jobs.SchedulePin(
                api.pin_request(at=stage_at + timedelta(seconds=0.2 * k), title=f"image {k}")
            )
            for k in range(10)
        ]
        video = await api.jobs.SchedulePin(
            video_request(api, video_at, url=f"{video_server}/v.mp4")
        )
        await drive(clock, api, stage_at + timedelta(seconds=30))
        calls = [(r.method, r.path) for r in sb.requests]
        pins = [i for i, call in enumerate(calls) if call == ("POST", "/v5/pins")]
        media = [i for i, call in enumerate(calls) if call == ("POST", "/v5/media")]
        assert len(pins) == 10
        assert media
        assert max(pins) < min(media)
        for job in images:
            done = await get(api, job.id)
            assert done.state == J.STATE_DELIVERED
            assert done.late_by.ToTimedelta() < timedelta(seconds=1)
        await drive(clock, api, video_at + timedelta(seconds=5))
        published = await get(api, video.id)
        assert published.state == J.STATE_DELIVERED
        assert published.late_by.ToTimedelta() < timedelta(seconds=1)
    finally:
        await api.close()
