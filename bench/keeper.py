"""`python -m bench.keeper [N]` — what the token keeper costs.

Creates N accounts (default 10,000) with known lifetimes in a real SQLite store, then measures:

* an idle pass (nothing due: the keeper plans every account and sleeps), the work it does at
  least once an hour and after every account change;
* refreshing 500 accounts that are all due at once against `pinsched sandbox` in-process on
  loopback, with the keeper's pace lifted (the pure cost per refresh: HTTP grant + store write).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pinsched.accounts.keeper import TokenKeeper
from pinsched.accounts.registry import AccountRegistry
from pinsched.core.accounts import Account
from pinsched.pinterest.client import PinterestClient
from pinsched.sandbox import Sandbox
from pinsched.store import Store
from pinsched.testing import FakeClock

DUE = 500


async def main(n: int) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    sandbox = Sandbox(now=clock.now)
    base = await sandbox.start()
    sandbox.set_client("app", "secret")
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "bench.db")
        client = PinterestClient(base)
        now = clock.now()
        for i in range(n):
            due = i < DUE
            sandbox.add_user(f"u{i}", access_token=f"a{i}", refresh_token=f"r{i}")
            await store.create_account(
                Account(
                    id=f"acct-{i:05d}",
                    access_token=f"a{i}",
                    refresh_token=f"r{i}",
                    created_at=now,
                    updated_at=now,
                    verified_at=now,
                    access_ttl_s=30 * 86400,
                    refresh_ttl_s=60 * 86400,
                    refresh_expires_at=now + timedelta(days=60),
                    access_expires_at=now + timedelta(days=1 if due else 30),
                )
            )
        registry = AccountRegistry(store, clock, client, client_id="app", client_secret="secret")
        await registry.load_all()
        keeper = TokenKeeper(registry, clock, client, per_second=1e9)

        started = time.perf_counter()
        await keeper.run_pass()  # refreshes the DUE accounts
        refresh_s = time.perf_counter() - started
        started = time.perf_counter()
        idle = [await keeper.run_pass() for _ in range(5)]
        idle_s = (time.perf_counter() - started) / 5
        await client.close()
        await store.close()
    await sandbox.stop()
    print(f"accounts: {n}")
    print(
        f"refresh of {DUE} due accounts: {refresh_s:.2f} s "
        f"({refresh_s / DUE * 1000:.2f} ms each, {registry.refreshes} grants)"
    )
    print(f"idle pass over {n} accounts: {idle_s * 1000:.1f} ms (next due in {min(idle):.0f} s)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
