"""pinsched's Model Context Protocol server, so AI agents can schedule, inspect and fix pins.

`pinsched mcp` serves it over stdio; `http.McpHttp` is the streamable HTTP transport as an aiohttp
handler, to mount at `/mcp` on the daemon's HTTP door. Modules: `protodoc` (proto comments from
the packaged descriptor set), `schema` (JSON Schemas from proto descriptors), `tools` (the tool
table: RPC, messages, safety hints), `calls` (one tool call, errors as tool errors), `server` (the
SDK server, resources, prompt, stdio) and `http` (streamable HTTP for aiohttp). They need the
`mcp` package (`pip install 'pinsched[mcp]'`); this `__init__` imports nothing.

Rule: a client of the daemon, like the command line: it talks to it through `pinsched_client`
(gRPC) only and imports none of the daemon's internals (only `security.bearer_matches`, the one
token check, for its HTTP transport).
"""
