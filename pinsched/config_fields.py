"""The configuration's field table and value parsers: each `Config` field's parser, command-line
flag and environment variable (`FIELDS`), the webhook variables (`WEBHOOK_ENV`), and
`ConfigError`. Pure: no I/O.

A parser takes `(raw, where)`: `raw` is a str from the environment or a flag, or any TOML value;
`where` names the source and key for the error message. Secret values never appear in an error.
Layering, webhooks and the cross-field checks are `pinsched.config`'s.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from pinsched.ops.masking import mask_url
from pinsched.store.location import check_db

LOG_LEVELS: Final = frozenset({"debug", "info", "warning", "error", "critical"})
LOG_FORMATS: Final = frozenset({"json", "console"})


class ConfigError(ValueError):
    """A configuration value is missing, malformed or inconsistent; the message names its source."""


# ---------------------------------------------------------------------------------------------
# Value parsers: (raw value, where) -> typed value. `raw` is a str from the environment or flags,
# or any TOML value. `where` names the source and key for the error message.

Parser = Callable[[object, str], Any]


def fail(where: str, expected: str, raw: object, *, secret: bool = False) -> ConfigError:
    shown = "a value that is not shown (secret)" if secret else repr(raw)
    return ConfigError(f"{where}: expected {expected}, got {shown}")


def parse_string(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise fail(where, "a non-empty string", raw)
    return raw.strip()


def parse_database(raw: object, where: str) -> str:
    """A SQLite file path or a postgresql:// URL (`pinsched.store.location`)."""
    text = parse_string(raw, where)
    try:
        return check_db(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_secret(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise fail(where, "a non-empty string", raw, secret=True)
    return raw.strip()


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_host_port(raw: object, where: str) -> str:
    text = raw.strip() if isinstance(raw, str) else ""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host_ok = is_ip(host[1:-1])
    else:
        host_ok = bool(host) and all(c.isalnum() or c in ".-_" for c in host)
    if not (sep and host_ok and port.isdigit() and int(port) <= 65535):
        raise fail(where, "host:port", raw)
    return text


def parse_host_port_or_off(raw: object, where: str) -> str | None:
    if isinstance(raw, str) and raw.strip().lower() == "off":
        return None
    try:
        return parse_host_port(raw, where)
    except ConfigError:
        raise fail(where, "host:port or off", raw) from None


def parse_http_url(raw: object, where: str) -> str:
    text = raw.strip() if isinstance(raw, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(where, "an http(s) URL", mask_url(raw) if isinstance(raw, str) else raw)
    return text.rstrip("/")


def choice(options: frozenset[str]) -> Parser:
    def parse(raw: object, where: str) -> str:
        text = raw.strip().lower() if isinstance(raw, str) else ""
        if text not in options:
            raise fail(where, "one of " + ", ".join(sorted(options)), raw)
        return text

    return parse


def parse_number(raw: object, where: str, *, integer: bool) -> int | float:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and not integer:
        return raw
    if isinstance(raw, str):
        try:
            return int(raw.strip()) if integer else float(raw.strip())
        except ValueError:
            pass
    raise fail(where, "an integer" if integer else "a number", raw)


def float_at_least(minimum: float, *, strict: bool = False) -> Parser:
    def parse(raw: object, where: str) -> float:
        value = float(parse_number(raw, where, integer=False))
        if not math.isfinite(value):
            raise fail(where, "a finite number", raw)
        if value < minimum or (strict and value == minimum):
            raise fail(where, f"a number {'>' if strict else '>='} {minimum:g}", raw)
        return value

    return parse


def int_at_least(minimum: int) -> Parser:
    def parse(raw: object, where: str) -> int:
        value = int(parse_number(raw, where, integer=True))
        if value < minimum:
            raise fail(where, f"an integer >= {minimum}", raw)
        return value

    return parse


def parse_bool(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = raw.strip().lower() if isinstance(raw, str) else ""
    if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise fail(where, "true or false", raw)
    return text in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Field:
    parse: Parser
    flag: str | None = None  # command-line flag; its argparse dest is the field name
    help: str = ""
    env: str = ""  # environment variable; default PINSCHED_<FIELD NAME>


FIELDS: Final[Mapping[str, Field]] = {
    "listen": Field(parse_host_port, "--listen", "gRPC address, host:port"),
    "http_listen": Field(
        parse_host_port_or_off, "--http-listen", "HTTP/JSON API address, host:port, or off"
    ),
    "db_path": Field(
        parse_database, "--db", "SQLite database file or postgresql:// URL", env="PINSCHED_DB"
    ),
    "pinterest_api_base": Field(parse_http_url, "--pinterest-api-base", "Pinterest API base URL"),
    "pinterest_client_id": Field(parse_string),
    "pinterest_client_secret": Field(parse_secret),
    "api_token": Field(parse_secret),
    "tls_cert_file": Field(parse_string, "--tls-cert", "TLS certificate (PEM)"),
    "tls_key_file": Field(parse_string, "--tls-key", "TLS private key (PEM)"),
    "tls_client_ca_file": Field(
        parse_string, "--tls-client-ca", "CA of client certificates (mTLS)"
    ),
    "metrics_listen": Field(parse_host_port, "--metrics-listen", "Prometheus /metrics, host:port"),
    "health_listen": Field(parse_host_port, "--health-listen", "plain-text gRPC health, host:port"),
    "secret_key": Field(parse_secret),
    "log_level": Field(choice(LOG_LEVELS), "--log-level", "debug, info, warning, error"),
    "log_format": Field(choice(LOG_FORMATS), "--log-format", "json or console"),
    "clock_skew_tolerance_s": Field(float_at_least(0)),
    "horizon_days": Field(int_at_least(1)),
    "max_attempts": Field(int_at_least(0)),
    "retry_base_delay_s": Field(float_at_least(0, strict=True)),
    "retry_max_delay_s": Field(float_at_least(0, strict=True)),
    "request_timeout_s": Field(float_at_least(0, strict=True)),
    "pinterest_read_lag_s": Field(float_at_least(0)),
    "shutdown_grace_s": Field(float_at_least(0)),
    "app_writes_per_minute": Field(int_at_least(0)),
    "allow_insecure_listen": Field(
        parse_bool, "--allow-insecure-listen", "allow a non-loopback --listen without token or mTLS"
    ),
    "retention_days": Field(
        int_at_least(0),
        "--retention-days",
        "days settled jobs, their events and finished webhooks are kept (0: forever)",
    ),
    "verify_timeout_s": Field(float_at_least(0, strict=True)),
    "token_keeper": Field(parse_bool),
    "token_refreshes_per_second": Field(float_at_least(0, strict=True)),
    "token_retry_s": Field(float_at_least(0, strict=True)),
    "preflight_lead_time_s": Field(
        float_at_least(0),
        "--preflight-lead-time-s",
        "seconds before a pin's time its board, token and image are checked (0: off)",
    ),
    "media_lead_time_s": Field(float_at_least(0)),
    "cluster": Field(
        parse_bool,
        "--cluster",
        "share a PostgreSQL db_path with other daemons (account leases); without it the "
        "database is this daemon's alone",
    ),
    "cluster_lease_s": Field(float_at_least(1)),
    "media_grace_s": Field(float_at_least(0)),
}


def env_name(name: str) -> str:
    return FIELDS[name].env or f"PINSCHED_{name.upper()}"


WEBHOOK_ENV: Final = {
    "url": "PINSCHED_WEBHOOK_URL",
    "secrets": "PINSCHED_WEBHOOK_SECRET",  # comma-separated during a secret rotation
    "event_types": "PINSCHED_WEBHOOK_EVENT_TYPES",
    "account_ids": "PINSCHED_WEBHOOK_ACCOUNT_IDS",
    "timeout_s": "PINSCHED_WEBHOOK_TIMEOUT_S",
}


def split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def string_list(raw: object, where: str, *, secret: bool = False) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        if secret:
            raise ConfigError(f"{where}: expected a list of non-empty strings")
        raise fail(where, "a list of non-empty strings", raw)
    return tuple(s.strip() for s in raw)
