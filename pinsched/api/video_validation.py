"""Request checks of the staged video sources (`video_url`, `video_asset`). Pure: whether an
asset exists on disk is checked by the servicer (`MediaAssets.exists`), not here."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from pinsched.api import fields as v
from pinsched.core.errors import InvalidArgument
from pinsched.core.jobs import PinSpec
from pinsched.core.video import VideoAsset
from pinsched.v1 import job_pb2
from pinsched.webhooks.policy import host_problem

ASSET_ID: Final = re.compile(r"[0-9a-f]{64}")


def check(out: v.Violations, path: str, video: job_pb2.VideoUrl | job_pb2.VideoAsset) -> None:
    """Add to *out* every violation of a `video_url` / `video_asset` at *path*."""
    if isinstance(video, job_pb2.VideoUrl):
        at = v.join_path(path, "url")
        problem = v.url_problem(video.url) if video.url else "required: an absolute http(s) URL"
        if problem is None:
            blocked = host_problem(urlsplit(video.url).hostname or "")
            if blocked is not None:
                problem = (
                    f"refused: {blocked} (the daemon never fetches from link-local or "
                    "cloud metadata addresses)"
                )
        if problem is not None:
            out.add(at, problem)
    elif not ASSET_ID.fullmatch(video.asset_id):
        out.add(
            v.join_path(path, "asset_id"),
            "required: the asset_id UploadMedia answered (64 lowercase hex digits)",
        )
    cover = video.WhichOneof("cover")
    if cover is None:
        out.add(
            v.join_path(path, "cover_image_url"),
            "a video needs a cover: cover_image_url or cover_image_key_frame_time",
        )
    elif cover == "cover_image_url":
        problem = (
            v.url_problem(video.cover_image_url)
            if video.cover_image_url
            else ("required: an absolute http(s) URL")
        )
        if problem is not None:
            out.add(v.join_path(path, "cover_image_url"), problem)
    elif video.cover_image_key_frame_time < 0:
        out.add(
            v.join_path(path, "cover_image_key_frame_time"),
            f"must be 0 or more seconds, got {video.cover_image_key_frame_time}",
        )


def check_asset(pin: PinSpec, path: str, exists: Callable[[str], bool] | None) -> None:
    """InvalidArgument when *pin*'s `video_asset` names no stored upload (*path*: the pin)."""
    media = pin.media
    if exists is not None and isinstance(media, VideoAsset) and not exists(media.asset_id):
        raise InvalidArgument.one(
            v.join_path(path, "media_source.video_asset.asset_id"),
            f"no uploaded video {media.asset_id}: upload it first (UploadMedia, POST /v1/media)",
        )
