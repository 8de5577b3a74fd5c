"""After a group commit the watchers of its events run before the writers' callers resume: the
callers convert and answer (a batch of 100 jobs: milliseconds), the watchers only forward, so
events reach them a conversion sooner. Both backends (`db_url`)."""

from __future__ import annotations

import asyncio

from pinsched.core.accounts import Account
from pinsched.events import EventBus, WatchFilter
from pinsched.store import Store
from tests.integration.test_store import NOW, batch, make_job


async def test_watchers_wake_before_the_writer_resumes(db_url: str) -> None:
    """A watcher waiting on the bus runs before the coroutine whose write was committed."""
    bus = EventBus()
    store = await Store.open(db_url, on_events=bus.publish)
    try:
        await store.create_account(
            Account(id="acme", access_token="tok", created_at=NOW, updated_at=NOW)
        )
        order: list[str] = []
        sub = bus.subscribe(WatchFilter())

        async def watcher() -> None:
            await sub.wait()
            order.append("watcher")

        async def writer() -> None:
            await store.create_jobs(*batch(*(make_job(i) for i in range(100))))
            order.append("writer")

        waiting = asyncio.create_task(watcher())
        await asyncio.sleep(0)  # the watcher is waiting
        await asyncio.gather(writer(), waiting)
        assert order == ["watcher", "writer"]
        assert sub.size == 100
    finally:
        await store.close()
