"""AsyncClient and the `pinsched` CLI against the real daemon in-process (sandbox as Pinterest)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from pinsched.app import Daemon
from pinsched.cli.main import main
from pinsched.v1 import account_pb2, job_pb2
from pinsched_client import AsyncClient, error_details, pin, schedule_request
from tests.conftest import ACCESS, BOARD, REFRESH

J = job_pb2.Job


async def _started(make_daemon: Callable[..., Daemon], **overrides: str) -> Daemon:
    daemon = make_daemon(**overrides)
    await daemon.start()
    return daemon


@pytest.fixture
async def target(make_daemon: Callable[..., Daemon]) -> AsyncIterator[str]:
    daemon = await _started(make_daemon)
    try:
        yield f"127.0.0.1:{daemon.port}"
    finally:
        await daemon.stop()


async def _account(client: AsyncClient) -> None:
    account = account_pb2.Account(display_name="Acme", access_token=ACCESS, refresh_token=REFRESH)
    await client.create_account("acme", account)


async def test_schedule_watch_and_get_until_delivered(target: str) -> None:
    """A pin scheduled through the client is followed on the watch stream to DELIVERED."""
    async with AsyncClient(target) as client:
        await _account(client)
        request = schedule_request(
            "acme",
            pin(BOARD, title="Hello", image_url="https://e.com/a.jpg"),
            scheduled_at=datetime.now(UTC),
        )
        job = await client.schedule_pin(request)
        assert job.state == J.STATE_PENDING
        assert job.request_id == request.request_id
        again = await client.schedule_pin(request)  # same request_id: the same job
        assert again.id == job.id

        async def until_delivered() -> list[int]:
            states: list[int] = []
            async for event in client.watch(job_ids=[job.id], since_sequence=0):
                states.append(event.to_state)
                if event.to_state == J.STATE_DELIVERED:
                    return states
            return states

        states = await asyncio.wait_for(until_delivered(), 15)
        assert states[0] == J.STATE_PENDING
        assert states[-1] == J.STATE_DELIVERED
        delivered = await client.get_job(job.id)
        assert delivered.pinterest_pin_id
        assert [t.to_state for t in delivered.history] == states


async def test_iter_jobs_walks_every_page(target: str) -> None:
    """iter_jobs follows next_page_token until the last page."""
    async with AsyncClient(target) as client:
        await _account(client)
        for n in range(5):
            request = schedule_request(
                "acme",
                pin(BOARD, title=f"p{n}", image_url="https://e.com/a.jpg"),
                scheduled_at=datetime.now(UTC) + timedelta(hours=1),
            )
            await client.schedule_pin(request)
        first = await client.list_jobs(account_id="acme", page_size=2)
        assert len(first.jobs) == 2
        assert first.next_page_token
        titles = [job.pin.title async for job in client.iter_jobs(account_id="acme", page_size=2)]
        assert sorted(titles) == [f"p{n}" for n in range(5)]
        accounts = [a.id async for a in client.iter_accounts()]
        assert accounts == ["acme"]


async def test_bad_request_details_reach_the_client(target: str) -> None:
    """INVALID_ARGUMENT from the daemon decodes into field violations naming each bad field."""
    async with AsyncClient(target) as client:
        await _account(client)
        request = schedule_request(
            "acme",
            pin("abc", title="x" * 101, image_url="https://e.com/a.jpg"),
            scheduled_at=datetime.now(UTC) + timedelta(hours=1),
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.schedule_pin(request)
    details = error_details(caught.value)
    assert details.exit_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    fields = {v.field for v in details.field_violations}
    assert {"pin.board_id", "pin.title"} <= fields


async def test_api_token_is_sent_as_bearer(make_daemon: Callable[..., Daemon]) -> None:
    """With an API token configured, calls without it are UNAUTHENTICATED and calls with it pass."""
    daemon = await _started(make_daemon, api_token="tok-secret")
    target = f"127.0.0.1:{daemon.port}"
    try:
        async with AsyncClient(target) as anonymous:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await anonymous.list_accounts()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        async with AsyncClient(target, api_token="tok-secret") as client:
            assert not (await client.list_accounts()).accounts
    finally:
        await daemon.stop()


async def test_cli_exit_code_is_the_grpc_status(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed call exits with its numeric gRPC status and prints the message on stderr."""
    code = await asyncio.to_thread(main, ["get", "no-such-job", "--target", target])
    assert code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "NOT_FOUND" in capsys.readouterr().err


async def test_cli_prints_field_violations(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    """INVALID_ARGUMENT exits 3 and lists every field violation once, named by its flag."""
    argv = ["accounts", "create", "acme", "--access-token", ACCESS, "--target", target]
    assert await asyncio.to_thread(main, argv) == 0
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    argv = ["schedule", "--account", "acme", "--board", "abc", "--title", "x" * 101]
    argv += ["--image-url", "https://e.com/a.jpg", "--at", at, "--target", target]
    capsys.readouterr()
    assert await asyncio.to_thread(main, argv) == 3
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err
    assert err.startswith("INVALID_ARGUMENT: 2 invalid fields\n")
    assert "\n  --board: must be a Pinterest id" in err
    assert "\n  --title: at most 100 characters" in err
    assert err.count("at most 100 characters") == 1


async def test_cli_bad_account_routing_is_refused_naming_the_field(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`accounts create --ad-account-id 12a --api-base ftp://…` exits 3 naming both fields;
    `accounts get` then shows the account's Pinterest details."""
    argv = [
        "accounts",
        "create",
        "acme",
        "--access-token",
        ACCESS,
        "--ad-account-id",
        "12a",
        "--api-base",
        "ftp://example.com/v5",
        "--target",
        target,
    ]
    assert await asyncio.to_thread(main, argv) == 3
    err = capsys.readouterr().err
    assert "  account.ad_account_id:" in err
    assert "  account.api_base:" in err
    argv = ["accounts", "create", "acme", "--access-token", ACCESS, "--target", target]
    assert await asyncio.to_thread(main, argv) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["accounts", "get", "acme", "--target", target]) == 0
    out = capsys.readouterr().out
    assert "access token expires:" in out
    assert "api base: (daemon's)" in out


async def test_cli_schedule_json_round_trip(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`schedule --json` prints the Job with proto field names; `get --json` finds it again."""
    assert (
        await asyncio.to_thread(
            main, ["accounts", "create", "acme", "--access-token", ACCESS, "--target", target]
        )
        == 0
    )
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    argv = ["schedule", "--account", "acme", "--board", BOARD, "--title", "Hi", "--at", at]
    argv += ["--image-url", "https://e.com/a.jpg", "--window", "30m", "--json", "--target", target]
    capsys.readouterr()
    assert await asyncio.to_thread(main, argv) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["state"] == "STATE_PENDING"
    assert job["delivery_window"] == "1800s"
    assert job["request_id"]
    assert await asyncio.to_thread(main, ["get", job["id"], "--json", "--target", target]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == job["id"]


async def test_cli_update_and_cancel(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`update` changes only the flags given (compare-and-set on the version); `cancel` cancels."""
    async with AsyncClient(target) as client:
        await _account(client)
        request = schedule_request(
            "acme",
            pin(BOARD, title="Before", description="kept", image_url="https://e.com/a.jpg"),
            scheduled_at=datetime.now(UTC) + timedelta(hours=1),
        )
        job = await client.schedule_pin(request)
        argv = ["update", job.id, "--title", "After", "--window", "1h", "--target", target]
        argv += ["--expected-version", str(job.version)]
        assert await asyncio.to_thread(main, argv) == 0
        updated = await client.get_job(job.id)
        assert (updated.pin.title, updated.pin.description) == ("After", "kept")
        assert updated.delivery_window.seconds == 3600
        stale = ["update", job.id, "--title", "X", "--expected-version", str(job.version)]
        capsys.readouterr()
        assert await asyncio.to_thread(main, [*stale, "--target", target]) == 10  # ABORTED
        assert "ABORTED" in capsys.readouterr().err
        assert await asyncio.to_thread(main, ["cancel", job.id, "--target", target]) == 0
        assert (await client.get_job(job.id)).state == J.STATE_CANCELLED
