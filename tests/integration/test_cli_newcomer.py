"""What a newcomer meets first: the CLI and the client fail once, clearly, with an exit code.

Against the real daemon in-process (sandbox as Pinterest); the process-level endings (a broken
pipe, Ctrl-C, a port in use) run `python -m pinsched` as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pinsched.app import Daemon
from pinsched.cli.args import hoist_connection_flags
from pinsched.cli.errors import cli_words
from pinsched.cli.main import main
from pinsched_client import AsyncClient, check_api_token
from tests.conftest import ACCESS, BOARD
from tests.e2e.procs import ROOT

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def target(make_daemon: Callable[..., Daemon]) -> AsyncIterator[str]:
    daemon = make_daemon()
    await daemon.start()
    try:
        yield f"127.0.0.1:{daemon.port}"
    finally:
        await daemon.stop()


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def _pinsched(*argv: str, **options: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINSCHED_")}
    proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "pinsched", *argv], cwd=ROOT, env=env, text=True, **options
    )
    return proc


async def test_invalid_argument_is_printed_once_in_the_clis_words(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DST refusal is one message naming --nonexistent and --at, never the API's field names."""
    assert (
        await _cli("accounts", "create", "acme", "--access-token", ACCESS, "--target", target) == 0
    )
    capsys.readouterr()
    code = await _cli(
        "schedule",
        "--account",
        "acme",
        "--board",
        BOARD,
        "--title",
        "t",
        "--image-url",
        "https://x.test/a.jpg",
        "--local",
        "2027-03-14T02:30",
        "--tz",
        "America/New_York",
        "--target",
        target,
    )
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("does not exist in America/New_York") == 1
    assert err.startswith("INVALID_ARGUMENT: --local: 2027-03-14T02:30 does not exist")
    assert "choose with --nonexistent shift-forward, or give --at" in err
    assert "nonexistent_time_policy" not in err
    assert "scheduled_at" not in err


async def test_an_unknown_account_hint_names_the_verb(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scheduling for an account that does not exist points at `pinsched accounts create`."""
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code = await _cli(
        "schedule",
        "--account",
        "nobody",
        "--board",
        BOARD,
        "--title",
        "t",
        "--image-url",
        "https://x.test/a.jpg",
        "--at",
        at,
        "--target",
        target,
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "`pinsched accounts create`" in err
    assert "CreateAccount" not in err


async def test_connection_flags_work_before_the_verb(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pinsched --target X --json accounts list` works like the flags after the verb."""
    assert (
        await _cli("--target", target, "accounts", "create", "acme", "--access-token", ACCESS) == 0
    )
    capsys.readouterr()
    assert await _cli("--target", target, "--json", "accounts", "list") == 0
    assert '"id": "acme"' in capsys.readouterr().out
    assert await _cli("--target", target, "health") == 0
    assert "SERVING" in capsys.readouterr().out


def test_hoisting_moves_only_leading_connection_flags() -> None:
    """Leading connection flags move after the command; anything else is left for argparse."""
    assert hoist_connection_flags(["--tls-ca", "ca.pem", "health"]) == [
        "health",
        "--tls-ca",
        "ca.pem",
    ]
    assert hoist_connection_flags(["--json", "--target=h:1", "get", "J", "--", "-x"]) == [
        "get",
        "J",
        "--json",
        "--target=h:1",
        "--",
        "-x",
    ]
    assert hoist_connection_flags(["--version"]) == ["--version"]
    assert hoist_connection_flags(["list", "--target", "h:1"]) == ["list", "--target", "h:1"]


async def test_documented_tls_form_reaches_the_tls_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`pinsched --tls-ca FILE health` is parsed: a missing CA file is reported by its flag."""
    assert await _cli("--tls-ca", "missing-ca.pem", "health") == 2
    err = capsys.readouterr().err
    assert err.startswith("pinsched: error: --tls-ca missing-ca.pem: ")
    assert "unrecognized" not in err


@pytest.mark.parametrize("token", ["…", "abc\ndef", "tök"])
async def test_a_token_that_is_no_header_value_is_refused_before_any_call(
    token: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-ASCII or control-character token exits 2 naming its flag or variable."""
    assert await _cli("list", "--api-token", token, "--target", "127.0.0.1:1") == 2
    err = capsys.readouterr().err
    assert err.startswith("pinsched: error: --api-token: ")
    assert "Traceback" not in err
    assert token not in err
    monkeypatch.setenv("PINSCHED_API_TOKEN", token)
    assert await _cli("list", "--target", "127.0.0.1:1") == 2
    assert capsys.readouterr().err.startswith("pinsched: error: PINSCHED_API_TOKEN: ")


async def test_the_client_reads_the_clis_environment(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AsyncClient() takes PINSCHED_TARGET and PINSCHED_API_TOKEN, and refuses a placeholder."""
    monkeypatch.setenv("PINSCHED_TARGET", target)
    monkeypatch.setenv("PINSCHED_API_TOKEN", "tok-123")
    client = AsyncClient()
    assert client.target == target
    assert client._metadata == (("authorization", "Bearer tok-123"),)
    monkeypatch.delenv("PINSCHED_API_TOKEN")
    async with AsyncClient() as anonymous:
        assert [a async for a in anonymous.iter_accounts()] == []
    with pytest.raises(ValueError, match=r"^api_token: a non-ASCII character at position 1"):
        AsyncClient(target, api_token="…")
    with pytest.raises(ValueError, match="leading or trailing spaces"):
        check_api_token(" tok")


@pytest.mark.parametrize("argv", [["list"], ["watch"], ["accounts", "list"]])
async def test_an_unreachable_daemon_is_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No daemon at the target: one line saying so, exit 14 (UNAVAILABLE), even for watch."""
    assert await _cli(*argv, "--target", "127.0.0.1:1", "--timeout", "2") == 14
    err = capsys.readouterr().err
    assert err == (
        "pinsched: cannot reach the daemon at 127.0.0.1:1: is `pinsched serve` "
        "running there? (set --target or PINSCHED_TARGET)\n"
    )


async def test_watch_stops_at_a_terminal_state_or_a_count(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`watch --until-terminal` returns once the job is DELIVERED; `--count N` after N events."""
    assert (
        await _cli("accounts", "create", "acme", "--access-token", ACCESS, "--target", target) == 0
    )
    at = datetime.now(UTC).isoformat()
    assert (
        await _cli(
            "schedule",
            "--account",
            "acme",
            "--board",
            BOARD,
            "--title",
            "t",
            "--image-url",
            "https://x.test/a.jpg",
            "--at",
            at,
            "--target",
            target,
        )
        == 0
    )
    capsys.readouterr()
    code = await asyncio.wait_for(
        _cli("watch", "--account", "acme", "--until-terminal", "--target", target), 30
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[-1].endswith("SUBMITTED → DELIVERED  published")
    assert await _cli("watch", "--since", "0", "--count", "2", "--target", target) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_version() -> None:
    """`pinsched --version` prints the installed version."""
    proc = _pinsched("--version", stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out.startswith("pinsched 0.")


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        (
            {
                "PINSCHED_WEBHOOK_URL": "http://127.0.0.1:9/h",
                "PINSCHED_WEBHOOK_SECRET": "whsec_short",
            },
            "PINSCHED_WEBHOOK_SECRET: secret #1:",
        ),
        (
            {
                "PINSCHED_WEBHOOK_URL": "http://127.0.0.1:9/h",
                "PINSCHED_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "PINSCHED_WEBHOOK_EVENT_TYPES": "job.deliverd",
            },
            "PINSCHED_WEBHOOK_EVENT_TYPES: unknown event type 'job.deliverd'",
        ),
        ({"PINSCHED_SECRET_KEY": "short"}, "PINSCHED_SECRET_KEY: key #1"),
        ({"PINSCHED_LISTEN": "0.0.0.0:50051"}, "PINSCHED_LISTEN: 0.0.0.0:50051 is not a loopback"),
    ],
)
async def test_config_check_refuses_what_serve_refuses(
    setting: dict[str, str],
    key: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`config check` exits 2 naming the key for settings `serve` refuses at start."""
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    assert await _cli("config", "check") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pinsched: error: {key}")
    assert "short" not in err.removeprefix("pinsched: error: PINSCHED_SECRET_KEY")


async def test_config_check_accepts_a_setting_serve_accepts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid webhook endpoint passes `config check` and is shown with its secret masked."""
    monkeypatch.setenv("PINSCHED_WEBHOOK_URL", "http://127.0.0.1:9/h")
    monkeypatch.setenv("PINSCHED_WEBHOOK_SECRET", WEBHOOK_SECRET)
    assert await _cli("config", "check") == 0
    out = capsys.readouterr().out
    assert '"url": "http://127.0.0.1:9/h"' in out
    assert WEBHOOK_SECRET not in out


async def test_config_check_runs_serves_start_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check only `serve`'s start made before (one URL configured twice) fails `config check`."""
    table = f'[[webhooks]]\nurl = "http://127.0.0.1:9/h"\nsecret = "{WEBHOOK_SECRET}"\n'
    path = tmp_path / "pinsched.toml"
    path.write_text(table + table)
    assert await _cli("config", "check", "--config", str(path)) == 2
    assert capsys.readouterr().err == (
        "pinsched: error: webhook http://127.0.0.1:9/h: configured twice\n"
    )


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`serve` on a taken port ends with one error line naming the address, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        proc = _pinsched(
            "serve",
            "--listen",
            address,
            "--http-listen",
            "off",
            "--db",
            str(tmp_path / "p.db"),
            "--log-level",
            "error",
            stderr=subprocess.PIPE,
        )
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"pinsched: error: listen {address}: cannot listen: the address is in use or not an "
        "address of this host (--listen / PINSCHED_LISTEN)"
    )


def test_a_sandbox_port_in_use_is_one_line_and_exit_2() -> None:
    """`pinsched sandbox` (`make sandbox`) on a taken port ends with one line, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _pinsched("sandbox", "--seed-demo", "--port", str(port), stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.startswith(f"pinsched: error: sandbox: cannot listen on 127.0.0.1:{port}: ")
    assert err.count("\n") == 1


async def test_a_closed_pipe_ends_quietly_with_141(target: str) -> None:
    """Output to a reader that went away (`| head`) exits 141 without a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = _pinsched(
            "accounts", "list", "--target", target, stdout=write_end, stderr=subprocess.PIPE
        )
    finally:
        os.close(write_end)
    _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert err == ""
    assert proc.returncode == 141
    assert err == ""


async def test_ctrl_c_ends_watch_with_one_line_and_130(target: str) -> None:
    """SIGINT during `watch` exits 130 with `pinsched: interrupted` and nothing else."""
    assert (
        await _cli("accounts", "create", "acme", "--access-token", ACCESS, "--target", target) == 0
    )
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        await _cli(
            "schedule",
            "--account",
            "acme",
            "--board",
            BOARD,
            "--title",
            "t",
            "--image-url",
            "https://x.test/a.jpg",
            "--at",
            at,
            "--target",
            target,
        )
        == 0
    )
    proc = _pinsched(
        "watch", "--since", "0", "--target", target, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.to_thread(proc.stdout.readline)  # the replay: inside the watch
        assert "PENDING" in first
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err == "pinsched: interrupted\n"


async def test_a_placeholder_pinterest_token_is_refused_locally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`accounts create --access-token "pina_…"` (the README's placeholder) exits 2, sends
    nothing, and says which flag."""
    code = await _cli(
        "accounts", "create", "acme", "--access-token", "pina_…", "--target", "127.0.0.1:1"
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        "pinsched: error: --access-token: a non-ASCII character at position 6;"
        " a Pinterest token is printable ASCII"
    )


def test_the_daemons_reasons_and_hints_read_in_cli_words() -> None:
    """Reasons and hints that name RPCs or fields come out with the CLI's verbs and flags."""
    assert cli_words("authorisation failed: re-authorise the account with UpdateAccount") == (
        "authorisation failed: re-authorise the account with `pinsched accounts update`"
    )
    assert cli_words("check the board, then RetryJob") == (
        "check the board, then `pinsched retry JOB_ID`"
    )
    assert cli_words("pin.title: at most 100 characters") == "--title: at most 100 characters"
    assert cli_words("pin.media_source.image_url.url: not a URL") == (
        "--image-url/--image-file/--video-id: not a URL"
    )
    assert cli_words("published") == "published"


async def test_watch_until_terminal_fails_when_a_job_did_not_publish(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job Pinterest refuses (a board the account does not have: PERMANENTLY_FAILED) makes
    `watch --until-terminal` exit 1 and say which job, so a script (or the README's example)
    cannot mistake it for success."""
    assert (
        await _cli("accounts", "create", "acme", "--access-token", ACCESS, "--target", target) == 0
    )
    at = datetime.now(UTC).isoformat()
    assert (
        await _cli(
            "schedule",
            "--account",
            "acme",
            "--board",
            "999999",
            "--title",
            "t",
            "--image-url",
            "https://x.test/a.jpg",
            "--at",
            at,
            "--target",
            target,
        )
        == 0
    )
    capsys.readouterr()
    code = await asyncio.wait_for(
        _cli("watch", "--account", "acme", "--until-terminal", "--target", target), 30
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("pinsched: 1 job did not publish: ")
    assert err.rstrip().endswith("FAILED (see `pinsched get JOB_ID`)")
