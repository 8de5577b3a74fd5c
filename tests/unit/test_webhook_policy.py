"""The webhook retry schedule, outcome rules and address-safety rule (pure)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinsched.webhooks.policy import (
    MIN_DELAY_S,
    RETRY_WINDOW_S,
    Outcome,
    Verdict,
    address_problem,
    host_problem,
    jitter_fraction,
    judge,
    next_retry_s,
    retry_cap_s,
    retry_delay_s,
    retry_plan,
)

keys = st.text(min_size=1, max_size=40)


def test_caps_grow_from_five_seconds_to_twelve_hours() -> None:
    """The cap after attempt n follows 5s, 30s, 2m, 10m, 30m, 1h, 3h, 6h, then 12h for good."""
    assert [retry_cap_s(n) for n in range(1, 12)] == [
        5,
        30,
        120,
        600,
        1800,
        3600,
        10800,
        21600,
        43200,
        43200,
        43200,
    ]


@given(keys, st.integers(min_value=1, max_value=40))
def test_each_delay_is_full_jitter_under_its_cap(key: str, attempt: int) -> None:
    """A delay lies in [1 s, cap] and is the same every time it is computed."""
    delay = retry_delay_s(key, attempt)
    assert MIN_DELAY_S <= delay <= retry_cap_s(attempt)
    assert delay == retry_delay_s(key, attempt)


@given(keys)
def test_retries_span_exactly_one_day_then_stop(key: str) -> None:
    """Every delivery is retried until exactly 24 h after its first attempt, then is DEAD."""
    plan = retry_plan(key)
    assert sum(plan) == pytest.approx(RETRY_WINDOW_S)
    assert all(0 < d <= retry_cap_s(n) for n, d in enumerate(plan, start=1))
    assert next_retry_s(key, len(plan) + 1) is None
    assert next_retry_s(key, len(plan)) == plan[-1]


def test_jitter_spreads_deliveries_over_the_cap() -> None:
    """Across many deliveries the first retry is spread over the 5 s cap, not bunched."""
    fractions = [jitter_fraction(f"msg_{i}", 1) for i in range(2000)]
    assert all(0 <= f < 1 for f in fractions)
    quarters = [sum(1 for f in fractions if q / 4 <= f < (q + 1) / 4) for q in range(4)]
    assert all(400 < n < 600 for n in quarters)


def test_attempts_must_be_counted_from_one() -> None:
    """Asking for the delay after attempt 0 is a programming error."""
    with pytest.raises(ValueError, match="attempts"):
        next_retry_s("k", 0)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    """Any 2xx answer delivers."""
    assert judge(status, key="k", attempts=1) == Outcome(Verdict.DELIVERED)


@pytest.mark.parametrize("status", [None, 301, 400, 404, 429, 500, 503])
def test_other_answers_are_retried_within_the_window(status: int | None) -> None:
    """Redirects, errors and no answer at all are retried after the scheduled delay."""
    outcome = judge(status, key="k", attempts=1)
    assert outcome == Outcome(Verdict.RETRY, retry_delay_s("k", 1))


def test_410_disables_and_the_end_of_the_window_kills() -> None:
    """410 Gone is GONE at any attempt; a failure after the last retry is DEAD."""
    assert judge(410, key="k", attempts=1).verdict is Verdict.GONE
    last = len(retry_plan("k")) + 1
    assert judge(500, key="k", attempts=last).verdict is Verdict.DEAD
    assert judge(200, key="k", attempts=last).verdict is Verdict.DELIVERED


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "fe80::1",
        "fe80::1%2",
        "febf::1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
    ],
)
def test_link_local_and_metadata_addresses_are_refused(address: str) -> None:
    """Link-local and metadata addresses are refused, also inside IPv6 wrappings."""
    assert address_problem(address) is not None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.10",
        "100.64.0.1",
        "fd00::1",
        "8.8.8.8",
        "2606:4700::1111",
        "::ffff:10.0.0.1",
    ],
)
def test_loopback_private_and_public_addresses_are_allowed(address: str) -> None:
    """Loopback, private, CGNAT and public addresses are allowed."""
    assert address_problem(address) is None


@given(st.integers(min_value=0, max_value=2**16 - 1))
def test_the_whole_ipv4_link_local_block_is_refused(low: int) -> None:
    """Every address of 169.254.0.0/16 is refused."""
    ip = ipaddress.IPv4Address(int(ipaddress.IPv4Address("169.254.0.0")) + low)
    assert address_problem(ip) is not None


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("metadata.google.internal", True),
        ("METADATA.google.internal.", True),
        ("metadata.goog", True),
        ("169.254.169.254", True),
        ("[fe80::1]", True),
        ("hooks.example.com", False),
        ("localhost", False),
        ("127.0.0.1", False),
    ],
)
def test_host_names_are_checked_before_resolving(host: str, refused: bool) -> None:
    """Metadata host names and blocked IP literals are refused by name; others wait for DNS."""
    assert (host_problem(host) is not None) is refused
