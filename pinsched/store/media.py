"""Inline images in the store: their bytes live once per content hash in the `media` table;
jobs, events and everything read from them carry the reference (`ImageBase64` with `sha256`,
`size`, `content_type`, no bytes). The bytes are read back only where they are needed: to
publish the pin, for GetJob's full view, and to keep an image through an UpdateJob.

Rows are written by the job writes themselves (`rows._store_media`, same transaction) and
dropped by triggers when no job uses them any more (schema migration 5 → 6).
"""

from __future__ import annotations

import dataclasses

from pinsched.core.errors import StorageUnavailable
from pinsched.core.jobs import ImageBase64, Job, PinSpec
from pinsched.store.driver import Reader


class MediaMixin:
    """Reading image bytes back; mixed into `Store`."""

    _reader: Reader

    async def media_bytes(self, sha256: str) -> bytes | None:
        """The bytes of the image *sha256*, or None if no job uses it."""
        rows = list(
            await self._reader.execute_fetchall(
                "SELECT data FROM media WHERE sha256 = ?", (sha256,)
            )
        )
        return bytes(rows[0][0]) if rows else None

    async def load_pin(self, pin: PinSpec) -> PinSpec:
        """*pin* with its inline image's bytes (unchanged when it has none to load)."""
        media = pin.media
        if not isinstance(media, ImageBase64) or media.loaded:
            return pin
        data = await self.media_bytes(media.sha256)
        if data is None:
            raise StorageUnavailable(
                f"the inline image {media.sha256} is missing from the database"
            )
        return dataclasses.replace(
            pin,
            media=ImageBase64(
                content_type=media.content_type, data=data, sha256=media.sha256, size=media.size
            ),
        )

    async def load_job(self, job: Job) -> Job:
        """*job* with its inline image's bytes."""
        pin = await self.load_pin(job.pin)
        return job if pin is job.pin else dataclasses.replace(job, pin=pin)
