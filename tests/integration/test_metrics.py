"""Prometheus metrics: pins run through the daemon against the sandbox, then `/metrics` is scraped
over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pinsched.app import Daemon
from pinsched.ops.metrics import Metrics, endpoint_label
from pinsched.sandbox import Sandbox
from pinsched.sandbox.faults import FaultRule
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api, soon
from tests.integration.test_daemon import wait_states

J = job_pb2.Job
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def metered(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Api]:
    daemon = make_daemon(
        metrics_listen="127.0.0.1:0", retry_base_delay_s=0.05, retry_max_delay_s=0.2
    )
    api = await Api.open(daemon)
    try:
        yield api
    finally:
        await api.close()


async def scrape(daemon: Daemon) -> Samples:
    """GET /metrics from *daemon* and index every sample by (name, labels)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{daemon.metrics.port}/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_delivered_count_matches_the_pins_published(metered: Api, sandbox: Sandbox) -> None:
    """After N pins are delivered the scrape counts N deliveries, N first-attempt lateness
    observations, N DELIVERED jobs, an empty due-heap, and N timed SchedulePin calls."""
    n = 4
    await metered.create_account()
    jobs = [
        await metered.jobs.SchedulePin(metered.pin_request(at=soon(), title=f"pin {i}"))
        for i in range(n)
    ]
    await wait_states(metered, [j.id for j in jobs], {J.STATE_DELIVERED})
    samples = await scrape(metered.daemon)
    published = len(sandbox.pins())
    assert published == n
    assert value(samples, "pinsched_pins_delivered_total", account="acme") == published
    assert value(samples, "pinsched_dispatch_lateness_seconds_count") == n
    assert value(samples, "pinsched_jobs", state="DELIVERED") == n
    assert value(samples, "pinsched_jobs", state="PENDING") == 0
    assert value(samples, "pinsched_due_heap_size") == 0
    assert (
        value(
            samples, "pinsched_job_transitions_total", from_state="SUBMITTED", to_state="DELIVERED"
        )
        == n
    )
    assert (
        value(
            samples,
            "pinsched_rpc_requests_total",
            service="pinsched.v1.PinScheduler",
            method="SchedulePin",
            code="OK",
        )
        == n
    )
    assert (
        value(
            samples,
            "pinsched_rpc_duration_seconds_count",
            service="pinsched.v1.PinScheduler",
            method="SchedulePin",
        )
        == n
    )
    assert ("pinsched_watchers", frozenset()) in samples
    assert ("pinsched_token_refreshes_total", frozenset()) in samples


async def test_failures_retries_and_429s_are_counted(metered: Api, sandbox: Sandbox) -> None:
    """A 429 then a 500 are counted as retries by error category; a rejected pin as a permanent
    failure; a refused RPC under its status code."""
    await metered.create_account(writes_per_minute=6000)  # a 429 halves it: keep waits short
    sandbox.add_fault(FaultRule(kind="rate_limit", times=1, retry_after_s=0.1))
    sandbox.add_fault(FaultRule(kind="status", status=500, times=1))
    ok = await metered.jobs.SchedulePin(metered.pin_request(at=soon(), title="bumpy"))
    await wait_states(metered, [ok.id], {J.STATE_DELIVERED})
    bad = await metered.jobs.SchedulePin(metered.pin_request(at=soon(), board_id="999999"))
    await wait_states(metered, [bad.id], {J.STATE_PERMANENTLY_FAILED})
    with pytest.raises(grpc.aio.AioRpcError):
        await metered.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id="no-such-job"))
    samples = await scrape(metered.daemon)
    assert value(samples, "pinsched_rate_limited_total", account="acme") == 1
    assert value(samples, "pinsched_retries_total", account="acme", category="RATE_LIMITED") == 1
    # a 500 on create may have created the pin: reconciled (not found), then retried
    assert value(samples, "pinsched_retries_total", account="acme", category="OUTCOME_UNKNOWN") == 1
    assert (
        value(samples, "pinsched_attempt_failures_total", account="acme", category="REJECTED") == 1
    )
    assert (
        value(
            samples,
            "pinsched_job_failures_total",
            account="acme",
            category="REJECTED",
            state="PERMANENTLY_FAILED",
        )
        == 1
    )
    assert value(samples, "pinsched_pins_delivered_total", account="acme") == 1
    assert (
        value(
            samples,
            "pinsched_rpc_requests_total",
            service="pinsched.v1.PinScheduler",
            method="GetJob",
            code="NOT_FOUND",
        )
        == 1
    )


async def test_webhook_hook_and_watchers() -> None:
    """`webhook_attempt` counts by endpoint without credentials in the label; with nothing bound
    the scrape-time gauges still render."""
    metrics = Metrics()
    metrics.webhook_attempt("https://user:pw@hooks.example.com/in?token=abc", ok=False)
    metrics.webhook_attempt("https://hooks.example.com/in", ok=True)
    body, _ = metrics.render()
    text = body.decode()
    assert "token=abc" not in text
    assert "user:pw" not in text
    assert endpoint_label("https://user:pw@h.example:8443/x?y=1#z") == "https://h.example:8443/x"
    families = {f.name: f for f in text_string_to_metric_families(text)}
    attempts = {
        (s.labels["endpoint"], s.labels["outcome"]): s.value
        for s in families["pinsched_webhook_attempts"].samples
        if s.name == "pinsched_webhook_attempts_total"
    }
    assert attempts == {
        ("https://hooks.example.com/in", "failed"): 1.0,
        ("https://hooks.example.com/in", "ok"): 1.0,
    }
