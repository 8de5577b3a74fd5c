"""Where the store lives: `db_path` (`--db`, `PINSCHED_DB`) is a SQLite file path (the default)
or a `postgresql://user[:password]@host[:port]/database[?…]` URL (`postgres://` too).

`check_db` validates the setting (one line naming `db_path` when it is wrong), `is_postgres`
tells the two apart, `redact` shows a URL without its password (logs, errors, warnings).
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")


def is_postgres(db: str) -> bool:
    """Whether *db* names a PostgreSQL database (a URL) rather than a SQLite file."""
    return db.split("://", 1)[0].lower() in SCHEMES and "://" in db


def check_db(db: str) -> str:
    """*db* when usable, else ValueError saying what is wrong (the caller names the field)."""
    if not db.strip():
        raise ValueError("must be a SQLite file path or a postgresql:// URL, not empty")
    if "://" not in db:
        return db  # a file path: opening checks its directory and contents
    scheme = db.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"{scheme}:// is not a supported database; give a SQLite file path or a "
            "postgresql://user@host:5432/database URL"
        )
    try:
        parts = urlsplit(db)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a valid PostgreSQL URL ({exc})") from None
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("the PostgreSQL URL names no host (postgresql://user@host:5432/db)")
    if not parts.path.strip("/"):
        raise ValueError("the PostgreSQL URL names no database (postgresql://user@host:5432/db)")
    return db


def redact(db: str) -> str:
    """*db* with the password of a URL replaced by `***` (file paths unchanged)."""
    if not is_postgres(db):
        return db
    try:
        parts = urlsplit(db)
        if parts.password is None:
            return db
    except ValueError:
        return db.split("://", 1)[0] + "://***"
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, ""))


def database_name(db: str) -> str:
    """The database name of a PostgreSQL URL (for the media directory's name)."""
    return urlsplit(db).path.strip("/") or "pinsched"
