"""Proto ↔ domain for staged videos: the `video_url` / `video_asset` media sources and the
job's `media` (its staging). Pure; used by `convert` (which owns the other conversions)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from google.protobuf import timestamp_pb2

from pinsched.core.video import (
    FAILED,
    READY,
    STAGING,
    MediaStage,
    StagedVideo,
    VideoAsset,
    VideoUrl,
)
from pinsched.store import codec
from pinsched.v1 import job_pb2

_STATES: Final = {
    STAGING: job_pb2.JobMedia.STATE_STAGING,
    READY: job_pb2.JobMedia.STATE_READY,
    FAILED: job_pb2.JobMedia.STATE_FAILED,
}


def set_source(source: job_pb2.MediaSource, media: StagedVideo) -> None:
    """Fill *source* with the variant of *media*."""
    msg: job_pb2.VideoUrl | job_pb2.VideoAsset
    if isinstance(media, VideoUrl):
        msg = source.video_url
        msg.SetInParent()
        msg.url = media.url
    else:
        msg = source.video_asset
        msg.SetInParent()
        msg.asset_id = media.asset_id
    if media.cover_image_key_frame_time is not None:
        msg.cover_image_key_frame_time = media.cover_image_key_frame_time
    else:
        msg.cover_image_url = media.cover_image_url


def from_source(source: job_pb2.MediaSource, which: str) -> StagedVideo:
    """The domain value of the `video_url` or `video_asset` variant of *source*."""
    msg: job_pb2.VideoUrl | job_pb2.VideoAsset = getattr(source, which)
    cover = msg.WhichOneof("cover")
    url = msg.cover_image_url if cover == "cover_image_url" else ""
    kft = msg.cover_image_key_frame_time if cover == "cover_image_key_frame_time" else None
    if isinstance(msg, job_pb2.VideoUrl):
        return VideoUrl(url=msg.url, cover_image_url=url, cover_image_key_frame_time=kft)
    return VideoAsset(asset_id=msg.asset_id, cover_image_url=url, cover_image_key_frame_time=kft)


def stage_to_proto(stage: MediaStage) -> job_pb2.JobMedia:
    """The job's `media` field."""
    return job_pb2.JobMedia(
        state=_STATES[stage.state],
        pinterest_media_id=stage.pinterest_media_id,
        detail=stage.detail,
        start_time=_timestamp(stage.started_at),
    )


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    us = codec.to_us(at)
    return timestamp_pb2.Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)
