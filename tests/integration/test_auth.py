"""OAuth in delivery (DESIGN §6, 401 row): refresh on 401 with the rotated refresh token stored,
proactive refresh, NEEDS_REAUTH with the account's other jobs held, and new credentials through
UpdateAccount releasing them — against the sandbox's real token endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from pinsched.app import Daemon
from pinsched.sandbox import FaultRule, RequestRecord, Sandbox
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, REFRESH, Api, soon
from tests.integration.test_delivery import make_fast, moves, posts, schedule

__all__ = ["make_fast"]  # fixtures used here


@pytest.fixture
async def fast(make_fast: Callable[..., Daemon]) -> AsyncIterator[Api]:
    """Like test_delivery's `fast`, without the token keeper: these tests are about the refreshes
    that publishing itself asks for (the keeper has its own tests in test_tokens.py)."""
    api = await Api.open(make_fast(token_keeper=False))
    try:
        await api.create_account()
        yield api
    finally:
        await api.close()


J = job_pb2.Job
E = job_pb2.JobError
A = account_pb2.Account


async def failed_or_held(api: Api, job_id: str) -> job_pb2.Job:
    """Wait until the job is FAILED or held (sent back from QUEUED to PENDING)."""
    await api.until(
        job_id,
        lambda e: (
            e.to_state == J.STATE_FAILED
            or (e.from_state, e.to_state) == (J.STATE_QUEUED, J.STATE_PENDING)
        ),
    )
    return await api.get(job_id)


def token_posts(sandbox: Sandbox) -> list[RequestRecord]:
    return [r for r in sandbox.requests if r.path == "/v5/oauth/token"]


async def stored_tokens(api: Api) -> tuple[str, str, datetime | None]:
    """The account's tokens and expiry as the daemon stored them (never returned by the API)."""
    account = await api.daemon.store.get_account("acme")
    return account.access_token, account.refresh_token, account.access_expires_at


async def new_credentials(api: Api, sandbox: Sandbox) -> None:
    """The user authorises again: new tokens in the sandbox, given to UpdateAccount."""
    sandbox.add_user("acme", access_token="pina_second_0002", refresh_token="pinr_second_0002")
    updated = await api.update_account(
        A(id="acme", access_token="pina_second_0002", refresh_token="pinr_second_0002"),
        "access_token",
        "refresh_token",
    )
    assert updated.state == A.STATE_ACTIVE


async def test_401_refreshes_once_and_stores_the_rotated_refresh_token(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """An expired access token gets a 401, one refresh-token grant, and the retry delivers
    without counting an attempt; the rotated refresh token is stored, so a second expiry is
    refreshed too (the first refresh token no longer works)."""
    sandbox.expire_access_token(ACCESS)
    first = await fast.reach((await schedule(fast, title="one")).id, J.STATE_DELIVERED)
    assert first.attempts == 1
    assert [r.status for r in posts(sandbox)] == [401, 201]
    assert [r.status for r in token_posts(sandbox)] == [200]
    retry = next(h for h in first.history if h.to_state == J.STATE_RETRYING)
    assert (retry.error.category, retry.error.http_status) == (E.CATEGORY_AUTH, 401)
    access, refresh, expires = await stored_tokens(fast)
    assert access != ACCESS
    assert refresh != REFRESH
    assert set(sandbox.state.refresh_tokens) == {refresh}  # the one the sandbox rotated to
    assert expires is not None
    assert expires - datetime.now(UTC) > timedelta(days=29)

    sandbox.expire_access_token(access)
    second = await fast.reach((await schedule(fast, title="two")).id, J.STATE_DELIVERED)
    assert second.attempts == 1
    assert [r.status for r in token_posts(sandbox)] == [200, 200]
    access2, refresh2, _ = await stored_tokens(fast)
    assert (access2, refresh2) != (access, refresh)
    assert set(sandbox.state.refresh_tokens) == {refresh2}
    assert [p["title"] for p in sandbox.pins()] == ["one", "two"]
    assert fast.daemon.accounts.refreshes == 2


async def test_refused_refresh_fails_the_job_and_holds_the_accounts_other_jobs(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """A 401 whose refresh is refused: the job is FAILED (auth), the account NEEDS_REAUTH, its
    other job is held PENDING without being sent; new credentials through UpdateAccount deliver
    both, each once."""
    sandbox.expire_access_token(ACCESS)
    sandbox.revoke_refresh_token(REFRESH)
    at = soon(0.1)
    batch = await fast.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(
            requests=[fast.pin_request(at=at, title=t) for t in ("a", "b")]
        )
    )
    ids = [j.id for j in batch.jobs]
    settled = [await failed_or_held(fast, i) for i in ids]
    failed, other = sorted(settled, key=lambda j: j.state != J.STATE_FAILED)  # either went first
    assert (failed.state, other.state) == (J.STATE_FAILED, J.STATE_PENDING)
    assert failed.last_error.category == E.CATEGORY_AUTH
    assert failed.last_error.message.startswith("token refresh refused: Invalid refresh token")
    assert not failed.last_error.retryable
    assert ("STATE_QUEUED", "STATE_PENDING") in moves(other)
    assert other.history[-1].reason == "held: account cannot publish (NEEDS_REAUTH)"
    account = await fast.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert account.state == A.STATE_NEEDS_REAUTH
    assert [r.status for r in posts(sandbox)] == [401]  # the held job was never sent
    assert [r.status for r in token_posts(sandbox)] == [400]

    await new_credentials(fast, sandbox)
    got = [await fast.reach(i, J.STATE_DELIVERED) for i in ids]
    assert [g.attempts for g in got] == [1, 1]
    assert sorted(p["title"] for p in sandbox.pins()) == ["a", "b"]
    assert [r.status for r in posts(sandbox)] == [401, 201, 201]
    requeued = next(
        h for h in (await fast.get(failed.id)).history if h.from_state == J.STATE_FAILED
    )
    assert (requeued.to_state, requeued.reason) == (J.STATE_PENDING, "account re-authorised")


async def test_retry_job_on_an_auth_failed_job_waits_for_new_credentials(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """RetryJob puts a FAILED job back to PENDING, but while the account needs re-auth it is
    held, not sent; new credentials deliver it once."""
    sandbox.expire_access_token(ACCESS)
    sandbox.revoke_refresh_token(REFRESH)
    job = await schedule(fast)
    await fast.reach(job.id, J.STATE_FAILED)
    again = await fast.jobs.RetryJob(scheduler_pb2.RetryJobRequest(job_id=job.id))
    assert (again.state, again.attempts) == (J.STATE_PENDING, 0)
    await new_credentials(fast, sandbox)
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert got.attempts == 1
    assert [r.status for r in posts(sandbox)] == [401, 201]  # nothing sent before the update


async def test_a_fresh_token_refused_again_needs_reauth(fast: Api, sandbox: Sandbox) -> None:
    """If the token obtained by the refresh is refused too, the account is NEEDS_REAUTH and the
    job FAILED (no refresh loop); new credentials deliver it."""
    sandbox.add_fault(FaultRule(kind="auth", times=2))
    job = await schedule(fast)
    failed = await fast.reach(job.id, J.STATE_FAILED)
    assert [r.status for r in posts(sandbox)] == [401, 401]
    assert [r.status for r in token_posts(sandbox)] == [200]
    assert failed.last_error.message.startswith("a freshly refreshed access token was refused")
    account = await fast.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert account.state == A.STATE_NEEDS_REAUTH
    await new_credentials(fast, sandbox)
    assert (await fast.reach(job.id, J.STATE_DELIVERED)).attempts == 1


async def test_token_is_refreshed_before_it_expires(fast: Api, sandbox: Sandbox) -> None:
    """An access token expiring within a day is refreshed before the pin is sent: no 401."""
    expiry = A(id="acme")
    expiry.access_token_expire_time.FromDatetime(datetime.now(UTC) + timedelta(hours=2))
    await fast.update_account(expiry, "access_token_expire_time")
    job = await schedule(fast)
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert got.attempts == 1
    assert [r.status for r in posts(sandbox)] == [201]
    token_call = token_posts(sandbox)
    assert [r.status for r in token_call] == [200]
    assert token_call[0].time <= posts(sandbox)[0].time
    access, refresh, expires = await stored_tokens(fast)
    assert (access, refresh) != (ACCESS, REFRESH)
    assert expires is not None
    assert expires - datetime.now(UTC) > timedelta(days=29)


async def test_refused_proactive_refresh_keeps_publishing_with_the_valid_token(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """When the early refresh is refused but the access token still works, pins keep going out
    with it (the account is not marked NEEDS_REAUTH), and the refresh is not retried per pin."""
    sandbox.revoke_refresh_token(REFRESH)
    expiry = A(id="acme")
    expiry.access_token_expire_time.FromDatetime(datetime.now(UTC) + timedelta(hours=2))
    await fast.update_account(expiry, "access_token_expire_time")
    for title in ("one", "two"):
        got = await fast.reach((await schedule(fast, title=title)).id, J.STATE_DELIVERED)
        assert got.attempts == 1
    assert [r.status for r in token_posts(sandbox)] == [400]
    account = await fast.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert account.state == A.STATE_ACTIVE
    assert (await stored_tokens(fast))[0] == ACCESS
