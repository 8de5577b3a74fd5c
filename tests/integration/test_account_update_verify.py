"""UpdateAccount asks Pinterest about a new access token once, even when the account changes
under it while Pinterest answers and the change is decided again (a lost compare-and-set).
A real sandbox over HTTP, a real daemon over gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched.sandbox.faults import FaultRule
from pinsched.v1 import account_pb2
from tests.conftest import ACCESS, BOARD, REFRESH, Api

A = account_pb2.Account


class Arrivals:
    """The sandbox's clock: real time, and an event set whenever a request arrives."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()

    def __call__(self) -> datetime:
        self.arrived.set()
        return datetime.now(UTC)


@pytest.fixture
async def watched() -> AsyncIterator[tuple[Sandbox, Arrivals]]:
    arrivals = Arrivals()
    sb = Sandbox(now=arrivals)
    await sb.start()
    sb.add_user("acme", access_token=ACCESS, refresh_token=REFRESH, board_ids=[BOARD])
    sb.add_user("acme", access_token="pina_second")
    sb.set_client("client-1", "client-secret-1")
    try:
        yield sb, arrivals
    finally:
        await sb.stop()


async def test_a_new_token_is_verified_once_when_the_update_is_decided_again(
    make_daemon: Callable[..., Daemon], watched: tuple[Sandbox, Arrivals]
) -> None:
    """While Pinterest is asked about the new token, another UpdateAccount pauses the account;
    the token change loses its compare-and-set and is applied again on the fresh row, without
    asking Pinterest again: one `GET /user_account`, and both changes are stored."""
    sandbox, arrivals = watched
    api = await Api.open(make_daemon(base_url=sandbox.base_url))
    try:
        await api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="acme",
                account=A(access_token=ACCESS),  # no refresh: no renewals
            )
        )
        before = len(sandbox.requests)
        # Pinterest answers the verification late (once), so the pause below lands first.
        sandbox.add_fault(
            FaultRule(
                kind="latency",
                method="GET",
                path_prefix="/v5/user_account",
                latency_ms=500,
                times=1,
            )
        )
        arrivals.arrived.clear()
        token_change = asyncio.create_task(
            api.update_account(A(id="acme", access_token="pina_second"), "access_token")
        )
        await arrivals.arrived.wait()  # the verification reached Pinterest
        paused = await api.update_account(A(id="acme", paused=True), "paused")
        assert paused.paused
        updated = await token_change
        asked = [r for r in sandbox.requests[before:] if r.path == "/v5/user_account"]
        assert len(asked) == 1, asked
        stored = await api.daemon.store.get_account("acme")
        assert (stored.access_token, stored.paused, updated.username) == (
            "pina_second",
            True,
            "acme",
        )
    finally:
        await api.close()
