"""The OpenAPI 3.1 document of the HTTP door, generated from the proto files.

`build` takes a `FileDescriptorSet` with source info (protoc `--include_source_info
--include_imports`, run by `scripts/gen_proto.py`), reads the routes with the same loader the server
uses (`routes.load_routes`), and writes every message as a JSON Schema of its proto3 JSON form
(`openapi_schema`: proto field names; int64 as a decimal string; enums by name; Timestamp, Duration
and FieldMask as strings), the proto comments as descriptions, `operationId` = `{Service}_{Method}`,
and a bearer security scheme. The result is committed as `docs/openapi.json` and packaged as
`pinsched/http/openapi.json`, which the daemon serves at `GET /openapi.json`; `gen_proto.py --check`
fails when either is stale. No generator on the package registries writes OpenAPI 3.1 from
`google.api.http` annotations without a Go toolchain, hence this small one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool

from pinsched.core.video import VIDEO_CONTENT_TYPES
from pinsched.http.openapi_schema import SchemaBuilder, comments, path_name
from pinsched.http.routes import load_routes

MEDIA_PATH: Final = "/v1/media"

__all__ = ["build", "openapi_document"]

SERVED_FILES: Final = (
    "pinsched/v1/scheduler.proto",
    "pinsched/v1/account.proto",
    "pinsched/v1/webhook.proto",
)
_GRPC_CODES: Final = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
_ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "description": "Google's JSON error: the gRPC status with its details.",
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status."},
                "status": {
                    "type": "string",
                    "enum": list(_GRPC_CODES),
                    "description": "The gRPC status code name.",
                },
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["@type"],
                        "properties": {"@type": {"type": "string"}},
                        "description": "google.rpc.BadRequest (field_violations) or "
                        "google.rpc.ErrorInfo (reason, domain).",
                    },
                },
            },
        }
    },
}


@functools.cache
def openapi_document() -> bytes:
    """The packaged document (what `GET /openapi.json` serves)."""
    return (resources.files("pinsched.http") / "openapi.json").read_bytes()


def _plain(summary: str, schema: dict[str, Any], ok: str = "200") -> dict[str, Any]:
    return {
        "get": {
            "operationId": f"Http_{summary.split()[0]}",
            "summary": summary,
            "security": [],
            "tags": ["Http"],
            "responses": {
                ok: {"description": "OK", "content": {"application/json": {"schema": schema}}},
                "default": {
                    "description": "Not ready or error",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            },
        }
    }


def _media_upload(builder: SchemaBuilder, pool: descriptor_pool.DescriptorPool) -> dict[str, Any]:
    """`POST /v1/media`: `MediaService.UploadMedia` (client-streaming, so written by hand in
    `pinsched.http.media`) with the raw video as the body."""
    method = pool.FindMethodByName("pinsched.v1.MediaService.UploadMedia")
    doc = builder.docs.get(method.full_name, "")
    return {
        "post": {
            "operationId": "MediaService_UploadMedia",
            "tags": ["MediaService"],
            "summary": "Upload a video for a `video_asset` pin",
            "description": doc,
            "requestBody": {
                "required": True,
                "content": {
                    t: {"schema": {"type": "string", "format": "binary"}}
                    for t in VIDEO_CONTENT_TYPES
                },
            },
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": builder.message(method.output_type)}
                    },
                },
                "default": {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
    }


def build(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes in *fds*."""
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    files = [pool.FindFileByName(name) for name in SERVED_FILES]
    builder = SchemaBuilder(comments(fds))
    paths: dict[str, Any] = {}
    for route in load_routes(files):
        template = route.template
        for p in route.path_fields:
            template = template.replace(f"{{{p}}}", f"{{{path_name(p)}}}")
        paths.setdefault(template, {})[route.verb.lower()] = builder.operation(route)
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
    }
    paths["/healthz"] = _plain("Liveness: the process answers.", status)
    paths["/readyz"] = _plain(
        "Readiness: the store is open and the scheduler runs (else 503).", status
    )
    paths["/openapi.json"] = _plain("This document.", {"type": "object"})
    paths[MEDIA_PATH] = _media_upload(builder, pool)
    schemas = dict(sorted(builder.schemas.items()))
    schemas["Error"] = _ERROR
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pinsched HTTP/JSON API",
            "version": "v1",
            "description": "Every pinsched RPC over HTTP/1.1 with the proto3 JSON mapping "
            "(generated from proto/ by scripts/gen_proto.py; never edit by hand). "
            "Requests accept snake_case or lowerCamelCase names, enum names, and "
            "int64 as a string or a number; responses use the proto field names.",
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "PINSCHED_API_TOKEN, when the daemon has one.",
                }
            },
        },
    }


def render(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
