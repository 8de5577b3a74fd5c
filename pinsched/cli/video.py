"""The CLI's staged-video flags: `--video-url URL` (the daemon downloads it) and `--video-file
PATH` (uploaded to the daemon with UploadMedia first, then named by its sha256), with their
cover (`--cover-image-url` or `--cover-key-frame-time`). A bad flag is a ValueError that the
CLI turns into its usage error (exit 2)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any, Final

from pinsched_client import AsyncClient

VIDEO_TYPES: Final = {".mp4": "video/mp4", ".mov": "video/quicktime", ".m4v": "video/x-m4v"}


def add_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--video-url",
        metavar="URL",
        help="a video the daemon downloads and stages on Pinterest ahead of time",
    )
    group.add_argument(
        "--video-file",
        metavar="PATH",
        help="a .mp4, .mov or .m4v file uploaded to the daemon first",
    )
    group.add_argument(
        "--cover-key-frame-time",
        type=int,
        metavar="SECONDS",
        help="cover of a video: the frame at SECONDS (instead of a cover URL)",
    )


def _file(args: argparse.Namespace) -> tuple[Path, str]:
    path = Path(args.video_file)
    content_type = VIDEO_TYPES.get(path.suffix.lower())
    if content_type is None:
        raise ValueError(f"--video-file {path}: expected a .mp4, .mov or .m4v file")
    if not path.is_file():
        raise ValueError(f"--video-file {path}: no such file")
    return path, content_type


def media(args: argparse.Namespace) -> dict[str, Any]:
    """The `pin()` keywords of the video flags given, or {}."""
    url, file = getattr(args, "video_url", None), getattr(args, "video_file", None)
    if not url and not file:
        return {}
    cover_url, frame = args.cover_image_url, getattr(args, "cover_key_frame_time", None)
    if (cover_url is None) == (frame is None):
        raise ValueError(
            "a video needs one cover: --cover-image-url URL or --cover-key-frame-time SECONDS"
        )
    cover: dict[str, Any] = (
        {"cover_image_url": cover_url}
        if cover_url is not None
        else {"cover_image_key_frame_time": frame}
    )
    if url:
        return {"video_url": url, **cover}
    path, _ = _file(args)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ValueError(f"--video-file {path}: {exc.strerror or exc}") from None
    return {"video_asset_id": digest.hexdigest(), **cover}


async def upload(client: AsyncClient, args: argparse.Namespace) -> None:
    """Upload `--video-file` (when given) before the request that names it."""
    if getattr(args, "video_file", None):
        path, content_type = _file(args)
        await client.upload_media(str(path), content_type)
