"""The bad-input suite, limits part: each input that once gave INTERNAL/UNKNOWN, broke a response
or wedged a job now gets a clear INVALID_ARGUMENT naming the field, or a clamp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import cast

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from pinsched.app import Daemon
from pinsched.ops import limits
from pinsched.pinterest.client import retry_after_s
from pinsched.sandbox import FaultRule, Sandbox
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, Api, soon
from tests.integration.test_daemon import bad_request

J = job_pb2.Job


async def invalid(call: object) -> grpc.aio.AioRpcError:
    """The INVALID_ARGUMENT error *call* ends with (fails the test otherwise)."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return err.value


@pytest.mark.parametrize("offset", [10**12, -(10**12), 2**62, 18 * 3600 + 1])
async def test_huge_utc_offset_is_invalid_argument(api: Api, offset: int) -> None:
    """A `utc_offset` beyond ±18 h (even one that overflows a timedelta) names the field."""
    await api.create_account()
    req = api.pin_request(at=soon(3600))
    req.local_time.year, req.local_time.month, req.local_time.day = 2030, 1, 1
    req.local_time.hours = 12
    req.local_time.utc_offset.seconds = offset
    err = await invalid(api.jobs.SchedulePin(req))
    assert "local_time.utc_offset" in bad_request(err)


async def test_watch_with_too_many_job_ids_is_invalid_argument(api: Api) -> None:
    """More `job_ids` than SQLite can bind (40,000) is INVALID_ARGUMENT on `job_ids`, before any
    query; the limit itself is accepted."""
    call = api.jobs.WatchJobs(
        scheduler_pb2.WatchJobsRequest(job_ids=[f"j{i}" for i in range(40_000)], since_sequence=0)
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "job_ids" in bad_request(err.value)
    ok = api.jobs.WatchJobs(
        scheduler_pb2.WatchJobsRequest(
            job_ids=[f"j{i}" for i in range(limits.MAX_WATCH_JOB_IDS)], since_sequence=0
        )
    )
    await ok.initial_metadata()
    ok.cancel()


async def test_batch_with_thousands_of_violations_stays_compact(api: Api) -> None:
    """A 1,000-item batch where every item is wrong in several fields answers INVALID_ARGUMENT
    listing the first 20 violations and how many more, in metadata a default client accepts."""
    await api.create_account()
    bad = scheduler_pb2.SchedulePinRequest(
        request_id="r" * 200,
        account_id="NOT VALID",
        pin=job_pb2.Pin(
            board_id="x" * 50,
            title="t" * 200,
            description="d" * 900,
            link="ftp://nope",
            alt_text="a" * 600,
            dominant_color="red",
        ),
    )
    err = await invalid(
        api.jobs.BatchSchedulePins(
            scheduler_pb2.BatchSchedulePinsRequest(requests=[bad] * limits.MAX_BATCH)
        )
    )
    metadata = dict(cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata() or ()))
    raw = metadata.get("grpc-status-details-bin")
    assert raw is not None
    assert len(raw) < 6 * 1024
    status = status_pb2.Status.FromString(raw)
    br = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(br)
    assert len(br.field_violations) == limits.MAX_REPORTED_VIOLATIONS + 1
    assert br.field_violations[0].field == "requests[0].request_id"
    assert "more violations" in br.field_violations[-1].description
    assert len(err.details() or "") < 2048
    assert "more (see the details)" in (err.details() or "")


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x08" + b"\xff" * 11])
async def test_malformed_protobuf_is_invalid_argument(api: Api, payload: bytes) -> None:
    """Bytes that are not a valid request message are INVALID_ARGUMENT naming the message
    type, never UNKNOWN with a Python class name."""
    for path in (
        "/pinsched.v1.PinScheduler/SchedulePin",
        "/pinsched.v1.AccountService/CreateAccount",
    ):
        call = api.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        err = await invalid(call(payload, timeout=5))
        assert "is not a valid protobuf pinsched.v1." in (err.details() or "")
        assert "DecodeError" not in (err.details() or "")
    stream = api.channel.unary_stream(
        "/pinsched.v1.PinScheduler/WatchJobs", request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.aio.AioRpcError) as got:
        async for _ in stream(payload, timeout=5):
            pass
    assert got.value.code() == grpc.StatusCode.INVALID_ARGUMENT


BAD_TEXT = [
    ("display_name", "n" * (limits.DISPLAY_NAME_MAX + 1), "at most"),
    ("display_name", "bell\x07", "control characters"),
    ("access_token", "pina_" + "x" * limits.TOKEN_MAX, "at most"),
    ("access_token", "pina_abc\r\nX-Injected: 1", "printable ASCII"),
    ("access_token", "pina abc", "printable ASCII"),
    ("access_token", "pina_\tabc", "printable ASCII"),
    ("access_token", "pina_é", "printable ASCII"),
    ("refresh_token", "pinr_abc\n", "printable ASCII"),
    ("refresh_token", "pinr_" + "x" * limits.TOKEN_MAX, "at most"),
]


@pytest.mark.parametrize(
    ("field", "value", "says"), BAD_TEXT, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_TEXT)]
)
async def test_account_text_rules(api: Api, field: str, value: str, says: str) -> None:
    """CreateAccount and UpdateAccount refuse an over-long display name or token, control
    characters, and whitespace inside tokens, naming `account.<field>`; nothing is stored."""
    acct = account_pb2.Account(display_name="ok", access_token=ACCESS)
    setattr(acct, field, value)
    err = await invalid(
        api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(account_id="acme", account=acct)
        )
    )
    assert says in bad_request(err)[f"account.{field}"]
    assert not (await api.accounts.ListAccounts(account_pb2.ListAccountsRequest())).accounts
    await api.create_account()
    update = account_pb2.Account(id="acme")
    setattr(update, field, value)
    err = await invalid(
        api.accounts.UpdateAccount(
            account_pb2.UpdateAccountRequest(
                account=update, update_mask=field_mask_pb2.FieldMask(paths=[field])
            )
        )
    )
    assert says in bad_request(err)[f"account.{field}"]
    # The token keeper may refresh the account meanwhile; the refused value is never stored.
    stored = await api.daemon.store.get_account("acme")
    assert getattr(stored, field) != value
    assert stored.display_name == "acme"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "1e15"}, limits.RETRY_AFTER_MAX_S),
        ({"retry-after": "inf"}, limits.RETRY_AFTER_MAX_S),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, limits.RETRY_AFTER_MAX_S),
        ({"x-ratelimit-reset": "1e300"}, limits.RETRY_AFTER_MAX_S),
        ({"retry-after": "30"}, 30.0),
    ],
)
def test_retry_after_is_clamped(headers: dict[str, str], expected: float | None) -> None:
    """Rate-limit hints are clamped to 0..RETRY_AFTER_MAX_S; an unreadable one is no hint."""
    assert retry_after_s(headers, datetime(2026, 1, 1, tzinfo=UTC)) == expected


async def test_extreme_retry_after_clamps_the_retry(
    make_daemon: Callable[..., Daemon],
    sandbox: Sandbox,
) -> None:
    """A 429 with `Retry-After: 1e15` (once an overflow that left the job SUBMITTED) sends the
    job RETRYING at most a day and a few seconds later."""
    daemon = make_daemon()
    api = await Api.open(daemon)
    try:
        sandbox.add_fault(FaultRule(kind="rate_limit", retry_after_s=1e15, times=1))
        await api.create_account()
        job = await api.jobs.SchedulePin(api.pin_request(at=soon()))
        call = api.jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(job_ids=[job.id], since_sequence=0)
        )
        async for event in call:
            if event.to_state == J.STATE_RETRYING:
                call.cancel()
                break
        got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
        assert got.state == J.STATE_RETRYING
        wait = got.next_attempt_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
        assert timedelta(hours=23) < wait <= timedelta(seconds=limits.RETRY_AFTER_MAX_S + 10)
    finally:
        await api.close(grace_s=0.5)


@pytest.fixture
async def api_without_keeper(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Api]:
    """A daemon whose token keeper is off: every refresh counted below is the dispatcher's."""
    daemon = make_daemon(token_keeper=False)
    api = await Api.open(daemon)
    try:
        yield api
    finally:
        await api.close()


async def test_stored_token_with_crlf_never_wedges_a_job(
    api_without_keeper: Api, sandbox: Sandbox
) -> None:
    """An access token with CR/LF already in the database (from before the rule) is treated as
    refused: the token is refreshed and the pin delivered, instead of the job staying SUBMITTED."""
    api = api_without_keeper
    await api.create_account()
    store, accounts = api.daemon.store, api.daemon.accounts
    old = await store.get_account("acme")
    bad = old.replace(access_token="pina_bad\r\nX: 1", version=old.version + 1)
    await store.update_account(old, bad)
    accounts.put(bad)
    job = await api.jobs.SchedulePin(api.pin_request(at=soon()))
    call = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(job_ids=[job.id], since_sequence=0))
    async for event in call:
        if event.to_state in (J.STATE_DELIVERED, J.STATE_FAILED):
            call.cancel()
            break
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert got.state == J.STATE_DELIVERED
    assert api.daemon.accounts.refreshes == 1
    assert len(sandbox.pins()) == 1
