"""What the daemon does when Pinterest refuses the app's client credentials, or takes them again:
the `pinsched.pinterest` health service, an `app.credentials_refused` webhook notice, and (once
accepted again) the release of every account's held jobs."""

from __future__ import annotations

from grpc_health.v1 import _async as health_aio

from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Clock
from pinsched.daemon import grpc_server
from pinsched.scheduler import Scheduler
from pinsched.store import Store
from pinsched.webhooks.messages import APP_CREDENTIALS_REFUSED
from pinsched.webhooks.sender import WebhookSender


async def app_credentials_changed(
    reason: str,
    *,
    health: health_aio.HealthServicer | None,
    store: Store,
    clock: Clock,
    accounts: AccountRegistry,
    webhooks: WebhookSender | None,
    scheduler: Scheduler | None,
) -> None:
    """Pinterest refused (*reason*) or accepted again ("") the app's client credentials. No
    *health* while stopping; no *scheduler* before it exists (nothing is held yet)."""
    if health is not None:
        await grpc_server.set_pinterest_health(health, refused=bool(reason))
    if reason:
        if webhooks is not None:
            now = clock.now()
            await store.enqueue_notice(
                webhooks.render_notice(
                    APP_CREDENTIALS_REFUSED,
                    now,
                    {"reason": reason, "held_accounts": len(accounts.accounts())},
                ),
                now,
            )
        return
    if scheduler is not None:
        for account in accounts.accounts():
            await scheduler.release(account.id)
