"""Webhooks end to end: the daemon in-process (real SQLite, real gRPC), the sandbox as Pinterest,
and a real aiohttp receiver on 127.0.0.1 verifying signatures with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from pinsched.app import Daemon
from pinsched.cli import parser, verbs
from pinsched.config import ConfigError, WebhookEndpoint
from pinsched.testing import FakeClock
from pinsched.v1 import job_pb2, webhook_pb2, webhook_pb2_grpc
from tests.conftest import Api, soon
from tests.integration.test_daemon import wait_states

SECRET = "whsec_" + base64.b64encode(b"pinsched-webhook-test-key-0001").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"pinsched-webhook-test-key-0002").decode()
J = job_pb2.Job
W = webhook_pb2.WebhookDelivery
LIFE = ["job.scheduled", "job.queued", "job.submitted", "job.delivered"]
HANG = 0  # a plan answer: hold the request until `release` (the sender times out)


@dataclass(frozen=True)
class Hit:
    """One request the receiver got."""

    headers: dict[str, str]
    body: str

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1; `plan(n, hit)` gives the status of the n-th request."""

    def __init__(self, plan: Callable[[int, Hit], int] | None = None) -> None:
        self.plan = plan or (lambda n, hit: 200)
        self.hits: list[Hit] = []
        self.acked: list[Hit] = []  # answered 2xx
        self.changed = asyncio.Event()
        self.release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        hit = Hit(dict(request.headers), await request.text())
        n = len(self.hits)
        self.hits.append(hit)
        self.changed.set()
        status = self.plan(n, hit)
        if status == HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 10)
            return web.Response(status=503)
        if 200 <= status < 300:
            self.acked.append(hit)
            self.changed.set()
        return web.Response(status=status, text="nope" if status >= 300 else "")

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait (on request arrivals) until *predicate* holds."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def receiver(plan: Callable[[int, Hit], int] | None = None) -> AsyncIterator[Receiver]:
    r = await Receiver(plan).start()
    try:
        yield r
    finally:
        await r.stop()


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[Api]:
    """*daemon* started, with an `Api` on a real channel; stopped afterwards."""
    api = await Api.open(daemon)
    try:
        yield api
    finally:
        await api.close(grace_s=0.3)


def hook(url: str, *secrets: str, **kw: Any) -> tuple[WebhookEndpoint, ...]:
    return (WebhookEndpoint(url=url, secrets=secrets or (SECRET,), **kw),)


def per_job(hits: Sequence[Hit]) -> dict[str, list[tuple[int, str]]]:
    """(sequence, type) of each job's messages, in arrival order."""
    out: dict[str, list[tuple[int, str]]] = {}
    for hit in hits:
        body = hit.json
        out.setdefault(body["data"]["job_id"], []).append((body["data"]["sequence"], body["type"]))
    return out


def stub(api: Api) -> webhook_pb2_grpc.WebhookServiceAsyncStub:
    return webhook_pb2_grpc.WebhookServiceStub(api.channel)


async def test_every_event_of_a_delivered_pin_arrives_signed_and_in_order(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Each event of two published pins reaches the receiver once, verifiable with
    standardwebhooks, in sequence order per job, with the job's proto JSON."""
    async with receiver() as r, running(make_daemon(webhooks=hook(r.url))) as api:
        await api.create_account()
        jobs = [
            await api.jobs.SchedulePin(api.pin_request(at=soon(), title=f"p{i}")) for i in range(2)
        ]
        await r.wait_until(lambda: len(r.acked) >= 8)
        await asyncio.wait_for(api.daemon.activity.idle.wait(), 5)
        assert api.daemon.webhooks is not None
        assert api.daemon.webhooks.delivered == 8
    assert len(r.hits) == 8
    for hit in r.hits:
        body = Webhook(SECRET).verify(hit.body, hit.headers)
        assert body["id"] == hit.id
        assert hit.headers["Content-Type"] == "application/json"
    by_job = per_job(r.hits)
    assert set(by_job) == {j.id for j in jobs}
    for entries in by_job.values():
        assert [t for _, t in entries] == LIFE
        assert [s for s, _ in entries] == sorted(s for s, _ in entries)
    delivered = [h.json for h in r.hits if h.json["type"] == "job.delivered"]
    assert all(d["data"]["job"]["state"] == "STATE_DELIVERED" for d in delivered)
    assert all(d["data"]["job"]["pinterest_pin_id"] for d in delivered)


async def test_rotation_sends_two_signatures_each_verifiable(
    make_daemon: Callable[..., Daemon],
) -> None:
    """During a rotation every message carries one signature per secret; receivers holding only
    the old or only the new secret both verify it."""
    async with (
        receiver() as r,
        running(make_daemon(webhooks=hook(r.url, SECRET, NEW_SECRET))) as api,
    ):
        await api.create_account()
        await api.jobs.SchedulePin(api.pin_request(at=soon(3600)))
        await r.wait_until(lambda: len(r.acked) >= 1)
    (hit,) = r.hits
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, NEW_SECRET):
        assert Webhook(secret).verify(hit.body, hit.headers)["type"] == "job.scheduled"


async def test_failing_receiver_gets_everything_in_order_after_retries(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A receiver that fails the first three requests (503, a timeout, 500) still gets every
    message, in order per job, the retries on a fake clock carrying the same webhook-id."""
    failures = [503, HANG, 500]
    clock = FakeClock(datetime.now(UTC))  # standardwebhooks checks timestamps against real time
    async with receiver(lambda n, hit: failures[n] if n < len(failures) else 200) as r:
        daemon = make_daemon(clock=clock, webhooks=hook(r.url, timeout_s=0.3))
        async with running(daemon) as api:
            await api.create_account()
            jobs = [
                await api.jobs.SchedulePin(api.pin_request(at=clock.now(), title=f"r{i}"))
                for i in range(2)
            ]
            await wait_states(api, [j.id for j in jobs], {J.STATE_DELIVERED})
            for _ in range(60):  # 5 s steps; three failures wait at most 5 + 30 + 120 s
                await asyncio.wait_for(daemon.activity.idle.wait(), 10)
                if len(r.acked) == 8:
                    break
                await clock.advance(5)
            sender = daemon.webhooks
            assert sender is not None
            assert (sender.attempts, sender.failures, sender.delivered) == (11, 3, 8)
            listed = await stub(api).ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest(state=W.STATE_DELIVERED)
            )
    assert len(r.acked) == 8
    assert sum(d.attempts for d in listed.deliveries) == 11
    for hit in r.hits:
        Webhook(SECRET).verify(hit.body, hit.headers)
    assert {h.id for h in r.hits[:3]} <= {h.id for h in r.acked}
    for entries in per_job(r.acked).values():
        assert [t for _, t in entries] == LIFE


async def test_restart_mid_backlog_loses_nothing_and_resends_with_the_same_id(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Requests in flight when the daemon stops are sent again after the restart with the same
    webhook-id and body; nothing is lost and nothing acknowledged is sent twice."""
    hold = {"on": True}
    async with receiver(lambda n, hit: HANG if n >= 3 and hold["on"] else 200) as r:
        config = {"webhooks": hook(r.url, timeout_s=5.0)}
        async with running(make_daemon(**config)) as api:
            await api.create_account()
            jobs = [
                await api.jobs.SchedulePin(api.pin_request(at=soon(), title=f"b{i}"))
                for i in range(2)
            ]
            await wait_states(api, [j.id for j in jobs], {J.STATE_DELIVERED})
            await r.wait_until(lambda: len(r.hits) == 5)  # 3 acknowledged, both jobs' next held
        hold["on"] = False
        held = {h.id: h.body for h in r.hits[3:]}
        async with running(make_daemon(**config)) as api:
            await r.wait_until(lambda: len(r.acked) == 8)
            await asyncio.wait_for(api.daemon.activity.idle.wait(), 5)
            listed = await stub(api).ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest()
            )
    assert {d.message_id for d in listed.deliveries} == {h.id for h in r.acked}
    assert len({h.id for h in r.acked}) == 8  # no acknowledged message twice
    assert all(d.state == W.STATE_DELIVERED for d in listed.deliveries)
    resent = {h.id: h.body for h in r.acked if h.id in held}
    assert resent == held
    for entries in per_job(r.acked).values():
        assert [t for _, t in entries] == LIFE


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/v1/",
        "http://2852039166/hook",  # 169.254.169.254 as one number: only resolving reveals it
    ],
)
async def test_link_local_webhook_is_refused_at_start(
    make_daemon: Callable[..., Daemon],
    url: str,
) -> None:
    """A webhook URL on a link-local or metadata address stops the start with an error naming
    the URL."""
    daemon = make_daemon(webhooks=hook(url))
    with pytest.raises(ConfigError) as err:
        await daemon.start()
    message = str(err.value)
    assert url.rstrip("/") in message
    assert "refused" in message
    assert "link-local" in message or "metadata" in message


async def test_410_disables_endpoint_dead_deliveries_listed_and_redelivered(
    make_daemon: Callable[..., Daemon],
) -> None:
    """410 Gone kills an endpoint's deliveries without slowing another endpoint; the dead ones
    are listed over gRPC, refused while disabled, and re-sent after a restart with their ids."""
    gone = {"on": True}
    async with receiver(lambda n, hit: 410 if gone["on"] else 200) as bad, receiver() as good:
        config = {"webhooks": (*hook(bad.url), *hook(good.url))}
        async with running(make_daemon(**config)) as api:
            await api.create_account()
            job = await api.jobs.SchedulePin(api.pin_request(at=soon()))
            await wait_states(api, [job.id], {J.STATE_DELIVERED})
            await good.wait_until(lambda: len(good.acked) == 4)
            await asyncio.wait_for(api.daemon.activity.idle.wait(), 5)
            assert api.daemon.webhooks is not None
            assert api.daemon.webhooks.disabled == {bad.url}
            wh = stub(api)
            first = await wh.ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest(
                    endpoint=bad.url, state=W.STATE_DEAD, page_size=3
                )
            )
            rest = await wh.ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest(
                    endpoint=bad.url,
                    state=W.STATE_DEAD,
                    page_size=3,
                    page_token=first.next_page_token,
                )
            )
            dead = [*first.deliveries, *rest.deliveries]
            assert not rest.next_page_token
            assert [d.event_type for d in dead] == LIFE
            assert dead[0].last_status == 410
            assert dead[0].attempts == 1
            assert all("410 Gone" in d.last_error for d in dead)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await wh.RedeliverWebhooks(webhook_pb2.RedeliverWebhooksRequest(endpoint=bad.url))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert len(bad.hits) == 1
        gone["on"] = False
        async with running(make_daemon(**config)) as api:
            wh = stub(api)
            one = await wh.RedeliverWebhooks(
                webhook_pb2.RedeliverWebhooksRequest(delivery_ids=[dead[0].id])
            )
            others = await wh.RedeliverWebhooks(
                webhook_pb2.RedeliverWebhooksRequest(endpoint=bad.url)
            )
            assert (one.redelivered_count, others.redelivered_count) == (1, 3)
            await bad.wait_until(lambda: len(bad.acked) == 4)
    assert [h.id for h in bad.acked] == [d.message_id for d in dead]
    assert bad.hits[0].id == dead[0].message_id
    assert [h.json["type"] for h in bad.acked] == LIFE


async def test_webhook_api_rejects_bad_requests(
    make_daemon: Callable[..., Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad list/redeliver requests are INVALID_ARGUMENT, NOT_FOUND or FAILED_PRECONDITION, and
    the `pinsched webhooks` verbs show the same over the wire."""
    async with receiver() as r, running(make_daemon(webhooks=hook(r.url))) as api:
        await api.create_account()
        await api.jobs.SchedulePin(api.pin_request(at=soon(3600)))
        await r.wait_until(lambda: len(r.acked) == 1)
        await asyncio.wait_for(api.daemon.activity.idle.wait(), 5)
        wh = stub(api)
        (done,) = (
            await wh.ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest(include_payload=True)
            )
        ).deliveries
        assert json.loads(done.payload)["id"] == done.message_id
        assert done.state == W.STATE_DELIVERED
        assert not done.HasField("next_attempt_time")
        R = webhook_pb2.RedeliverWebhooksRequest
        L = webhook_pb2.ListWebhookDeliveriesRequest
        cases: list[tuple[Awaitable[object], grpc.StatusCode]] = [
            (wh.RedeliverWebhooks(R()), grpc.StatusCode.INVALID_ARGUMENT),
            (
                wh.RedeliverWebhooks(R(delivery_ids=[1], endpoint=r.url)),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (
                wh.RedeliverWebhooks(R(endpoint="http://elsewhere.test/")),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (wh.RedeliverWebhooks(R(delivery_ids=[987654])), grpc.StatusCode.NOT_FOUND),
            (wh.RedeliverWebhooks(R(delivery_ids=[done.id])), grpc.StatusCode.FAILED_PRECONDITION),
            (wh.ListWebhookDeliveries(L(page_size=1001)), grpc.StatusCode.INVALID_ARGUMENT),
            (wh.ListWebhookDeliveries(L(page_token="garbage!")), grpc.StatusCode.INVALID_ARGUMENT),
            (
                wh.ListWebhookDeliveries(L(state=9)),  # type: ignore[arg-type]
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ]
        for call, code in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == code, err.value.details()
        target = ["--target", f"127.0.0.1:{api.daemon.port}"]
        capsys.readouterr()
        assert await cli_verb("webhooks", "list", "--json", "--state", "delivered", *target) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [d["message_id"] for d in listed["deliveries"]] == [done.message_id]
        assert await cli_verb("webhooks", "redeliver", str(done.id), *target) == 9
        assert "only DEAD deliveries" in capsys.readouterr().err


async def cli_verb(*argv: str) -> int:
    """Run a `pinsched` gRPC verb on the running loop; its exit code."""
    args = parser.build_parser().parse_args(list(argv))
    return await verbs.run_verb(args.verb, args, verbs.client_options(args))
