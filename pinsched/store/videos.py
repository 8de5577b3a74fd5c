"""Store reads for video staging (`pinsched.media.staging`) and the media directory's sweep."""

from __future__ import annotations

from pinsched.core.jobs import Job
from pinsched.store.driver import Backend, Reader
from pinsched.store.rows import _ACTIVE_SQL, _JOB_COLUMNS, _job_from_row


def video_sql(video_url: str) -> str:
    """The active video jobs; its WHERE is the partial index `jobs_video`'s, term for term
    (the planners use a partial index only when the query's conditions imply its own)."""
    return (
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ({_ACTIVE_SQL}) "
        f"AND (video_asset IS NOT NULL OR {video_url} IS NOT NULL)"
    )


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

    async def video_jobs(self, account_id: str | None = None) -> list[Job]:
        """Active jobs whose video pinsched stages (`video_url` / `video_asset`), of one
        account or of all; read through the partial index `jobs_video`, whatever the backlog."""
        sql = video_sql(self._db.dialect.json_text("pin", "media", "video_url"))
        if account_id is None:
            rows = await self._reader.execute_fetchall(sql)
        else:
            rows = await self._reader.execute_fetchall(f"{sql} AND account_id = ?", (account_id,))
        return [_job_from_row(tuple(r)) for r in rows]
