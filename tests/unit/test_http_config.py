"""`http_listen` (`--http-listen`, `PINSCHED_HTTP_LISTEN`, TOML): parsing, `off`, errors naming
the source, and the listen policy shared with the gRPC address."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pinsched import security
from pinsched.config import Config, ConfigError, add_serve_arguments, load_config


def _flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(argv)


def test_default_and_off() -> None:
    """The default is 127.0.0.1:8080; `off` (any case) from any layer turns the door off."""
    assert load_config(None, {}, None).http_listen == "127.0.0.1:8080"
    assert load_config(None, {"PINSCHED_HTTP_LISTEN": "OFF"}, None).http_listen is None
    assert load_config(_flags("--http-listen", "off"), {}, None).http_listen is None


def test_layers(tmp_path: Path) -> None:
    """TOML < environment < flag, like every other key."""
    path = tmp_path / "pinsched.toml"
    path.write_text('http_listen = "127.0.0.1:9001"\n')
    assert load_config(None, {}, str(path)).http_listen == "127.0.0.1:9001"
    env = {"PINSCHED_HTTP_LISTEN": "127.0.0.1:9002"}
    assert load_config(None, env, str(path)).http_listen == "127.0.0.1:9002"
    flags = _flags("--http-listen", "[::1]:9003")
    assert load_config(flags, env, str(path)).http_listen == "[::1]:9003"


@pytest.mark.parametrize("bad", ["abc", "127.0.0.1", "127.0.0.1:99999", ":8080", "of"])
def test_bad_values_name_the_source(bad: str) -> None:
    """A malformed value is refused naming the variable and what is expected."""
    with pytest.raises(ConfigError, match=r"PINSCHED_HTTP_LISTEN: expected host:port or off"):
        load_config(None, {"PINSCHED_HTTP_LISTEN": bad}, None)


def test_toml_type_error_names_the_key(tmp_path: Path) -> None:
    """A TOML value of the wrong type names the file and key."""
    path = tmp_path / "pinsched.toml"
    path.write_text("http_listen = 8080\n")
    with pytest.raises(ConfigError, match=r"pinsched.toml: http_listen: expected host:port or off"):
        load_config(None, {}, str(path))


def test_non_loopback_http_needs_a_token_or_mtls() -> None:
    """A non-loopback HTTP address without caller authentication is refused (naming the key);
    with a token, or with the door off, it is accepted."""
    with pytest.raises(ConfigError, match=r"--http-listen: 0.0.0.0:8080 is not a loopback"):
        load_config(_flags("--http-listen", "0.0.0.0:8080"), {}, None)
    ok = load_config(_flags("--http-listen", "0.0.0.0:8080"), {"PINSCHED_API_TOKEN": "t0ken"}, None)
    assert ok.http_listen == "0.0.0.0:8080"
    assert load_config(_flags("--http-listen", "off", "--listen", "127.0.0.1:1"), {}, None)


def test_daemon_policy_covers_the_http_address() -> None:
    """`security.check_listen_policy` (run by Daemon.start) refuses an open HTTP address too."""
    with pytest.raises(security.InsecureListen, match=r"0\.0\.0\.0:8080"):
        security.check_listen_policy(Config(http_listen="0.0.0.0:8080"))
    security.check_listen_policy(Config(http_listen="0.0.0.0:8080", api_token="t"))
    security.check_listen_policy(Config(http_listen=None))


def test_bearer_matches() -> None:
    """The one bearer check of both doors: exact `Bearer <token>`, str or bytes."""
    assert security.bearer_matches("Bearer abc", "abc")
    assert security.bearer_matches(b"Bearer abc", "abc")
    assert not security.bearer_matches("Bearer abd", "abc")
    assert not security.bearer_matches("abc", "abc")
    assert not security.bearer_matches("", "abc")
