"""SIGTERM drains gracefully (DESIGN §6, §8): the daemon and the sandbox as subprocesses.

SIGTERM stops taking work; a request already in flight gets the grace period. If it answers in
time the job ends DELIVERED; if not, the job is left SUBMITTED and the next start reconciles it
(looking for the pin before any retry), so there is exactly one pin either way. The stored state
between the two runs is read from the SQLite file with the daemon's own `Store`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from pinsched.core.jobs import Job, JobState
from pinsched.store import Store
from pinsched.v1 import account_pb2, account_pb2_grpc, job_pb2, scheduler_pb2
from tests.conftest import jobs_stub
from tests.e2e.procs import Proc, sandbox_pins, start_daemon, start_sandbox

J = job_pb2.Job


async def admin(base_url: str, method: str, path: str, body: Any = None) -> Any:
    """Call the sandbox's admin API."""
    root = base_url.rsplit("/v5", 1)[0]
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{root}/_admin{path}", json=body) as resp,
    ):
        resp.raise_for_status()
        return await resp.json() if resp.status != 204 else None


async def pin_posts(base_url: str) -> list[int]:
    """Statuses of the `POST /v5/pins` the sandbox saw (0: no answer sent)."""
    log = await admin(base_url, "GET", "/requests")
    return [r["status"] for r in log["items"] if (r["method"], r["path"]) == ("POST", "/v5/pins")]


async def stored(db: Path, job_id: str) -> Job:
    """The job as the database holds it (the daemon is not running)."""
    store = await Store.open(db)
    try:
        return await store.get_job(job_id, with_history=True)
    finally:
        await store.close()


async def schedule_and_catch_in_flight(port: int, count: int) -> tuple[list[str], str]:
    """Create account acme, schedule *count* pins due in half a second, and return their ids
    and the id of the first one that goes SUBMITTED (its request is then on its way)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        accounts = account_pb2_grpc.AccountServiceStub(channel)
        jobs = jobs_stub(channel)
        await accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="acme",
                account=account_pb2.Account(
                    access_token="pina_e2e_access", refresh_token="pinr_e2e_refresh"
                ),
            )
        )
        due = datetime.now(UTC) + timedelta(seconds=0.5)
        reqs = []
        for i in range(count):
            req = scheduler_pb2.SchedulePinRequest(
                request_id=f"shutdown-{i}",
                account_id="acme",
                pin=job_pb2.Pin(
                    board_id="1001",
                    title=f"pin {i}",
                    media_source=job_pb2.MediaSource(
                        image_url=job_pb2.ImageUrl(url=f"https://example.com/{i}.jpg")
                    ),
                ),
            )
            req.scheduled_at.FromDatetime(due)
            reqs.append(req)
        batch = await jobs.BatchSchedulePins(scheduler_pb2.BatchSchedulePinsRequest(requests=reqs))
        ids = [j.id for j in batch.jobs]
        watch = jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(job_ids=ids, states=[J.STATE_SUBMITTED])
        )
        event = await watch.read()
        watch.cancel()
        assert isinstance(event, job_pb2.JobEvent)
        return ids, event.job_id


async def restart_until(
    db: Path, base_url: str, job_ids: list[str], env: dict[str, str]
) -> tuple[Proc, dict[str, job_pb2.Job]]:
    """Start the daemon again and follow its jobs until each is DELIVERED."""
    daemon, port = await start_daemon(db, base_url, env=env)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        jobs = jobs_stub(channel)
        watch = jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(
                job_ids=job_ids, states=[J.STATE_DELIVERED], since_sequence=0
            )
        )
        delivered: set[str] = set()
        while delivered != set(job_ids):
            event = await watch.read()
            assert isinstance(event, job_pb2.JobEvent)
            delivered.add(event.job_id)
        watch.cancel()
        got = {i: await jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=i)) for i in job_ids}
    return daemon, got


async def test_sigterm_lets_the_in_flight_request_finish_and_takes_no_new_work(
    tmp_path: Path,
) -> None:
    """SIGTERM while a slow create is in flight: the request completes within the grace period
    and its job is DELIVERED; the account's next job is not sent (it goes out after the
    restart), and nothing is published twice."""
    sandbox, base = await start_sandbox()
    db = tmp_path / "shutdown.db"
    env = {"PINSCHED_SHUTDOWN_GRACE_S": "10", "PINSCHED_REQUEST_TIMEOUT_S": "10"}
    await admin(base, "POST", "/faults", {"kind": "latency", "latency_ms": 1500, "times": 1})
    daemon, port = await start_daemon(db, base, env=env)
    try:
        ids, in_flight = await schedule_and_catch_in_flight(port, 2)
        waiting = next(i for i in ids if i != in_flight)
        started = time.monotonic()
        assert await daemon.terminate() == 0
        assert time.monotonic() - started < 10
        done = await stored(db, in_flight)
        assert done.state is JobState.DELIVERED
        assert done.attempts == 1
        assert (await stored(db, waiting)).state in (JobState.QUEUED, JobState.PENDING)
        pins = await sandbox_pins(base)
        assert [p["id"] for p in pins] == [done.pinterest_pin_id]
        assert await pin_posts(base) == [201]

        daemon, got = await restart_until(db, base, ids, env)
        assert got[in_flight].pinterest_pin_id == done.pinterest_pin_id
        assert got[waiting].attempts == 1
        assert len(await sandbox_pins(base)) == 2
        assert await pin_posts(base) == [201, 201]
    finally:
        await daemon.terminate()
        await sandbox.terminate()


async def test_grace_shorter_than_the_request_leaves_it_submitted_then_reconciled(
    tmp_path: Path,
) -> None:
    """With a grace period shorter than the sandbox's latency the job stays SUBMITTED; the next
    start looks for its pin before retrying, and exactly one pin exists in the end."""
    sandbox, base = await start_sandbox()
    db = tmp_path / "shutdown.db"
    env = {"PINSCHED_SHUTDOWN_GRACE_S": "0.2", "PINSCHED_REQUEST_TIMEOUT_S": "3"}
    await admin(base, "POST", "/faults", {"kind": "latency", "latency_ms": 1500, "times": 1})
    daemon, port = await start_daemon(db, base, env=env)
    try:
        (job_id,), _ = await schedule_and_catch_in_flight(port, 1)
        assert await daemon.terminate() == 0
        left = await stored(db, job_id)
        assert left.state is JobState.SUBMITTED
        assert left.attempts == 1

        daemon, got = await restart_until(db, base, [job_id], env)
        job = got[job_id]
        pins = await sandbox_pins(base)
        assert [p["id"] for p in pins] == [job.pinterest_pin_id]
        after_restart = [h for h in job.history if h.time.ToDatetime(tzinfo=UTC) > left.updated_at]
        assert after_restart[0].reason.startswith(("reconciled", "outcome unknown"))
    finally:
        await daemon.terminate()
        await sandbox.terminate()


async def test_sigterm_during_a_hung_request_restart_claims_the_pin(tmp_path: Path) -> None:
    """The pin is created but the answer hangs past the grace period: the job is left
    SUBMITTED, and the next start finds the pin on the board and claims it without posting
    again."""
    sandbox, base = await start_sandbox()
    db = tmp_path / "shutdown.db"
    env = {"PINSCHED_SHUTDOWN_GRACE_S": "0.5", "PINSCHED_REQUEST_TIMEOUT_S": "30"}
    await admin(
        base, "POST", "/faults", {"kind": "lost_response", "mode": "hang", "hold_s": 30, "times": 1}
    )
    daemon, port = await start_daemon(db, base, env=env)
    try:
        (job_id,), _ = await schedule_and_catch_in_flight(port, 1)
        assert await daemon.terminate() == 0
        assert (await stored(db, job_id)).state is JobState.SUBMITTED
        (pin,) = await sandbox_pins(base)

        daemon, got = await restart_until(db, base, [job_id], env)
        job = got[job_id]
        assert job.pinterest_pin_id == pin["id"]
        assert job.attempts == 1
        assert job.history[-1].reason == "reconciled: the pin was found on the board"
        assert await pin_posts(base) == [0]
        assert len(await sandbox_pins(base)) == 1
    finally:
        await daemon.terminate()
        await sandbox.terminate()
