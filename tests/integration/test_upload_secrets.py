"""The upload parameters of a registered video at rest: encrypted with the token cipher when
`secret_key` is set (and read back after a restart, the upload then made once), in clear text
only when token encryption is off."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from pinsched.app import Daemon
from pinsched.sandbox import FaultRule, Sandbox
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
KEY = Fernet.generate_key().decode()


def _stored_stage(db: Path, job_id: str) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT media_stage FROM jobs WHERE id=?", (job_id,)).fetchone()
    stage: dict[str, Any] = json.loads(row[0])
    return stage


async def _registered(
    make: Callable[..., Daemon], sb: Sandbox, clock: FakeClock, video_server: str, **config: Any
) -> tuple[str, str]:
    """A video job left REGISTERED (its upload not made) by a daemon that then stops."""
    api = await Api.open(make(**config))
    try:
        await api.create_account()
        planned = clock.now() + timedelta(hours=3)
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        sb.add_fault(
            FaultRule(kind="status", status=503, method="GET", path_prefix="/v5/media/", times=1)
        )
        await drive(clock, api, planned - timedelta(hours=2) + timedelta(seconds=1))
        media_id = (await get(api, job.id)).media.pinterest_media_id
        assert media_id
        assert sb.state.media.uploads == []
        return job.id, media_id
    finally:
        await api.close()


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_upload_parameters_are_encrypted_and_read_after_a_restart(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
    db_url: str,
) -> None:
    """With secret_key set the stored stage holds no upload parameter in clear (only an
    `enc:v1:` value), and a restarted daemon with the key uploads with them and publishes."""
    job_id, media_id = await _registered(new_daemon, sb, clock, video_server, secret_key=KEY)
    stage = _stored_stage(Path(db_url), job_id)
    item = sb.state.media.items[media_id]
    raw = json.dumps(stage)
    assert stage["sealed_parameters"].startswith("enc:v1:")
    assert stage["upload_parameters"] == {}
    assert item.policy not in raw
    assert item.key not in raw
    api = await Api.open(new_daemon(secret_key=KEY))
    try:
        await drive(clock, api, clock.now() + timedelta(hours=3))
        done = await get(api, job_id)
        assert done.state == job_pb2.Job.STATE_DELIVERED
        assert sb.state.media.uploads == [media_id]
    finally:
        await api.close()


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_upload_parameters_are_clear_when_encryption_is_off(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
    db_url: str,
) -> None:
    """Without secret_key (tokens in clear too) the parameters are stored as Pinterest gave
    them."""
    job_id, media_id = await _registered(new_daemon, sb, clock, video_server)
    stage = _stored_stage(Path(db_url), job_id)
    assert stage["sealed_parameters"] == ""
    assert stage["upload_parameters"]["policy"] == sb.state.media.items[media_id].policy
