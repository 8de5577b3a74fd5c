"""Credentials are checked when given and the new Account fields are validated:
CreateAccount/UpdateAccount against the sandbox (or no Pinterest at all) over a real gRPC
channel, on a real SQLite file."""

from __future__ import annotations

import socket
from collections.abc import Callable

import grpc
import pytest

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched.v1 import account_pb2
from tests.conftest import ACCESS, REFRESH, Api
from tests.integration.test_daemon import bad_request
from tests.integration.test_delivery import make_fast

__all__ = ["make_fast"]

A = account_pb2.Account


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def create(api: Api, account_id: str = "acme", **fields: object) -> A:
    account = A(access_token=ACCESS, refresh_token=REFRESH)
    for name, value in fields.items():
        setattr(account, name, value)
    return await api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(account_id=account_id, account=account)
    )


async def test_get_account_shows_what_pinterest_said_never_the_tokens(api: Api) -> None:
    """A verified account shows its Pinterest username, account type, when it was verified and
    when its tokens expire; never a token."""
    created = await create(api)
    assert (created.username, created.account_type) == ("acme", "BUSINESS")
    assert created.HasField("last_verified_time")
    assert created.HasField("access_token_expiry")
    got = await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert got.username == "acme"
    assert ACCESS not in str(got)
    assert REFRESH not in str(got)


async def test_a_refused_token_is_a_clear_error_and_nothing_is_created(
    make_fast: Callable[..., Daemon],
) -> None:
    """A token Pinterest refuses, with no way to refresh it, is INVALID_ARGUMENT on
    `account.access_token` quoting Pinterest's answer; the account does not exist after."""
    api = await Api.open(make_fast(pinterest_client_id=None, pinterest_client_secret=None))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(api, access_token="pina_unknown", refresh_token="")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request(err.value) == {
            "account.access_token": (
                "Pinterest refused the access token: Authentication failed. (HTTP 401, code 2)"
            )
        }
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await api.close()


async def test_a_refused_token_that_can_be_refreshed_is_accepted_and_renewed(
    make_fast: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """An expired access token with a working refresh token is accepted; the keeper refreshes
    it at once and the account becomes verified and ACTIVE."""
    sandbox.expire_access_token(ACCESS)
    api = await Api.open(make_fast())
    try:
        created = await create(api)
        assert created.state_reason.startswith("not verified yet: Pinterest refused")
        for _ in range(200):
            got = await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
            if got.HasField("last_verified_time") and got.HasField("refresh_token_expiry"):
                break
            await api.daemon.activity.idle.wait()
        assert got.state == A.STATE_ACTIVE
        assert got.username == "acme"
        assert got.state_reason == ""
    finally:
        await api.close()


async def test_pinterest_unreachable_accepts_the_account_and_says_so(
    make_fast: Callable[..., Daemon],
) -> None:
    """With Pinterest unreachable, CreateAccount answers at once with the account, ACTIVE, its
    `state_reason` saying it is verified in the background."""
    api = await Api.open(
        make_fast(base_url=f"http://127.0.0.1:{closed_port()}/v5", verify_timeout_s=0.5)
    )
    try:
        created = await create(api)
        assert created.state == A.STATE_ACTIVE
        assert created.state_reason.startswith("not verified yet: Pinterest could not be reached")
        assert created.state_reason.endswith("verifying in the background")
        assert not created.HasField("last_verified_time")
    finally:
        await api.close()


BAD_FIELDS = [
    ("ad_account_id", "12a", "must be digits only"),
    ("ad_account_id", "123\n", "must be digits only"),
    ("ad_account_id", "1" * 19, "at most 18 digits, got 19"),
    ("api_base", "ftp://example.com/v5", "must be an absolute http(s) URL"),
    ("api_base", "https://169.254.169.254/v5", "refused: "),
    ("api_base", "https://api.example.com/v5?x=1", "must not have a query or fragment"),
    ("api_base", "https://", "must name a host"),
    ("api_base", "https://user:pw@api.example.com/v5", "must not carry credentials"),
]


@pytest.mark.parametrize(
    ("field", "value", "problem"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v, _ in BAD_FIELDS]
)
async def test_bad_routing_fields_are_refused_naming_the_field(
    api: Api, field: str, value: str, problem: str
) -> None:
    """A bad `ad_account_id` or `api_base` is INVALID_ARGUMENT naming the field, at create and
    at update; nothing changes."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(api, **{field: value})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert problem in bad_request(err.value)[f"account.{field}"]
    await create(api)
    update = A(id="acme")
    setattr(update, field, value)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.update_account(update, field)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert problem in bad_request(err.value)[f"account.{field}"]
    got = await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert getattr(got, field) == ""


async def test_routing_fields_are_updatable_and_clearable(api: Api, sandbox: Sandbox) -> None:
    """`ad_account_id` and `api_base` are in the update_mask allow-list; "" clears them; output
    fields are not."""
    await create(api)
    got = await api.update_account(
        A(id="acme", ad_account_id="123456789012345678", api_base=sandbox.base_url),
        "ad_account_id",
        "api_base",
    )
    assert (got.ad_account_id, got.api_base) == ("123456789012345678", sandbox.base_url)
    cleared = await api.update_account(A(id="acme"), "ad_account_id", "api_base")
    assert (cleared.ad_account_id, cleared.api_base) == ("", "")
    for path in ("username", "last_verified_time", "refresh_token_expiry"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.update_account(A(id="acme"), path)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "cannot be updated" in bad_request(err.value)["update_mask"]


async def test_new_credentials_are_verified_too(api: Api, sandbox: Sandbox) -> None:
    """UpdateAccount with a token Pinterest refuses and no refresh token is INVALID_ARGUMENT; a
    good one is verified and stored."""
    await create(api)
    sandbox.add_user("acme", access_token="pina_second")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.update_account(
            A(id="acme", access_token="pina_nobody", refresh_token=""),
            "access_token",
            "refresh_token",
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Pinterest refused the access token" in bad_request(err.value)["account.access_token"]
    ok = await api.update_account(
        A(id="acme", access_token="pina_second", refresh_token=""), "access_token", "refresh_token"
    )
    assert ok.username == "acme"
    assert (await api.daemon.store.get_account("acme")).access_token == "pina_second"
