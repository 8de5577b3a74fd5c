"""Tokens that never lapse and a rotated refresh token that is never lost,
against the sandbox's real token endpoint, on a real SQLite file.

The long runs use one FakeClock for the daemon and the sandbox, so days of token lifetime pass in
moments: the sandbox expires tokens on that clock exactly as it would on a real one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from pinsched.app import Daemon
from pinsched.sandbox import FaultRule, Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2
from tests.conftest import ACCESS, REFRESH, Api, start_sandbox
from tests.integration.test_auth import token_posts
from tests.integration.test_delivery import make_fast, posts, schedule

__all__ = ["make_fast"]

J = job_pb2.Job
A = account_pb2.Account
#: Makes the store refuse any write that changes an account's refresh token, as a full disk
#: would: SQLite itself fails the statement.
REFUSE_TOKEN_WRITES = """
CREATE TEMP TRIGGER refuse_token_writes BEFORE UPDATE OF refresh_token ON accounts
WHEN NEW.refresh_token != OLD.refresh_token
BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END
"""


async def state_of(api: Api, account_id: str = "acme") -> int:
    got = await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id=account_id))
    return int(got.state)


@pytest.fixture
async def no_keeper(make_fast: Callable[..., Daemon]) -> AsyncIterator[Api]:
    """A fast daemon whose only refreshes are the ones publishing asks for."""
    api = await Api.open(make_fast(token_keeper=False))
    try:
        await api.create_account()
        yield api
    finally:
        await api.close()


@pytest.mark.sqlite_only  # makes SQLite refuse writes (a trigger on the file)
async def test_a_rotated_refresh_token_survives_a_store_that_refuses_it(
    no_keeper: Api, sandbox: Sandbox
) -> None:
    """When the store refuses the rotated pair after a 401 and a granted refresh, the new pair
    is used from memory (the pin is delivered, the account stays ACTIVE, the spent refresh token
    is never sent again) and stored once the store accepts writes again."""
    api = no_keeper
    store = api.daemon.store
    await store._writer.execute(REFUSE_TOKEN_WRITES)
    sandbox.expire_access_token(ACCESS)
    first = await api.reach(
        (await schedule(api, title="one")).id, J.STATE_DELIVERED, J.STATE_FAILED
    )
    assert first.state == J.STATE_DELIVERED
    assert [r.status for r in posts(sandbox)] == [401, 201]
    assert [r.status for r in token_posts(sandbox)] == [200]
    assert await state_of(api) == A.STATE_ACTIVE
    (live_refresh,) = sandbox.state.refresh_tokens
    assert (await store.get_account("acme")).refresh_token == REFRESH  # not stored yet
    assert api.daemon.accounts.pending == {"acme"}

    # Still refused: a second expiry is refreshed with the in-memory token, not the spent one.
    live_access = (await api.daemon.accounts.get("acme")).access_token
    sandbox.expire_access_token(live_access)
    second = await api.reach(
        (await schedule(api, title="two")).id, J.STATE_DELIVERED, J.STATE_FAILED
    )
    assert second.state == J.STATE_DELIVERED
    assert [r.status for r in token_posts(sandbox)] == [200, 200]
    assert live_refresh not in sandbox.state.refresh_tokens

    await store._writer.execute("DROP TRIGGER refuse_token_writes")
    assert await api.daemon.accounts.persist_pending() == 0
    stored = await store.get_account("acme")
    assert {stored.refresh_token} == set(sandbox.state.refresh_tokens)
    assert stored.access_token == (await api.daemon.accounts.get("acme")).access_token


@pytest.mark.sqlite_only  # makes SQLite refuse writes (a trigger on the file)
async def test_a_401_after_an_unstored_refresh_is_a_bounded_failure(
    no_keeper: Api, sandbox: Sandbox
) -> None:
    """A token refused again right after a refresh the store could not keep ends the job FAILED
    and the account NEEDS_REAUTH after one grant: no loop, no second grant with a spent token."""
    api = no_keeper
    await api.daemon.store._writer.execute(REFUSE_TOKEN_WRITES)
    sandbox.add_fault(FaultRule(kind="auth", times=3))
    job = await api.reach((await schedule(api)).id, J.STATE_FAILED, J.STATE_DELIVERED)
    assert job.state == J.STATE_FAILED
    assert [r.status for r in posts(sandbox)] == [401, 401]
    assert [r.status for r in token_posts(sandbox)] == [200]
    assert await state_of(api) == A.STATE_NEEDS_REAUTH
    assert not api.daemon.accounts.can_publish("acme")  # the in-memory tokens keep the mark


class Run:
    """A daemon and a sandbox on one FakeClock, and account `acme` created untouched."""

    def __init__(self, api: Api, sandbox: Sandbox, clock: FakeClock) -> None:
        self.api, self.sandbox, self.clock = api, sandbox, clock

    async def idle(self) -> None:
        await asyncio.wait_for(self.api.daemon.activity.idle.wait(), 10)

    async def advance(self, total_s: float, step_s: float) -> list[str]:
        """Move the clock *total_s* on in steps, letting the daemon finish each; the account
        states seen after every step."""
        states = []
        steps = int(total_s // step_s)
        for _ in range(steps):
            await self.clock.advance(step_s)
            await self.idle()
            states.append((await self.api.daemon.accounts.get("acme")).state.value)
        return states


@pytest.fixture
async def run(
    make_fast: Callable[..., Daemon], request: pytest.FixtureRequest
) -> AsyncIterator[Run]:
    ttl = getattr(request, "param", None) or (30 * 86400, 60 * 86400)
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    sandbox.configure(access_ttl_s=ttl[0], refresh_ttl_s=ttl[1])
    sandbox.add_user("acme", access_token=ACCESS, refresh_token=REFRESH, board_ids=["1001"])
    api = await Api.open(
        make_fast(
            clock, base_url=sandbox.base_url, horizon_days=401, token_refreshes_per_second=1000
        )
    )
    try:
        await api.create_account()
        await asyncio.wait_for(api.daemon.activity.idle.wait(), 10)
        yield Run(api, sandbox, clock)
    finally:
        await api.close()
        await sandbox.stop()


# 400 days of fake time wake every periodic task of the daemon ~100,000 times: ~25 s alone on
# PostgreSQL, several times that on a busy 2-core machine.
@pytest.mark.timeout(600)
async def test_an_untouched_account_publishes_a_pin_400_days_ahead(run: Run) -> None:
    """Over 400 days with 30/60-day tokens and nothing else happening, the keeper refreshes
    about every 15 days; the account is never NEEDS_REAUTH and the pin is delivered."""
    job = await schedule(run.api, at=run.clock.now() + timedelta(days=400))
    states = await run.advance(400 * 86400 + 3600, 86400)
    assert set(states) == {"ACTIVE"}
    got = await run.api.reach(job.id, J.STATE_DELIVERED, timeout_s=5)
    assert got.attempts == 1
    assert [r.status for r in posts(run.sandbox)] == [201]
    grants = [r.status for r in token_posts(run.sandbox)]
    assert set(grants) == {200}
    assert 27 <= len(grants) <= 30  # one at creation, then every ~15 days (jittered earlier)
    account = await run.api.daemon.store.get_account("acme")
    assert account.refresh_token in run.sandbox.state.refresh_tokens


@pytest.mark.parametrize("run", [(30, 90)], indirect=True)
async def test_short_sandbox_lifetimes_keep_the_account_active(run: Run) -> None:
    """With an access token of 30 s and a refresh token of 90 s, a pin due after 150 s is
    delivered and the account stays ACTIVE (refreshed every ~15 s)."""
    job = await schedule(run.api, at=run.clock.now() + timedelta(seconds=150))
    states = await run.advance(160, 1.0)
    assert set(states) == {"ACTIVE"}
    got = await run.api.reach(job.id, J.STATE_DELIVERED, timeout_s=5)
    assert got.attempts == 1
    assert [r.status for r in posts(run.sandbox)] == [201]
    assert 10 <= len(token_posts(run.sandbox)) <= 13
    account = await run.api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert account.state == A.STATE_ACTIVE
    expiry = account.refresh_token_expiry.ToDatetime().replace(tzinfo=run.clock.now().tzinfo)
    assert expiry > run.clock.now()


async def test_without_client_credentials_reauth_is_announced_then_needed(
    make_fast: Callable[..., Daemon],
) -> None:
    """An account that cannot be refreshed gets `account.reauth_soon` 7 days before its access
    token lapses and NEEDS_REAUTH when it has lapsed, each once."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    api = await Api.open(
        make_fast(
            clock, base_url=sandbox.base_url, pinterest_client_id=None, pinterest_client_secret=None
        )
    )
    try:
        await api.create_account()
        await asyncio.wait_for(api.daemon.activity.idle.wait(), 10)
        account = await api.daemon.store.get_account("acme")
        assert account.username == "acme"
        assert account.verified_at is not None
        states = []
        for _ in range(31):
            await clock.advance(86400)
            await asyncio.wait_for(api.daemon.activity.idle.wait(), 10)
            account = await api.daemon.store.get_account("acme")
            states.append((account.state.value, account.reauth_warned_at is not None))
        assert states[21] == ("ACTIVE", False)
        assert states[22] == ("ACTIVE", True)  # day 23: 7 days before day 30
        assert states[-1] == ("NEEDS_REAUTH", True)
        assert "lapsed" in account.state_reason
        assert token_posts(sandbox) == []
    finally:
        await api.close()
        await sandbox.stop()


async def test_refused_client_credentials_hold_every_account_once(
    make_fast: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """A 401 at the token endpoint (the app's own credentials) holds the accounts instead of
    marking them NEEDS_REAUTH, turns the `pinsched.pinterest` health check NOT_SERVING, and
    the job is held (not failed, not counted, not sent again)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    api = await Api.open(make_fast(pinterest_client_secret="wrong-secret", token_keeper=False))
    try:
        await api.create_account()
        sandbox.add_user(
            "beta", access_token="pina_beta", refresh_token="pinr_beta", board_ids=["1003"]
        )
        await api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="beta", account=A(access_token="pina_beta", refresh_token="pinr_beta")
            )
        )
        sandbox.expire_access_token(ACCESS)
        job = await schedule(api)
        held = await api.reach(job.id, J.STATE_RETRYING, timeout_s=5)
        assert held.history[-1].reason == (
            "held: Pinterest refuses the app's client credentials (attempt not counted)"
        )
        assert held.attempts == 0
        # The retry is due at once; once the daemon is idle the scheduler has held it.
        await asyncio.wait_for(api.daemon.activity.idle.wait(), 5)
        assert (await api.get(job.id)).state == J.STATE_RETRYING
        assert [r.status for r in posts(sandbox)] == [401]
        assert [r.status for r in token_posts(sandbox)] == [401]
        assert {await state_of(api, "acme"), await state_of(api, "beta")} == {A.STATE_ACTIVE}
        assert not api.daemon.accounts.can_publish("beta")
        health = health_pb2_grpc.HealthStub(api.channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="pinsched.pinterest"))
        async with asyncio.timeout(5):
            async for answer in watch:
                if answer.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
        watch.cancel()
        assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await api.close()


async def test_code_29_holds_the_account_and_a_new_api_base_releases_it(
    make_fast: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """A Trial app's 403 code 29 puts the account on hold (HELD, Pinterest's answer as the
    reason) and sends the job back, unfailed and not counted; pointing the account at another
    API base (the API sandbox) releases it and the pin lands there."""
    trial = Sandbox()
    await trial.start()
    trial.configure(trial_app=True)
    trial.add_user("acme", access_token=ACCESS, refresh_token=REFRESH, board_ids=["1001"])
    api = await Api.open(make_fast(base_url=trial.base_url, token_keeper=False))
    try:
        await api.create_account()
        job = await schedule(api)
        await api.reach(job.id, J.STATE_RETRYING)  # the account was held just before
        account = await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
        assert account.state == A.STATE_HELD
        assert "Apps with Trial access" in account.state_reason
        got = await api.get(job.id)
        assert got.state in (J.STATE_RETRYING, J.STATE_PENDING)
        assert got.attempts == 0
        await api.update_account(A(id="acme", api_base=sandbox.base_url), "api_base")
        delivered = await api.reach(job.id, J.STATE_DELIVERED)
        assert delivered.attempts == 1
        assert [r.status for r in posts(trial)] == [403]
        assert [r.status for r in posts(sandbox)] == [201]
    finally:
        await api.close()
        await trial.stop()


async def test_ad_account_id_is_sent_on_every_call(no_keeper: Api, sandbox: Sandbox) -> None:
    """After UpdateAccount sets `ad_account_id`, the create (and the verification of new
    credentials) carry it as Pinterest's query parameter."""
    api = no_keeper
    await api.update_account(A(id="acme", ad_account_id="549755885175"), "ad_account_id")
    await api.reach((await schedule(api)).id, J.STATE_DELIVERED)
    (create,) = posts(sandbox)
    assert create.query == "ad_account_id=549755885175"
    got = await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert got.ad_account_id == "549755885175"


async def test_pacer_cool_down_survives_a_restart(
    make_fast: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """A spam block's cool-down is stored: after a restart the account sends nothing until it
    ends."""
    api = await Api.open(make_fast(token_keeper=False))
    await api.create_account()
    sandbox.add_fault(FaultRule(kind="spam", times=1))
    job = await schedule(api)
    await api.reach(job.id, J.STATE_RETRYING)
    blocked = api.daemon.accounts.pacer("acme").pin_delay(api.daemon.clock.monotonic())
    assert blocked > 3600
    await api.close()
    again = await Api.open(make_fast(token_keeper=False))
    try:
        left = again.daemon.accounts.pacer("acme").pin_delay(again.daemon.clock.monotonic())
        assert blocked - 60 < left <= blocked
    finally:
        await again.close()


async def test_rate_limit_headers_slow_the_account_before_a_429(
    make_fast: Callable[..., Daemon],
) -> None:
    """With a sandbox that allows 4 writes a minute and says so in `x-ratelimit-remaining` /
    `x-ratelimit-reset`, six pins due at once are all delivered without a single 429: the
    pacer spreads the remaining writes over the time to the reset."""
    clock = FakeClock()
    sandbox = Sandbox(now=clock.now, write_limit_per_minute=4)
    await sandbox.start()
    sandbox.add_user("acme", access_token=ACCESS, refresh_token=REFRESH, board_ids=["1001"])
    sandbox.set_client("client-1", "client-secret-1")
    api = await Api.open(make_fast(clock, base_url=sandbox.base_url, token_keeper=False))
    try:
        await api.create_account("acme", writes_per_minute=6000)
        jobs = [await schedule(api, title=f"p{i}", at=clock.now()) for i in range(6)]
        for _ in range(240):
            await clock.advance(1.0)
            await asyncio.wait_for(api.daemon.activity.idle.wait(), 10)
        got = [await api.get(j.id) for j in jobs]
        assert {g.state for g in got} == {J.STATE_DELIVERED}
        assert [r.status for r in posts(sandbox)] == [201] * 6
    finally:
        await api.close()
        await sandbox.stop()


async def test_the_keeper_paces_its_calls(make_fast: Callable[..., Daemon]) -> None:
    """Five accounts created at once are verified and refreshed one per second (the keeper's
    `token_refreshes_per_second`), not in the same instant."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    api = await Api.open(
        make_fast(clock, base_url=sandbox.base_url, token_refreshes_per_second=1.0)
    )
    try:
        for i in range(5):
            sandbox.add_user(f"u{i}", access_token=f"pina_{i}", refresh_token=f"pinr_{i}")
            await api.accounts.CreateAccount(
                account_pb2.CreateAccountRequest(
                    account_id=f"a{i}",
                    account=A(access_token=f"pina_{i}", refresh_token=f"pinr_{i}"),
                )
            )
        for _ in range(40):
            await clock.advance(0.25)
            await asyncio.wait_for(api.daemon.activity.idle.wait(), 10)
        grants = token_posts(sandbox)
        assert [r.status for r in grants] == [200] * 5
        gaps = [(b.time - a.time).total_seconds() for a, b in itertools.pairwise(grants)]
        assert min(gaps) >= 0.75
    finally:
        await api.close()
        await sandbox.stop()
