"""The `pinsched` command line.

`main` (entry point, exit codes), `parser` (every command and flag), `verbs` (the gRPC verbs),
`commands` (serve, config check, sandbox, health, mcp, demo), `requests` (flags → request
messages), `render` (tables, event lines, `--json`), `errors` (failures in the CLI's words, exit
codes), `args` (flag placement, `--version`), `video` (`--video-url`, `--video-file`),
`importer` and `import_rows` (`pinsched import FILE`).

Rule: the command line is a client. It talks to the daemon only through `pinsched_client` (the
gRPC verbs) and starts the daemon, the sandbox, the MCP server or the demo only when their command
runs (lazy imports in `commands`); nothing here decides what happens to a job. Outside this
package only `pinsched.__main__` and the demo's printing (`render`, `errors`) import it.
"""
