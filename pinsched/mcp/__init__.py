"""pinsched's Model Context Protocol server, so AI agents can schedule, inspect and fix pins.

`pinsched mcp` serves it over stdio; `server.streamable_http_app` is the streamable HTTP transport
to mount at `/mcp` on the daemon's HTTP door. Modules: `protodoc` (proto comments from the
packaged descriptor set), `schema` (JSON Schemas from proto descriptors), `tools` (the tool
table: RPC, messages, safety hints), `calls` (one tool call, errors as tool errors), `server`
(the SDK server, resources, prompt, transports). Needs the `mcp` package (`pinsched[mcp]`);
importing this package without it raises ImportError.
"""
