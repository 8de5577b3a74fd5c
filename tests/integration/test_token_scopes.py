"""Token scopes: the `scope` of Pinterest's token responses is recorded on the account; the
checks of `validate_only` and of the look ahead name a missing `pins:write` / `boards:read`, and
say so when Pinterest never told the scopes (no error)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import grpc
import pytest

from pinsched.pinterest.oauth import parse_scopes
from pinsched.sandbox import Sandbox
from pinsched.v1 import account_pb2, scheduler_pb2
from tests.conftest import ACCESS, REFRESH, Api, soon
from tests.integration.imageserver import serve_images


@pytest.fixture
async def images() -> AsyncIterator[str]:
    """An image server on 127.0.0.1 (see `tests.integration.imageserver`)."""
    async with serve_images() as base:
        yield base


def _narrow(sandbox: Sandbox, scope: str) -> None:
    """The sandbox grants *scope* to the test's refresh token (and the tokens it rotates to)."""
    tokens = sandbox.state.refresh_tokens
    tokens[REFRESH] = dataclasses.replace(tokens[REFRESH], scope=scope)


async def _refreshed(api: Api) -> None:
    """The account's tokens refreshed once (or already, by the token keeper)."""
    account = await api.daemon.store.get_account("acme")
    await api.daemon.accounts.refresh(account, reason="test")


def _request(api: Api, images: str, seconds: float = 3600) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=soon(seconds))
    req.pin.media_source.image_url.url = images + "/a.jpg"
    return req


def test_the_scope_field_is_read_as_pinterest_writes_it() -> None:
    """Comma- or space-separated scopes are read (sorted, once each); no `scope` is unknown."""
    assert parse_scopes("pins:write,boards:read") == ("boards:read", "pins:write")
    assert parse_scopes("pins:write boards:read pins:write") == ("boards:read", "pins:write")
    assert parse_scopes("") == ()
    assert parse_scopes(None) is None


async def test_granted_scopes_are_recorded_from_the_token_response(
    api: Api, sandbox: Sandbox
) -> None:
    """A token refresh records the scopes Pinterest granted in the database."""
    _narrow(sandbox, "boards:read,pins:write,user_accounts:read")
    await api.create_account()
    await _refreshed(api)
    account = await api.daemon.store.get_account("acme")
    assert account.scopes == ("boards:read", "pins:write", "user_accounts:read")


@pytest.mark.parametrize(
    ("scope", "missing"),
    [
        ("boards:read,pins:read", "scope pins:write"),
        ("pins:read", "scopes pins:write, boards:read"),
    ],
)
async def test_validate_only_names_a_missing_scope(
    api: Api, sandbox: Sandbox, images: str, scope: str, missing: str
) -> None:
    """A token without pins:write or boards:read fails validate_only with FAILED_PRECONDITION
    naming account_id and each missing scope."""
    _narrow(sandbox, scope)
    await api.create_account()
    await _refreshed(api)
    req = _request(api, images)
    req.validate_only = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.SchedulePin(req)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert f"account_id: the account's token lacks the {missing} " in (err.value.details() or "")


async def test_unknown_scopes_are_stated_as_unchecked(api: Api, images: str) -> None:
    """An account whose tokens were never refreshed (scopes never told) passes validate_only,
    and the answered job's history says the scopes were not checked."""
    await api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(
            account_id="acme", account=account_pb2.Account(access_token=ACCESS)
        )
    )
    assert (await api.daemon.store.get_account("acme")).scopes is None
    req = _request(api, images)
    req.validate_only = True
    job = await api.jobs.SchedulePin(req)
    assert job.id == ""
    reasons = [h.reason for h in job.history]
    assert any("not checked: account_id: the token's scopes are not checked" in r for r in reasons)


async def test_the_look_ahead_names_a_missing_scope(
    api: Api, sandbox: Sandbox, images: str
) -> None:
    """A PENDING job inside the look-ahead whose account's token lacks pins:write gets a
    `job.at_risk` note naming the scope."""
    _narrow(sandbox, "boards:read,pins:read")
    await api.create_account()
    await _refreshed(api)
    job = await api.jobs.SchedulePin(_request(api, images, seconds=600))
    assert await api.daemon.at_risk.run_pass() == 1
    stored = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    risks = [h.reason for h in stored.history if h.reason.startswith("at risk: ")]
    assert len(risks) == 1
    assert "account_id: the account's token lacks the scope pins:write" in risks[0]
