"""Daemon configuration: the `Config` value and how it is loaded (DESIGN §8).

Owns the `Config` value and its defaults, the layering, webhook endpoints and the cross-field
checks; each field's parser, flag and environment variable are `pinsched.config_fields`.
Layers, lowest first: defaults < TOML file (`--config`, keys = field names, `[[webhooks]]`
tables) < environment (`PINSCHED_*`) < flags. An empty environment variable counts as unset. A
layer that sets `webhooks` replaces the lower layers' endpoints (the environment defines one
endpoint with `PINSCHED_WEBHOOK_URL` + `PINSCHED_WEBHOOK_SECRET`).

Every bad value raises `ConfigError` naming the source and key, for example
`PINSCHED_LISTEN: expected host:port, got 'abc'` or `pinsched.toml: horizon_days: ...`.
Secret values never appear in an error message nor in `Config.redacted()`.
Does not open sockets or databases, and does not read the environment itself: callers pass it.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from pinsched.config_fields import (
    FIELDS,
    WEBHOOK_ENV,
    env_name,
    float_at_least,
    parse_bool,
    parse_http_url,
    parse_secret,
    split_list,
    string_list,
)
from pinsched.config_fields import ConfigError as ConfigError
from pinsched.ops import listen
from pinsched.ops.masking import mask_url
from pinsched.store.location import is_postgres, redact
from pinsched.webhooks.policy import host_problem

__all__ = ["Config", "ConfigError", "WebhookEndpoint", "add_serve_arguments", "load_config"]

MASK: Final = "***"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEndpoint:
    """One webhook receiver: events are POSTed to `url`, signed with each of `secrets`."""

    url: str
    secrets: tuple[str, ...]
    event_types: tuple[str, ...] = ()  # empty: every event type
    account_ids: tuple[str, ...] = ()  # empty: every account
    timeout_s: float = 10.0

    def redacted(self) -> dict[str, Any]:
        """Return the endpoint as plain data with the secrets masked."""
        return {
            "url": mask_url(self.url),
            "secrets": [MASK for _ in self.secrets],
            "event_types": list(self.event_types),
            "account_ids": list(self.account_ids),
            "timeout_s": self.timeout_s,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The daemon's effective configuration; build it with `load_config` to get validation."""

    listen: str = "127.0.0.1:50051"
    http_listen: str | None = "127.0.0.1:8080"  # None: the HTTP/JSON API is off
    db_path: str = "./pinsched.db"
    pinterest_api_base: str = "https://api.pinterest.com/v5"
    pinterest_client_id: str | None = None
    pinterest_client_secret: str | None = None
    api_token: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    webhooks: tuple[WebhookEndpoint, ...] = ()
    metrics_listen: str | None = None
    health_listen: str | None = None  # plain-text health checks only (Docker HEALTHCHECK)
    secret_key: str | None = None
    log_level: str = "info"
    log_format: str = "json"
    clock_skew_tolerance_s: float = 60.0
    horizon_days: int = 400
    max_attempts: int = 0
    retry_base_delay_s: float = 2.0
    retry_max_delay_s: float = 3600.0
    request_timeout_s: float = 30.0
    pinterest_read_lag_s: float = 5.0
    shutdown_grace_s: float = 10.0
    app_writes_per_minute: int = 0
    allow_insecure_listen: bool = False
    retention_days: int = 30
    verify_timeout_s: float = 5.0
    token_keeper: bool = True
    token_refreshes_per_second: float = 5.0
    token_retry_s: float = 300.0
    #: How long before a job's planned time its pin is checked with Pinterest (0: never).
    preflight_lead_time_s: float = 900.0
    media_lead_time_s: float = 7200.0
    media_grace_s: float = 86400.0
    #: Several daemons on one PostgreSQL database (`pinsched.cluster`): each takes account
    #: leases; without it a daemon holds its database alone and a second one is refused.
    cluster: bool = False
    #: Several daemons on one PostgreSQL database: how long an account's lease (and a daemon's
    #: heartbeat) lasts without renewal; renewed every third of it (`pinsched.cluster`).
    cluster_lease_s: float = 10.0

    def redacted(self) -> dict[str, Any]:
        """Return every field as JSON-ready data, secrets replaced by `"***"` (unset stays None)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "webhooks":
                out[f.name] = [w.redacted() for w in value]
            elif f.name in SECRET_FIELDS and value is not None:
                out[f.name] = MASK
            elif f.name == "db_path":
                out[f.name] = redact(value)  # a PostgreSQL URL's password
            else:
                out[f.name] = value
        return out


SECRET_FIELDS: Final = frozenset({"pinterest_client_secret", "api_token", "secret_key"})


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the flags of `pinsched serve`; each defaults to None ("not given")."""
    for name, spec in FIELDS.items():
        if spec.flag is not None:
            action = "store_true" if spec.parse is parse_bool else "store"
            text = f"{spec.help} [env {env_name(name)}]"
            parser.add_argument(spec.flag, dest=name, action=action, default=None, help=text)


def load_config(
    args: argparse.Namespace | None, env: Mapping[str, str], config_path: str | None
) -> Config:
    """Merge defaults < TOML file < *env* < *args* into a validated `Config`."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if config_path is not None:
        _apply_file(config_path, values, origins)
    for name, spec in FIELDS.items():
        text = env.get(env_name(name), "")
        if text.strip():
            values[name] = spec.parse(text, env_name(name))
            origins[name] = env_name(name)
    webhook = _env_webhook(env)
    if webhook is not None:
        values["webhooks"] = (webhook,)
        origins["webhooks"] = WEBHOOK_ENV["url"]
    if args is not None:
        for name, spec in FIELDS.items():
            given = getattr(args, name, None)
            if spec.flag is not None and given is not None:
                values[name] = spec.parse(given, spec.flag)
                origins[name] = spec.flag
    config = Config(**values)
    _check_consistency(config, origins)
    return config


def _apply_file(path: str, values: dict[str, Any], origins: dict[str, str]) -> None:
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    for key, raw in data.items():
        where = f"{path}: {key}"
        if key == "webhooks":
            if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
                raise ConfigError(f"{where}: expected [[webhooks]] tables")
            values[key] = tuple(
                _webhook_from_table(table, f"{path}: webhooks[{i}]") for i, table in enumerate(raw)
            )
        elif key in FIELDS:
            values[key] = FIELDS[key].parse(raw, where)
        else:
            known = ", ".join(sorted([*FIELDS, "webhooks"]))
            raise ConfigError(f"{where}: unknown key (known keys: {known})")
        origins[key] = where


_WEBHOOK_KEYS: Final = frozenset(
    {"url", "secret", "secrets", "event_types", "account_ids", "timeout_s"}
)


def _webhook_from_table(table: Mapping[str, object], where: str) -> WebhookEndpoint:
    for key in table:
        if key not in _WEBHOOK_KEYS:
            known = ", ".join(sorted(_WEBHOOK_KEYS))
            raise ConfigError(f"{where}.{key}: unknown key (known keys: {known})")
    if "secret" in table and "secrets" in table:
        raise ConfigError(f"{where}: give `secret` or `secrets`, not both")
    if "secret" in table:
        secrets: tuple[str, ...] = (parse_secret(table["secret"], f"{where}.secret"),)
    else:
        secrets = string_list(table.get("secrets"), f"{where}.secrets", secret=True)
    return _webhook(
        url=table.get("url"),
        secrets=secrets,
        event_types=string_list(table.get("event_types", []), f"{where}.event_types"),
        account_ids=string_list(table.get("account_ids", []), f"{where}.account_ids"),
        timeout_s=table.get("timeout_s", 10.0),
        where={k: f"{where}.{k}" for k in ("url", "secrets", "event_types", "timeout_s")},
    )


def _env_webhook(env: Mapping[str, str]) -> WebhookEndpoint | None:
    raw = {k: env.get(var, "").strip() for k, var in WEBHOOK_ENV.items()}
    if not raw["url"] and not raw["secrets"]:
        others = [WEBHOOK_ENV[k] for k in ("event_types", "account_ids", "timeout_s") if raw[k]]
        if others:
            raise ConfigError(f"{others[0]}: set only together with {WEBHOOK_ENV['url']}")
        return None
    return _webhook(
        url=raw["url"] or None,
        secrets=split_list(raw["secrets"]),
        event_types=split_list(raw["event_types"]),
        account_ids=split_list(raw["account_ids"]),
        timeout_s=raw["timeout_s"] or 10.0,
        where=WEBHOOK_ENV,
    )


def _webhook(
    *,
    url: object,
    secrets: tuple[str, ...],
    event_types: tuple[str, ...],
    account_ids: tuple[str, ...],
    timeout_s: object,
    where: Mapping[str, str],
) -> WebhookEndpoint:
    if url is None:
        raise ConfigError(f"{where['url']}: required for a webhook endpoint")
    checked_url = parse_http_url(url, where["url"])
    if (problem := host_problem(urlsplit(checked_url).hostname or "")) is not None:
        raise ConfigError(f"{where['url']}: link-local / metadata addresses are refused: {problem}")
    if not secrets:
        raise ConfigError(f"{where['secrets']}: a webhook endpoint needs a signing secret")
    _check_webhook_rules(secrets, event_types, where)
    return WebhookEndpoint(
        url=checked_url,
        secrets=secrets,
        event_types=event_types,
        account_ids=account_ids,
        timeout_s=float_at_least(0, strict=True)(timeout_s, where["timeout_s"]),
    )


def _check_webhook_rules(
    secrets: tuple[str, ...], event_types: tuple[str, ...], where: Mapping[str, str]
) -> None:
    """The sender's own rules for secrets and event types, reported under their key."""
    from pinsched.webhooks.messages import decode_secret, pattern_problem

    for n, secret in enumerate(secrets, start=1):
        try:
            decode_secret(secret)
        except ValueError as exc:
            raise ConfigError(f"{where['secrets']}: secret #{n}: {exc}") from None
    for pattern in event_types:
        if (why := pattern_problem(pattern)) is not None:
            raise ConfigError(f"{where['event_types']}: {why}")


def _check_consistency(config: Config, origins: Mapping[str, str]) -> None:
    def src(name: str) -> str:
        return origins.get(name) or " / ".join(filter(None, (FIELDS[name].flag, env_name(name))))

    if (config.tls_cert_file is None) != (config.tls_key_file is None):
        given = "tls_cert_file" if config.tls_cert_file is not None else "tls_key_file"
        missing = "tls_key_file" if given == "tls_cert_file" else "tls_cert_file"
        raise ConfigError(f"{src(given)}: {given} needs {missing} too ({src(missing)})")
    if config.tls_client_ca_file is not None and config.tls_cert_file is None:
        raise ConfigError(
            f"{src('tls_client_ca_file')}: mutual TLS needs tls_cert_file and tls_key_file"
        )
    for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        path = getattr(config, name)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{src(name)}: no such file: {path!r}")
    if (config.pinterest_client_id is None) != (config.pinterest_client_secret is None):
        given = "pinterest_client_id" if config.pinterest_client_id else "pinterest_client_secret"
        raise ConfigError(
            f"{src(given)}: set PINSCHED_PINTEREST_CLIENT_ID and "
            "PINSCHED_PINTEREST_CLIENT_SECRET together"
        )
    if config.cluster and not is_postgres(config.db_path):
        raise ConfigError(
            f"{src('cluster')}: several daemons share only a PostgreSQL database; db_path "
            f"{config.db_path!r} is a SQLite file ({src('db_path')}), which one daemon holds alone"
        )
    if config.retry_max_delay_s < config.retry_base_delay_s:
        raise ConfigError(
            f"{src('retry_max_delay_s')}: retry_max_delay_s ({config.retry_max_delay_s:g}) is "
            f"below retry_base_delay_s ({config.retry_base_delay_s:g})"
        )
    for name in listen.exposed(
        {"listen": config.listen, "http_listen": config.http_listen},
        authenticated=bool(config.api_token) or config.tls_client_ca_file is not None,
        allow_insecure=config.allow_insecure_listen,
    ):
        address = getattr(config, name)
        raise ConfigError(
            f"{src(name)}: {address} is not a loopback address; set PINSCHED_API_TOKEN "
            "or mutual TLS (tls_client_ca_file), or pass --allow-insecure-listen"
        )
