"""Videos pinsched stages on Pinterest itself: the `VideoUrl` and `VideoAsset` media sources,
the staging record a job carries (`MediaStage`), and Pinterest's video limits. Pure: no I/O.

A staged video becomes, at publish time, the `Video` (`video_id`) source Pinterest knows, with
the media id the staging recorded (`to_video_id`). `MediaStage.source` remembers which video was
staged, so that a job whose video changed (UpdateJob) is staged again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

#: Video types Pinterest accepts (.mp4, .mov, .m4v).
VIDEO_CONTENT_TYPES: Final = ("video/mp4", "video/quicktime", "video/x-m4v")
#: Pinterest's largest video file: 2 GiB.
VIDEO_MAX_BYTES: Final = 2 * 1024**3


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoUrl:
    """A video the daemon downloads from *url* and stages on Pinterest."""

    url: str
    cover_image_url: str = ""
    cover_image_key_frame_time: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoAsset:
    """A video uploaded to the daemon first (`UploadMedia`); `asset_id` is its sha256."""

    asset_id: str
    cover_image_url: str = ""
    cover_image_key_frame_time: int | None = None


StagedVideo = VideoUrl | VideoAsset

STAGING: Final = "STAGING"
READY: Final = "READY"
FAILED: Final = "FAILED"

#: Steps inside STAGING, in order (`MediaStage.step`).
STEP_WAITING: Final = ""  # nothing sent yet
STEP_REGISTERED: Final = "REGISTERED"  # POST /v5/media committed: media id and upload target
STEP_UPLOADED: Final = "UPLOADED"  # the bytes reached the upload target: polling


def source_key(media: StagedVideo) -> str:
    """What identifies the video to stage (not its cover): the URL or the asset id."""
    return f"url:{media.url}" if isinstance(media, VideoUrl) else f"asset:{media.asset_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaStage:
    """Where the staging of a job's video is. `upload_url`/`upload_parameters` are kept from
    the registration so that a restart uploads to it instead of registering again."""

    state: str  # STAGING | READY | FAILED
    source: str  # source_key() of the staged video
    started_at: datetime
    step: str = STEP_WAITING
    pinterest_media_id: str = ""
    detail: str = ""
    upload_url: str = ""
    upload_parameters: Mapping[str, str] | None = None
    asset_id: str = ""  # the bytes in the media directory (a downloaded URL is stored too)
    #: `upload_parameters` encrypted at rest (`pinsched.media.upload_secrets`); then those are None.
    sealed_parameters: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "source": self.source,
            "started_at": self.started_at.isoformat(),
            "step": self.step,
            "pinterest_media_id": self.pinterest_media_id,
            "detail": self.detail,
            "upload_url": self.upload_url,
            "upload_parameters": dict(self.upload_parameters or {}),
            "asset_id": self.asset_id,
            "sealed_parameters": self.sealed_parameters,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MediaStage:
        return cls(
            state=data["state"],
            source=data["source"],
            started_at=datetime.fromisoformat(data["started_at"]),
            step=data["step"],
            pinterest_media_id=data["pinterest_media_id"],
            detail=data["detail"],
            upload_url=data["upload_url"],
            upload_parameters=dict(data["upload_parameters"]) or None,
            asset_id=data.get("asset_id", ""),
            sealed_parameters=data.get("sealed_parameters", ""),
        )


def is_staged(media: object) -> bool:
    """Whether *media* is a video pinsched must stage before the pin can be created."""
    return isinstance(media, VideoUrl | VideoAsset)


def current(stage: MediaStage | None, media: object) -> MediaStage | None:
    """*stage* if it stages *media* (the job's present video), else None (to stage anew)."""
    if stage is None or not isinstance(media, VideoUrl | VideoAsset):
        return None
    return stage if stage.source == source_key(media) else None
