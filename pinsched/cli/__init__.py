"""The `pinsched` command line.

Rule: the command line is a client. It talks to the daemon only through `pinsched_client` (the
gRPC verbs) and starts the daemon, the sandbox, the MCP server or the demo only when their command
runs (lazy imports in `commands`). `main` parses (`parser`), `verbs` build requests (`requests`)
and print replies (`render`); nothing here decides what happens to a job. Nothing outside this
package imports it except `pinsched.__main__` and the demo's printing helpers (`render`, `errors`).
"""
