"""Secrets and transport: credentials in webhook URLs are masked wherever a URL is shown, unsafe
settings are warned about at start and by `config check`, short tokens are masked in logs, and
the IPv4-compatible form of a metadata address is refused like the plain one."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import structlog

from pinsched import security
from pinsched.app import Daemon
from pinsched.cli import main as cli
from pinsched.config import Config, ConfigError, load_config
from pinsched.ops import logs
from pinsched.ops.masking import mask_url, scrub, url_secrets
from pinsched.v1 import job_pb2, webhook_pb2
from pinsched.webhooks.policy import address_problem, host_problem
from tests.conftest import soon
from tests.integration.test_daemon import wait_states
from tests.integration.test_webhooks import hook, receiver, running, stub

J = job_pb2.Job
W = webhook_pb2.WebhookDelivery


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:pa55word@hooks.example.com/in?token=abc123&x=1#frag",
            "https://***@hooks.example.com/in?token=***&x=***",
        ),
        ("https://hooks.example.com:8443/in", "https://hooks.example.com:8443/in"),
        ("http://[::1]:9000/p?k=v", "http://[::1]:9000/p?k=***"),
        ("https://tok@h.example/", "https://***@h.example/"),
        ("https://h.example/?justatoken", "https://h.example/?justatoken=***"),
        ("http://[bad/", "***"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    """A URL is shown without its userinfo, query values nor fragment; host and path stay."""
    assert mask_url(url) == shown


def test_scrub_masks_the_url_and_its_parts_in_a_message() -> None:
    """An error quoting the URL, or only its password or token, shows neither."""
    url = "https://bob:s3cretpw@h.example/in?token=tok-123456"
    text = scrub(f"InvalidURL: {url}; retry with s3cretpw and tok-123456", url)
    assert "s3cretpw" not in text
    assert "tok-123456" not in text
    assert "https://***@h.example/in?token=***" in text
    assert set(url_secrets(url)) >= {"bob:s3cretpw", "s3cretpw", "tok-123456"}


async def test_list_webhook_deliveries_masks_credentials(
    make_daemon: Callable[..., Daemon],
) -> None:
    """ListWebhookDeliveries shows the endpoint without its password or query token, and accepts
    that masked form (or the real URL) as a filter."""
    async with receiver() as r:
        url = r.url.replace("http://", "http://hookuser:hookpass99@") + "?token=qtoken-777"
        async with running(make_daemon(webhooks=hook(url))) as api:
            await api.create_account()
            job = await api.jobs.SchedulePin(api.pin_request(at=soon()))
            await wait_states(api, [job.id], {J.STATE_DELIVERED})
            await r.wait_until(lambda: len(r.acked) >= 1)
            listed = await stub(api).ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest()
            )
            by_masked = await stub(api).ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest(endpoint=mask_url(url))
            )
            by_real = await stub(api).ListWebhookDeliveries(
                webhook_pb2.ListWebhookDeliveriesRequest(endpoint=url)
            )
    assert listed.deliveries
    for d in listed.deliveries:
        assert "hookpass99" not in d.endpoint
        assert "qtoken-777" not in d.endpoint
        assert d.endpoint == mask_url(url)
    assert len(by_masked.deliveries) == len(by_real.deliveries) == len(listed.deliveries)


async def test_unknown_endpoint_error_does_not_quote_configured_credentials(
    make_daemon: Callable[..., Daemon],
) -> None:
    """RedeliverWebhooks naming an unknown endpoint lists the configured ones masked."""
    import grpc

    url = "http://user:topsecret1@127.0.0.1:9/hook?key=keysecret2"
    async with running(make_daemon(webhooks=hook(url))) as api:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub(api).RedeliverWebhooks(
                webhook_pb2.RedeliverWebhooksRequest(endpoint="http://nope/")
            )
    details = err.value.details() or ""
    assert "topsecret1" not in details
    assert "keysecret2" not in details
    assert mask_url(url) in details


def run_cli(
    *argv: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_config_check_masks_webhook_credentials_and_warns(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`pinsched config check` prints the webhook URL masked, and warns on stderr about a token
    sent without TLS on a non-loopback address, a short token, and unencrypted Pinterest
    tokens."""
    code, out, err = run_cli(
        "config",
        "check",
        monkeypatch=monkeypatch,
        env={
            "PINSCHED_WEBHOOK_URL": "https://u:pw-secret-1@hooks.example.com/in?token=tk-secret-2",
            "PINSCHED_WEBHOOK_SECRET": "whsec_" + "A" * 40,
            "PINSCHED_LISTEN": "0.0.0.0:50051",
            "PINSCHED_API_TOKEN": "short",
            "PINSCHED_DB": str(tmp_path / "p.db"),
        },
    )
    assert code == 0
    assert "pw-secret-1" not in out
    assert "tk-secret-2" not in out
    assert json.loads(out)["webhooks"][0]["url"] == ("https://***@hooks.example.com/in?token=***")
    assert "without TLS" in err
    assert "clear text" in err
    assert "the API token has 5 characters" in err
    assert "PINSCHED_SECRET_KEY" in err


def test_bad_webhook_url_error_is_masked() -> None:
    """A rejected webhook URL is quoted masked in the configuration error."""
    with pytest.raises(ConfigError) as err:
        load_config(
            None,
            {
                "PINSCHED_WEBHOOK_URL": "ftp://u:pw-secret-3@h/x?t=tk-secret-4",
                "PINSCHED_WEBHOOK_SECRET": "whsec_" + "A" * 40,
            },
            None,
        )
    assert "pw-secret-3" not in str(err.value)
    assert "tk-secret-4" not in str(err.value)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"listen": "0.0.0.0:1", "api_token": "x" * 32}, ["clear text", "PINSCHED_SECRET_KEY"]),
        (
            {"listen": "0.0.0.0:1", "allow_insecure_listen": True, "secret_key": "k" * 20},
            ["without TLS nor an API token"],
        ),
        ({"listen": "127.0.0.1:1", "api_token": "abc", "secret_key": "k" * 20}, ["3 characters"]),
        ({"listen": "127.0.0.1:1", "api_token": "x" * 32, "secret_key": "k" * 20}, []),
    ],
)
def test_security_warnings(settings: dict[str, object], expected: list[str]) -> None:
    """Each unsafe-but-allowed setting gives one warning naming what to do; a safe one none."""
    got = security.warnings(Config(**settings))  # type: ignore[arg-type]
    assert len(got) == len(expected)
    for text, needle in zip(got, expected, strict=True):
        assert needle in text


async def test_daemon_logs_the_warnings_at_start(make_daemon: Callable[..., Daemon]) -> None:
    """Start-up logs `insecure_config` for unencrypted Pinterest tokens (no secret key)."""
    daemon = make_daemon()
    with structlog.testing.capture_logs() as captured:
        await daemon.start()
        await daemon.stop(grace_s=0.1)
    warned = [e["warning"] for e in captured if e["event"] == "insecure_config"]
    assert len(warned) == 1
    assert "stored unencrypted" in warned[0]


def test_short_api_token_is_masked_in_logs() -> None:
    """A 4-character API token is masked in log lines like a long one."""
    logs.register_secrets(["Zq7w"])
    event = logs._redact(None, "info", {"event": "call", "header": "Bearer Zq7w"})
    assert event["header"] == "Bearer ***"


@pytest.mark.parametrize(
    "host", ["::169.254.169.254", "::a9fe:a9fe", "::ffff:169.254.169.254", "::169.254.170.2"]
)
def test_ipv4_compatible_metadata_address_is_refused(host: str) -> None:
    """The IPv4-compatible IPv6 form of a metadata address is refused like the plain one, at
    configuration and when the address is checked."""
    assert address_problem(host) is not None
    assert host_problem(f"[{host}]") is not None
    with pytest.raises(ConfigError, match="link-local"):
        load_config(
            None,
            {
                "PINSCHED_WEBHOOK_URL": f"http://[{host}]/hook",
                "PINSCHED_WEBHOOK_SECRET": "whsec_" + "A" * 40,
            },
            None,
        )
    assert address_problem("::1") is None
    assert address_problem("::") is None
