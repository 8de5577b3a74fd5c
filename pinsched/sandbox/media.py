"""Video media in the sandbox: `POST /v5/media` registration, the upload target and
`GET /v5/media[/{media_id}]`, shaped like Pinterest API v5 (spec 5.23.0, `MediaUploadCreate`,
`MediaUpload`, `Media`, `MediaUploadStatus`).

The flow (Pinterest's description of `media/create`):

1. `POST /v5/media {"media_type": "video"}` (org_write) answers 201 `MediaUpload`:
   `media_id` (digits), `media_type`, `upload_url` and `upload_parameters` (S3-style fields).
2. The client POSTs a multipart form to `upload_url` (here `/_upload/media` on the sandbox's own
   loopback address; no bearer) with every `upload_parameters` field plus the `file`. A wrong or
   missing `key`/`policy`, or no `file`, is a 400; an upload to a media that was already uploaded
   is a 409. Success is an empty 204, as S3 answers.
3. `GET /v5/media/{media_id}` (org_read) answers `Media` with `status`: `registered` until the
   upload, `processing` for `processing_s` seconds of the sandbox clock after it, then
   `succeeded` — or `failed` when failing was switched on (admin `POST /_admin/media`, or the
   `--media-fail` flag) before the upload.

A pin created with a `video_id` whose media is not the caller's or not `succeeded` is refused
with a 400 code 1 (Pinterest's exact answer is not documented; see docs/sandbox-vs-pinterest.md).
Time comes in as `now`; this module reads no clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from pinsched.sandbox import errors

FIRST_MEDIA_ID: Final = 5_000_000_000_000_001
UPLOAD_PATH: Final = "/_upload/media"
DEFAULT_PROCESSING_S: Final = 60.0
STATUSES: Final = ("registered", "processing", "succeeded", "failed")


@dataclass(slots=True, kw_only=True)
class MediaItem:
    """One registered media upload."""

    id: str
    owner: str
    key: str
    policy: str
    registered_at: datetime
    uploaded_at: datetime | None = None
    size: int = 0
    sha256: str = ""
    content_type: str = ""
    will_fail: bool = False
    processing_s: float = DEFAULT_PROCESSING_S

    def status(self, now: datetime) -> str:
        """Pinterest's `MediaUploadStatus` at *now*."""
        if self.uploaded_at is None:
            return "registered"
        if self.processing_s == float("inf"):  # seeded as processing for good
            return "processing"
        if now < self.uploaded_at + timedelta(seconds=self.processing_s):
            return "processing"
        return "failed" if self.will_fail else "succeeded"


@dataclass(slots=True)
class MediaBook:
    """Every media upload of the sandbox, with the processing settings."""

    processing_s: float = DEFAULT_PROCESSING_S
    fail: bool = False
    items: dict[str, MediaItem] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)  # media ids, one per accepted upload
    _next: int = FIRST_MEDIA_ID

    def reset(self) -> None:
        """Forget every media (the settings stay)."""
        self.items.clear()
        self.uploads.clear()
        self._next = FIRST_MEDIA_ID

    def configure(self, *, processing_s: float | None = None, fail: bool | None = None) -> None:
        """Change the processing time or failing of uploads made from now on."""
        if processing_s is not None:
            if not 0.0 <= processing_s < float("inf"):
                raise ValueError("'media_processing_s' must be a number of seconds, at least 0")
            self.processing_s = processing_s
        if fail is not None:
            self.fail = fail

    def register(self, username: str, body: object, now: datetime) -> MediaItem:
        """`POST /v5/media`: validate `MediaUploadCreate` and register an upload."""
        if not isinstance(body, dict):
            raise errors.invalid(f"{body!r} is not of type 'object'")
        if "media_type" not in body:
            raise errors.invalid("'media_type' is a required property")
        kind = body["media_type"]
        if kind != "video":
            raise errors.invalid(f"{kind!r} is not one of ['video']", "media_type")
        media_id = str(self._next)
        self._next += 1
        digest = hashlib.sha256(f"{username}:{media_id}".encode()).hexdigest()
        item = MediaItem(
            id=media_id,
            owner=username,
            registered_at=now,
            key=f"uploads/{digest[:2]}/{digest[2:4]}/{media_id}:video:{digest[:16]}",
            policy=digest[16:48],
        )
        self.items[media_id] = item
        return item

    def add(self, username: str, media_id: str, now: datetime, *, status: str) -> MediaItem:
        """Seed a media already in *status* (admin; tests)."""
        if status not in STATUSES:
            raise ValueError(f"'status' must be one of {list(STATUSES)}")
        if not media_id.isdigit():
            raise ValueError("'media_id' must be digits")
        item = MediaItem(
            id=media_id,
            owner=username,
            key=f"seeded/{media_id}",
            policy="seeded",
            registered_at=now,
            processing_s=0.0,
            will_fail=status == "failed",
        )
        if status == "processing":
            item.processing_s = float("inf")
        if status != "registered":
            item.uploaded_at = now
        self.items[media_id] = item
        return item

    def upload(
        self, fields: dict[str, str], file: bytes | None, content_type: str, now: datetime
    ) -> MediaItem:
        """The upload target: check the form against a registration and start processing.
        Raises ValueError (a 400) or LookupError (a 409) with the reason."""
        key = fields.get("key", "")
        item = next((i for i in self.items.values() if i.key == key), None) if key else None
        if item is None:
            raise ValueError("'key' does not name a registered upload")
        if fields.get("policy") != item.policy:
            raise ValueError("'policy' does not match the registration")
        if file is None:
            raise ValueError("'file' is missing")
        if item.uploaded_at is not None:
            raise LookupError(f"media {item.id} was already uploaded")
        item.uploaded_at = now
        item.size = len(file)
        item.sha256 = hashlib.sha256(file).hexdigest()
        item.content_type = content_type
        item.will_fail = self.fail
        item.processing_s = self.processing_s
        self.uploads.append(item.id)
        return item

    def get(self, username: str, media_id: str) -> MediaItem:
        """The caller's media *media_id*, or Pinterest's 404."""
        item = self.items.get(media_id)
        if item is None or item.owner != username:
            raise errors.ApiError(404, 404, "Media not found.")
        return item

    def check_ready(self, username: str, media_id: str, now: datetime) -> None:
        """Refuse a `video_id` pin whose media is not the caller's or not processed."""
        item = self.items.get(media_id)
        if item is None or item.owner != username:
            raise errors.invalid(f"media {media_id} not found", "media_source.media_id")
        status = item.status(now)
        if status != "succeeded":
            raise errors.invalid(
                f"media {media_id} is {status}, not succeeded", "media_source.media_id"
            )


def upload_json(item: MediaItem, base_url: str) -> dict[str, Any]:
    """`MediaUpload` as `POST /v5/media` answers it."""
    return {
        "media_id": item.id,
        "media_type": "video",
        "upload_url": f"{base_url}{UPLOAD_PATH}",
        "upload_parameters": {
            "key": item.key,
            "policy": item.policy,
            "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": "SANDBOX/20260101/us-east-1/s3/aws4_request",
            "x-amz-date": item.registered_at.strftime("%Y%m%dT%H%M%SZ"),
            "x-amz-signature": hashlib.sha256(item.policy.encode()).hexdigest(),
        },
    }


def media_json(item: MediaItem, now: datetime) -> dict[str, Any]:
    """`Media` as `GET /v5/media/{media_id}` answers it."""
    return {"media_id": item.id, "media_type": "video", "status": item.status(now)}
