"""structlog setup: JSON lines (or console) on stderr, with secrets redacted.

Any key that looks like a credential is masked, and any value equal to a registered secret is
masked wherever it appears, so tokens never reach a log line even by accident.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "token",
        "secret",
        "authorization",
        "api_token",
        "client_secret",
        "password",
    }
)
_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact values in every log line from now on (however short: a short API token
    is still a credential; `security.warnings` tells the operator to use a longer one)."""
    _secrets.update(v for v in values if v)


#: Whether a log key names a credential, by key (keys come from the code: a small set).
_secret_key: dict[str, bool] = {}


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # On every log line: what each key is is remembered, and values are scanned only when
    # there are secrets to look for.
    secrets = _secrets
    for key, value in list(event.items()):
        hidden = _secret_key.get(key)
        if hidden is None:
            hidden = key.lower() in SECRET_KEYS
            if len(_secret_key) < 4096:
                _secret_key[key] = hidden
        if hidden:
            event[key] = "***"
        elif secrets and isinstance(value, str):
            for secret in secrets:
                if secret in value:
                    value = value.replace(secret, "***")
            event[key] = value
    return event


def configure(level: str = "info", fmt: str = "json") -> None:
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
