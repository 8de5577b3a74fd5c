"""gRPC `pinsched.v1.MediaService`: receive video bytes for `VideoAsset` sources. Thin: the
bytes go to `pinsched.media.assets.MediaAssets`; errors map through `pinsched.api.status`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from pinsched.api.status import unary
from pinsched.core.errors import InvalidArgument
from pinsched.media.assets import Asset, MediaAssets
from pinsched.v1 import media_pb2, media_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


def asset_to_proto(asset: Asset) -> media_pb2.UploadMediaResponse:
    return media_pb2.UploadMediaResponse(
        asset_id=asset.asset_id,
        size_bytes=asset.size,
        sha256=asset.sha256,
        content_type=asset.content_type,
    )


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, assets: MediaAssets) -> None:
        self.assets = assets

    @unary
    async def UploadMedia(
        self, request_iterator: AsyncIterator[media_pb2.UploadMediaRequest], context: Ctx
    ) -> media_pb2.UploadMediaResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            raise InvalidArgument.one("content_type", "required: send at least one message")

        async def chunks() -> AsyncIterator[bytes]:
            assert first is not None
            if first.data:
                yield first.data
            async for message in request_iterator:
                if message.data:
                    yield message.data

        return asset_to_proto(await self.assets.receive(first.content_type, chunks()))
