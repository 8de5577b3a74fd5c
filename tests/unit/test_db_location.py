"""`db_path` (`--db`, `PINSCHED_DB`, TOML): a SQLite file or a postgresql:// URL, validated with
one line naming the setting, its password never shown."""

from __future__ import annotations

import pytest

from pinsched.config import ConfigError, load_config
from pinsched.media.assets import media_dir
from pinsched.store.location import is_postgres, redact


@pytest.mark.parametrize(
    "value",
    [
        "./pinsched.db",
        "/var/lib/pinsched/p.db",
        "postgresql://pinsched@db.internal:5432/pinsched",
        "postgres://u:pw@127.0.0.1/p?sslmode=require",
    ],
)
def test_paths_and_postgresql_urls_are_accepted(value: str) -> None:
    """A file path keeps SQLite; postgresql:// and postgres:// URLs select PostgreSQL."""
    cfg = load_config(None, {"PINSCHED_DB": value}, None)
    assert cfg.db_path == value
    assert is_postgres(cfg.db_path) == value.startswith("postgres")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("mysql://u@h/db", "mysql:// is not a supported database"),
        ("postgresql://u@:5432/db", "names no host"),
        ("postgresql://u@h:5432/", "names no database"),
        ("postgresql://u@h:99999/db", "not a valid PostgreSQL URL"),
        ("postgresql://u@h:port/db", "not a valid PostgreSQL URL"),
    ],
)
def test_bad_database_settings_are_one_line_naming_the_setting(value: str, says: str) -> None:
    """Each wrong value is refused at start-up with one line naming PINSCHED_DB and the cause."""
    with pytest.raises(ConfigError) as refused:
        load_config(None, {"PINSCHED_DB": value}, None)
    text = str(refused.value)
    assert text.startswith("PINSCHED_DB: ")
    assert says in text
    assert "\n" not in text


def test_the_password_of_a_url_is_never_shown() -> None:
    """The shown configuration and `redact` replace a URL's password by ***."""
    url = "postgresql://app:s3cret@db:5432/pins"
    cfg = load_config(None, {"PINSCHED_DB": url}, None)
    assert cfg.redacted()["db_path"] == "postgresql://app:***@db:5432/pins"
    assert redact("./file.db") == "./file.db"
    assert redact("postgresql://app@db/pins") == "postgresql://app@db/pins"


def test_a_postgresql_daemon_keeps_uploads_in_the_working_directory() -> None:
    """Uploaded videos go beside a SQLite file, or to pinsched-<database>.media for a URL."""
    assert str(media_dir("/d/p.db")) == "/d/p.db.media"
    assert str(media_dir("postgresql://u:pw@h/pins")) == "pinsched-pins.media"
