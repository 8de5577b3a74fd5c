"""Uploaded videos on disk: the media directory beside the database (`<db>.media/`).

Each upload is streamed to a temporary file while its SHA-256 is computed, fsynced, then
renamed to `<sha256>` (and the directory fsynced) before it is acknowledged: the asset id *is*
the hash, so the same bytes uploaded twice are stored once. A small `<sha256>.json` beside it
says the content type, size and when it arrived (on the daemon's clock). The bytes never enter
SQLite; jobs name them (`VideoAsset.asset_id`, indexed by the store).

`sweep` removes an asset that no job refers to once `grace_s` passed since it arrived (so an
upload made for a job that is scheduled a little later is kept); `clean_partials` removes the
temporary files of uploads a crash interrupted.
Type and size limits are Pinterest's (`pinsched.core.video`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Final

import structlog

from pinsched.clock import Clock, sleep_or_wake
from pinsched.core.errors import InvalidArgument, StorageUnavailable
from pinsched.core.video import VIDEO_CONTENT_TYPES, VIDEO_MAX_BYTES
from pinsched.store.location import database_name, is_postgres

log = structlog.get_logger("pinsched.media.assets")

#: How often unreferenced assets are looked for.
SWEEP_EVERY_S: Final = 3600.0
_TMP: Final = ".part-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """A stored upload."""

    asset_id: str  # == sha256
    size: int
    content_type: str
    received_at: datetime

    @property
    def sha256(self) -> str:
        return self.asset_id


def media_dir(db_path: str) -> Path:
    """The media directory of the database *db_path*: beside a SQLite file, or
    `pinsched-<database>.media` in the working directory for a PostgreSQL URL."""
    if is_postgres(db_path):
        return Path(f"pinsched-{database_name(db_path)}.media")
    return Path(f"{db_path}.media")


class MediaAssets:
    """The media directory: receive, read and sweep uploaded videos."""

    def __init__(self, directory: Path, clock: Clock, *, max_bytes: int = VIDEO_MAX_BYTES) -> None:
        self.directory = directory
        self.clock = clock
        self.max_bytes = max_bytes

    def path(self, asset_id: str) -> Path:
        return self.directory / asset_id

    def get(self, asset_id: str) -> Asset | None:
        """The asset *asset_id*, or None when it is not stored."""
        try:
            meta = json.loads((self.directory / f"{asset_id}.json").read_text())
        except (OSError, ValueError):
            return None
        if not self.path(asset_id).exists():
            return None
        return Asset(
            asset_id=asset_id,
            size=int(meta["size"]),
            content_type=meta["content_type"],
            received_at=datetime.fromisoformat(meta["received_at"]),
        )

    async def receive(self, content_type: str, chunks: AsyncIterator[bytes]) -> Asset:
        """Store the bytes of *chunks*; InvalidArgument for a type or size Pinterest refuses
        (nothing is kept then), StorageUnavailable when the disk refuses the write."""
        if content_type not in VIDEO_CONTENT_TYPES:
            raise InvalidArgument.one(
                "content_type",
                f"must be one of {', '.join(VIDEO_CONTENT_TYPES)} (Pinterest's "
                f"video types); got {content_type!r}",
            )
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
            tmp = self.directory / f"{_TMP}{uuid.uuid4().hex}"
            f = await asyncio.to_thread(tmp.open, "wb")
        except OSError as exc:
            raise StorageUnavailable(f"media directory {self.directory}: {exc}") from None
        digest, size = hashlib.sha256(), 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise InvalidArgument.one(
                        "data", f"a video is at most {self.max_bytes} bytes (Pinterest's limit)"
                    )
                digest.update(chunk)
                await asyncio.to_thread(f.write, chunk)
            if size == 0:
                raise InvalidArgument.one("data", "required: the video bytes")
            await asyncio.to_thread(_sync_close, f)
            asset_id = digest.hexdigest()
            asset = Asset(
                asset_id=asset_id,
                size=size,
                content_type=content_type,
                received_at=self.clock.now(),
            )
            await asyncio.to_thread(self._commit, tmp, asset)
        except BaseException:
            with contextlib.suppress(OSError):
                f.close()
                tmp.unlink()
            raise
        log.info("media_received", asset_id=asset_id, size=size, content_type=content_type)
        return asset

    def _commit(self, tmp: Path, asset: Asset) -> None:
        try:
            meta = self.directory / f"{asset.asset_id}.json"
            meta_tmp = self.directory / f"{_TMP}{asset.asset_id}.json"
            with meta_tmp.open("w") as f:
                json.dump(
                    {
                        "content_type": asset.content_type,
                        "size": asset.size,
                        "received_at": asset.received_at.isoformat(),
                    },
                    f,
                )
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(asset.asset_id))
            os.replace(meta_tmp, meta)
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageUnavailable(f"media directory {self.directory}: {exc}") from None

    def clean_partials(self) -> None:
        """Remove the temporary files of uploads a crash interrupted (call before serving)."""
        if self.directory.is_dir():
            for entry in self.directory.glob(f"{_TMP}*"):
                with contextlib.suppress(OSError):
                    entry.unlink()

    async def run(
        self, stop: asyncio.Event, grace_s: float, in_use: Callable[[str], Awaitable[bool]]
    ) -> None:
        """Sweep every `SWEEP_EVERY_S` of the clock until *stop* is set."""
        while not stop.is_set():
            try:
                await self.sweep(grace_s, in_use)
            except Exception:
                log.exception("media_sweep_failed")
            await sleep_or_wake(self.clock, SWEEP_EVERY_S, stop)

    async def sweep(self, grace_s: float, in_use: Callable[[str], Awaitable[bool]]) -> int:
        """Remove assets older than *grace_s* that no job refers to; return how many."""
        if not self.directory.is_dir():
            return 0
        now = self.clock.now()
        removed = 0
        for entry in sorted(self.directory.iterdir()):
            name = entry.name
            if name.startswith(_TMP) or name.endswith(".json"):
                continue
            asset = self.get(name)
            if asset is None or (now - asset.received_at).total_seconds() < grace_s:
                continue
            if await in_use(name):
                continue
            for p in (entry, self.directory / f"{name}.json"):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            removed += 1
            log.info("media_removed", asset_id=name)
        return removed


def _sync_close(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()
