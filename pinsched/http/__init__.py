"""The HTTP/JSON door: every RPC over plain HTTP/1.1 with the proto3 JSON mapping.

Routes come from the `google.api.http` annotations in proto/ (`routes`), requests are transcoded
to the same messages and handed to the same servicer methods the gRPC server calls (`server`), so
no rule lives twice. Errors keep the gRPC code and details in Google's JSON error shape
(`errors`); `WatchJobs` streams as Server-Sent Events (`sse`); `openapi` builds the OpenAPI 3.1
document from the proto descriptors and their comments.

Rule: a door, not a second API: every route ends in a servicer method of `pinsched.api`; it never
reaches the store, the service layer's internals or the dispatcher directly.
"""
