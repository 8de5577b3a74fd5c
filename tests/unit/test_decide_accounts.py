"""UpdateAccount as a pure decision (`core.accounts.update_account`): pause, a new token, a
pacing field, a new route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pinsched.core.account_changes import ASSUMED_ACCESS_LIFETIME, AccountUpdate, update_account
from pinsched.core.accounts import Account, Pacing

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OLD = Account(
    id="acme",
    access_token="old",
    created_at=T0,
    updated_at=T0,
    pacing=Pacing(max_per_day=5),
    needs_reauth=True,
    state_reason="refused",
)


def test_pause_changes_only_the_flag_one_version_later() -> None:
    """Pausing sets `paused` and bumps the version; nothing else changes."""
    new = update_account(OLD, AccountUpdate(paths=["paused"], values={"paused": True}), now=T0)
    assert new.paused
    assert new.version == OLD.version + 1
    assert new.replace(paused=False, version=OLD.version, updated_at=T0) == OLD


def test_a_new_token_clears_the_old_ones_trouble() -> None:
    """A new access token ends NEEDS_REAUTH and gets the assumed lifetime without an expiry."""
    update = AccountUpdate(paths=["access_token"], values={"access_token": "new"})
    new = update_account(OLD, update, now=T0)
    assert (new.access_token, new.needs_reauth, new.state_reason) == ("new", False, "")
    assert new.access_expires_at == T0 + ASSUMED_ACCESS_LIFETIME


def test_one_pacing_field_keeps_the_others() -> None:
    """`pacing.min_spacing` changes that field alone."""
    sent = Pacing(min_spacing=timedelta(minutes=5))
    update = AccountUpdate(paths=["pacing.min_spacing"], values={"pacing": sent})
    new = update_account(OLD, update, now=T0)
    assert new.pacing == Pacing(min_spacing=timedelta(minutes=5), max_per_day=5)


def test_a_new_route_lifts_a_hold() -> None:
    """Changing `api_base` of a held account clears the hold."""
    held = OLD.replace(hold_reason="code 29", needs_reauth=False)
    update = AccountUpdate(paths=["api_base"], values={"api_base": "https://api-sandbox.x"})
    new = update_account(held, update, now=T0)
    assert (new.hold_reason, new.state_reason) == ("", "")
