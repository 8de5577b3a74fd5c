"""Store reads for video staging (`pinsched.media.staging`) and the media directory's sweep."""

from __future__ import annotations

from pinsched.core.jobs import Job
from pinsched.store.driver import Backend, Reader
from pinsched.store.rows import _ACTIVE_SQL, _JOB_COLUMNS, _job_from_row


class VideoMixin:
    """Mixed into `Store`."""

    _reader: Reader
    _db: Backend

    async def asset_in_use(self, asset_id: str) -> bool:
        """Whether any job (in any state) names the uploaded video *asset_id*."""
        rows = list(
            await self._reader.execute_fetchall(
                "SELECT 1 FROM jobs WHERE video_asset = ? LIMIT 1", (asset_id,)
            )
        )
        return bool(rows)

    async def video_jobs(self) -> list[Job]:
        """Active jobs whose video pinsched stages (`video_url` / `video_asset`)."""
        url = self._db.dialect.json_text("pin", "media", "video_url")
        rows = await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ({_ACTIVE_SQL}) AND "
            f"(video_asset IS NOT NULL OR {url} IS NOT NULL)"
        )
        return [_job_from_row(tuple(r)) for r in rows]
