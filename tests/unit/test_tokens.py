"""When an account's tokens need attention (`tokens.py`), what a token response and rate-limit
headers say (`pinterest.oauth`), and how the pacer slows down for the headers and survives a
restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pinsched.core import tokens
from pinsched.core.accounts import Account, Pacing
from pinsched.core.jobs import ErrorCategory, JobError
from pinsched.core.pacing import AccountPacer
from pinsched.pinterest.oauth import Route, Routes, quota_headers, refresh_lifetime_s

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
A = tokens.Action


def account(**changes: object) -> Account:
    base = Account(
        id="acme",
        access_token="a",
        refresh_token="r",
        created_at=T0,
        updated_at=T0,
        verified_at=T0,
        access_expires_at=T0 + 30 * DAY,
        access_ttl_s=30 * 86400,
        refresh_expires_at=T0 + 60 * DAY,
        refresh_ttl_s=60 * 86400,
    )
    return base.replace(**changes)


def test_refresh_is_due_when_half_of_the_access_lifetime_is_left() -> None:
    """A 30-day access token is refreshed after at most 15 days (minus a jitter of at most a
    tenth of the half), before the 60-day refresh token's own half-life."""
    plan = tokens.next_action(account(), T0, can_refresh=True)
    assert plan.action is A.REFRESH
    assert plan.at is not None
    assert T0 + 15 * DAY - timedelta(hours=6) <= plan.at <= T0 + 15 * DAY


def test_refresh_is_due_on_the_shorter_half_life_of_either_token() -> None:
    """A refresh token with less life left than the access token decides the refresh."""
    plan = tokens.next_action(account(refresh_expires_at=T0 + 10 * DAY), T0, can_refresh=True)
    assert plan.at is not None
    assert plan.at <= T0 + 10 * DAY - 30 * DAY


def test_jitter_spreads_accounts_but_is_fixed_per_account() -> None:
    """Accounts with identical tokens refresh at different instants; one account always at the
    same one."""
    ats = {tokens.refresh_at(account(id=f"a{i}")) for i in range(50)}
    assert len(ats) == 50
    assert tokens.refresh_at(account(id="a1")) == tokens.refresh_at(account(id="a1"))


def test_tokens_of_unknown_age_are_verified_at_once() -> None:
    """A never-verified account, or a refreshable one whose lifetimes are unknown, is verified
    now."""
    assert tokens.next_action(account(verified_at=None), T0, can_refresh=False) == tokens.Plan(
        A.VERIFY, T0
    )
    assert tokens.next_action(account(access_ttl_s=0), T0, can_refresh=True).action is A.VERIFY
    assert tokens.next_action(account(access_ttl_s=0), T0, can_refresh=False).action is A.WARN


def test_an_unrefreshable_account_is_warned_seven_days_ahead_then_lapses() -> None:
    """Without client credentials (or after a refused refresh) the access token's end is
    announced 7 days ahead, once; at the end the account lapses."""
    acct = account()
    warn = tokens.next_action(acct, T0, can_refresh=False)
    assert warn == tokens.Plan(A.WARN, T0 + 23 * DAY)
    refused = tokens.next_action(acct, T0, can_refresh=True, refresh_refused=True)
    assert refused == warn
    warned = acct.replace(reauth_warned_at=T0 + 23 * DAY)
    assert tokens.next_action(warned, T0 + 24 * DAY, can_refresh=False) == tokens.Plan(
        A.LAPSED, T0 + 30 * DAY
    )
    assert tokens.next_action(warned, T0 + 31 * DAY, can_refresh=False).action is A.LAPSED


def test_nothing_is_planned_for_an_account_that_already_needs_reauth() -> None:
    """NEEDS_REAUTH accounts wait for the user."""
    assert tokens.next_action(account(needs_reauth=True), T0, can_refresh=True).action is A.NONE


@pytest.mark.parametrize(
    ("status", "code", "whole"),
    [(403, 29, True), (403, 3, True), (403, 233, False), (404, 40, False), (400, 29, False)],
)
def test_account_refusal_codes(status: int, code: int, whole: bool) -> None:
    """403 code 29 (Trial app in production) and code 3 (missing scopes) refuse the account;
    other rejections are about the pin."""
    err = JobError(
        category=ErrorCategory.REJECTED, message="m", http_status=status, pinterest_code=code
    )
    assert tokens.account_refusal(err) is whole


def test_refresh_lifetime_from_either_field() -> None:
    """`refresh_token_expires_in` wins; `refresh_token_expires_at` is read relative to now."""
    assert refresh_lifetime_s({"refresh_token_expires_in": 90}, T0) == 90
    at = int(T0.timestamp()) + 120
    assert refresh_lifetime_s({"refresh_token_expires_at": at}, T0) == 120
    assert refresh_lifetime_s({"refresh_token_expires_at": "soon"}, T0) is None
    assert refresh_lifetime_s({}, T0) is None


def test_quota_headers_need_both_remaining_and_reset() -> None:
    """Headers are read only when both are there (seconds or an epoch reset)."""
    assert quota_headers({}, T0) is None
    assert quota_headers({"x-ratelimit-remaining": "0"}, T0) is None
    assert quota_headers({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "30"}, T0) == (
        3.0,
        30.0,
    )
    epoch = str(int(T0.timestamp()) + 45)
    assert quota_headers({"x-ratelimit-remaining": "5", "x-ratelimit-reset": epoch}, T0) == (
        5.0,
        45.0,
    )
    assert quota_headers({"x-ratelimit-remaining": "x", "x-ratelimit-reset": "1"}, T0) is None


def test_routes_send_an_accounts_calls_to_its_base_with_its_ad_account() -> None:
    """A routed token goes to the account's base with `ad_account_id`; others to the default."""
    routes = Routes()
    routes.set("tok", Route("acme", "http://127.0.0.1:9/v5/", "123"))
    url, params, who = routes.target("http://d/v5", "tok", "/pins", {"page_size": "5"})
    assert (url, dict(params or {}), who) == (
        "http://127.0.0.1:9/v5/pins",
        {"page_size": "5", "ad_account_id": "123"},
        "acme",
    )
    assert routes.target("http://d/v5", "other", "/pins", None) == ("http://d/v5/pins", None, "")
    routes.set("tok", None)
    assert routes.target("http://d/v5", "tok", "/pins", None)[2] == ""


def test_low_quota_spreads_writes_and_none_left_holds_them() -> None:
    """With 2 requests left for 10 s, writes are 5 s apart; with none left, nothing goes before
    the reset."""
    pacer = AccountPacer(Pacing(writes_per_minute=6000))
    pacer.quota_hint(0.0, 2, 10.0)
    assert pacer.write_delay(0.0) == 0.0
    assert pacer.write_delay(1.0) == pytest.approx(4.0)
    assert pacer.write_delay(5.0) == 0.0
    pacer.quota_hint(5.0, 0, 20.0)
    assert pacer.pin_delay(5.0) == pytest.approx(20.0)


def test_pacer_snapshot_survives_a_restart_on_another_monotonic_clock() -> None:
    """A spam cool-down and a 429 slow-down taken in one process hold in the next one, whose
    monotonic clock starts elsewhere; the restart starts with an empty bucket."""
    before = AccountPacer(Pacing(writes_per_minute=60))
    before.rate_limited(100.0, None)
    before.spam_blocked(100.0, 3600.0)
    before.record_pin(90.0)
    snap = before.snapshot(mono=100.0, wall=1_000_000.0)
    after = AccountPacer(Pacing(writes_per_minute=60))
    after.restore(snap, mono=5.0, wall=1_000_010.0)  # 10 s later, monotonic clock reset
    assert after.pin_delay(5.0) == pytest.approx(3590.0)
    assert after.slowdown == 0.5
    assert after.strikes == 1
    assert after.write_delay(5.0) > 0  # no burst
    assert list(after.recent) == [pytest.approx(-15.0)]
    broken = AccountPacer(Pacing())
    broken.restore({"slowdown": "fast"}, mono=0.0, wall=0.0)
    assert broken.slowdown == 1.0
