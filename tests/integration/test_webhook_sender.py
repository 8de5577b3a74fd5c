"""The webhook sender alone: a real store (`db_url`: SQLite, PostgreSQL) and real receivers on
127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from pinsched.api.proto_json import PROTO_JSON
from pinsched.clock import Clock, SystemClock
from pinsched.config import ConfigError, WebhookEndpoint
from pinsched.core.accounts import Account
from pinsched.store import Outbox, Store
from pinsched.testing import FakeClock
from pinsched.webhooks.messages import OutboxRenderers
from pinsched.webhooks.sender import POLL_S, GetAddrInfo, WebhookSender, prepare_endpoints
from tests.integration.test_webhooks import HANG, SECRET, receiver


@contextlib.asynccontextmanager
async def sending(
    db_url: str,
    configs: Sequence[WebhookEndpoint],
    clock: Clock,
    getaddrinfo: GetAddrInfo | None = None,
) -> AsyncIterator[tuple[Store, WebhookSender]]:
    """A store with a started sender for *configs*; both closed afterwards."""
    endpoints = await prepare_endpoints(configs, getaddrinfo=getaddrinfo)
    renderers = OutboxRenderers(endpoints, PROTO_JSON)
    store = await Store.open(
        db_url, outbox=Outbox(renderers.render_event, renderers.render_account)
    )
    sender = WebhookSender(store, clock, endpoints, render=PROTO_JSON, getaddrinfo=getaddrinfo)
    await sender.start()
    try:
        yield store, sender
    finally:
        await sender.stop(0.1)
        await store.close()


async def needs_reauth(store: Store, clock: Clock, *account_ids: str) -> None:
    """Create the accounts, then mark each NEEDS_REAUTH (one account.needs_reauth each)."""
    for account_id in account_ids:
        now = clock.now()
        account = await store.create_account(Account(id=account_id, created_at=now, updated_at=now))
        await store.update_account(
            account,
            account.replace(
                needs_reauth=True, state_reason="refresh refused", version=2, updated_at=now
            ),
        )


async def test_account_needing_reauth_is_announced(db_url: str) -> None:
    """An account that starts needing re-authorisation reaches the receiver as a signed
    account.needs_reauth message without tokens."""
    async with (
        receiver() as r,
        sending(db_url, [WebhookEndpoint(url=r.url, secrets=(SECRET,))], SystemClock()) as (
            store,
            _,
        ),
    ):
        await needs_reauth(store, SystemClock(), "acme")
        await r.wait_until(lambda: len(r.acked) == 1, timeout_s=POLL_S + 5)
    (hit,) = r.hits
    body = Webhook(SECRET).verify(hit.body, hit.headers)
    assert body["type"] == "account.needs_reauth"
    assert body["data"]["account"]["state"] == "STATE_NEEDS_REAUTH"
    assert body["data"]["account"]["state_reason"] == "refresh refused"


async def test_rebinding_to_a_link_local_address_is_refused_at_send_time(db_url: str) -> None:
    """A host that resolved to loopback at start but to 169.254.169.254 at send time is never
    contacted: the attempt fails with the reason, and the delivery waits for a retry."""
    answers = ["127.0.0.1"]

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        address = answers.pop(0) if answers else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    clock = FakeClock(datetime.now(UTC))
    async with receiver() as r:
        url = r.url.replace("127.0.0.1", "rebind.test")
        async with sending(
            db_url, [WebhookEndpoint(url=url, secrets=(SECRET,))], clock, getaddrinfo
        ) as (store, sender):
            await needs_reauth(store, clock, "acme")
            await clock.advance(POLL_S)  # a scan after the commit, whatever woke the sender
            await asyncio.wait_for(sender.activity.idle.wait(), 5)
            (delivery,) = await store.webhook_list()
    assert not r.hits
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("PENDING", 1, None)
    assert delivery.last_error is not None
    assert "refused" in delivery.last_error
    assert "169.254.169.254 is a cloud metadata address" in delivery.last_error
    assert sender.failures == 1


async def test_a_hanging_endpoint_never_delays_another(db_url: str) -> None:
    """While one endpoint holds every request, another endpoint receives all of its messages."""
    async with receiver(lambda n, hit: HANG) as stuck, receiver() as fine:
        configs = [
            WebhookEndpoint(url=stuck.url, secrets=(SECRET,), timeout_s=30),
            WebhookEndpoint(url=fine.url, secrets=(SECRET,)),
        ]
        async with sending(db_url, configs, SystemClock()) as (store, sender):
            await needs_reauth(store, SystemClock(), "a1", "a2", "a3")
            await fine.wait_until(lambda: len(fine.acked) == 3, timeout_s=POLL_S + 5)
            await stuck.wait_until(lambda: len(stuck.hits) == 3)
            assert sender.in_flight >= 3  # the stuck three (a fine one may still be recorded)
            assert not stuck.acked


async def test_endpoints_are_checked_once_each_and_unresolvable_hosts_tolerated() -> None:
    """A URL configured twice or resolving to a metadata address is refused; a host that does
    not resolve yet is accepted (it is checked again at every connection)."""

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        if host == "later.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = "fd00:ec2::254" if host == "imds.test" else "10.0.0.7"
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    def config(url: str) -> WebhookEndpoint:
        return WebhookEndpoint(url=url, secrets=(SECRET,))

    (ok,) = await prepare_endpoints([config("https://later.test/h")], getaddrinfo=getaddrinfo)
    assert ok.name == "https://later.test/h"
    with pytest.raises(ConfigError, match=r"https://a\.test/h: configured twice"):
        await prepare_endpoints(
            [config("https://a.test/h"), config("https://a.test/h")], getaddrinfo=getaddrinfo
        )
    with pytest.raises(ConfigError, match=r"imds\.test resolves to fd00:ec2::254"):
        await prepare_endpoints([config("https://imds.test/h")], getaddrinfo=getaddrinfo)
