"""Pinterest's video media calls and the download of `video_url` videos (I/O only; decisions
are `pinsched.media.staging`'s).

* `register`: `POST /v5/media {"media_type": "video"}` → media id, `upload_url`,
  `upload_parameters` (org_write).
* `upload`: the multipart POST Pinterest describes: every upload parameter, then the `file`.
* `status`: `GET /v5/media/{media_id}` → `registered | processing | succeeded | failed`.
* `download`: a `video_url` into the media directory, through a resolver that refuses
  link-local and metadata addresses at connection time (as webhooks do), with Pinterest's type
  and size limits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from pinsched.core.errors import InvalidArgument
from pinsched.core.jobs import ErrorCategory, JobError
from pinsched.media.assets import Asset, MediaAssets
from pinsched.pinterest import client as pt
from pinsched.webhooks.endpoints import BlockedAddress, SafeResolver

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Registered:
    media_id: str
    upload_url: str
    upload_parameters: Mapping[str, str]


class MediaFailed(Exception):
    """A step failed; `error` says how (its `retryable` says whether to try again)."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error


def _fail(outcome: pt.Outcome) -> MediaFailed:
    """Only Pinterest's refusal for good (400/403/404) is final; anything else (5xx, 429, a
    lost answer, an expired token, a spam block) is tried again."""
    error = getattr(outcome, "error", None)
    if not isinstance(error, JobError):
        return MediaFailed(
            JobError(
                category=ErrorCategory.UNAVAILABLE,
                retryable=True,
                message=f"unexpected answer {type(outcome).__name__}",
            )
        )
    final = isinstance(outcome, pt.Rejected)
    return MediaFailed(
        dataclasses.replace(
            error, retryable=not final, category=ErrorCategory.MEDIA if final else error.category
        )
    )


async def register(client: pt.PinterestClient, token: str) -> Registered:
    """`POST /v5/media`; MediaFailed when Pinterest did not register it (or we cannot know)."""
    out = await client._request(
        "POST", "/media", token, json_body={"media_type": "video"}, write=True
    )
    if not isinstance(out, pt.Delivered):
        raise _fail(out)
    body = out.pin
    media_id, url = str(body.get("media_id") or ""), str(body.get("upload_url") or "")
    params = body.get("upload_parameters")
    if not media_id.isdigit() or not url or not isinstance(params, Mapping):
        raise MediaFailed(
            JobError(
                category=ErrorCategory.UNAVAILABLE,
                retryable=True,
                message="POST /v5/media answered without media_id, upload_url or upload_parameters",
            )
        )
    return Registered(media_id, url, {str(k): str(v) for k, v in params.items()})


async def status(client: pt.PinterestClient, token: str, media_id: str) -> str:
    """`GET /v5/media/{media_id}`'s `status`."""
    out = await client._request("GET", f"/media/{media_id}", token, write=False)
    if not isinstance(out, pt.Delivered):
        raise _fail(out)
    return str(out.pin.get("status") or "")


async def upload(
    client: pt.PinterestClient,
    url: str,
    parameters: Mapping[str, str],
    path: Path,
    content_type: str,
    *,
    timeout_s: float = 3600.0,
) -> None:
    """POST the file at *path* to the upload target; MediaFailed on a refusal or no answer."""
    session = await client._sess()
    form = aiohttp.FormData(default_to_multipart=True)
    for key, value in parameters.items():
        form.add_field(key, value)
    try:
        with path.open("rb") as f:
            form.add_field("file", f, filename=path.name, content_type=content_type)
            async with session.post(
                url,
                data=form,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                text = (await resp.text())[:300]
                if resp.status >= 300:
                    raise MediaFailed(
                        JobError(
                            category=ErrorCategory.UNAVAILABLE
                            if resp.status >= 500 or resp.status in (408, 429)
                            else ErrorCategory.MEDIA,
                            retryable=resp.status >= 500 or resp.status in (408, 409, 429),
                            http_status=resp.status,
                            message=f"the upload target answered {resp.status}: {text}",
                        )
                    )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MediaFailed(
            JobError(
                category=ErrorCategory.UNAVAILABLE,
                retryable=True,
                message=f"upload failed: {type(exc).__name__}: {exc}",
            )
        ) from None
    except OSError as exc:
        raise MediaFailed(
            JobError(
                category=ErrorCategory.UNAVAILABLE,
                retryable=True,
                message=f"cannot read the video: {exc}",
            )
        ) from None


async def download(url: str, assets: MediaAssets, *, timeout_s: float = 600.0) -> Asset:
    """Fetch *url* into *assets*; MediaFailed (retryable for 5xx / network trouble)."""
    connector = aiohttp.TCPConnector(resolver=SafeResolver())
    try:
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp,
        ):
            if resp.status >= 400:
                raise MediaFailed(
                    JobError(
                        category=ErrorCategory.UNAVAILABLE
                        if resp.status >= 500
                        else ErrorCategory.MEDIA,
                        retryable=resp.status >= 500 or resp.status == 429,
                        http_status=resp.status,
                        message=f"the video URL answered {resp.status}",
                    )
                )
            length = resp.content_length
            if length is not None and length > assets.max_bytes:
                raise MediaFailed(
                    JobError(
                        category=ErrorCategory.MEDIA,
                        message=f"the video is {length} bytes; "
                        f"Pinterest takes at most {assets.max_bytes}",
                    )
                )

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    yield chunk

            try:
                return await assets.receive(resp.content_type, chunks())
            except InvalidArgument as exc:
                raise MediaFailed(
                    JobError(category=ErrorCategory.MEDIA, message=f"the video URL: {exc}")
                ) from None
    except aiohttp.ClientConnectorDNSError as exc:
        blocked = isinstance(exc.os_error, BlockedAddress)
        raise MediaFailed(
            JobError(
                category=ErrorCategory.MEDIA if blocked else ErrorCategory.UNAVAILABLE,
                retryable=not blocked,
                message=f"cannot fetch the video: {exc.os_error}",
            )
        ) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise MediaFailed(
            JobError(
                category=ErrorCategory.UNAVAILABLE,
                retryable=True,
                message=f"cannot fetch the video: {type(exc).__name__}: {exc}",
            )
        ) from None
