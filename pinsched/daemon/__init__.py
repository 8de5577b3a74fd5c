"""The pieces of the composition root (`pinsched.app.Daemon`, which builds the parts, starts them
in order and stops them in reverse).

- `doors`: every listening socket, opened last and closed first: the gRPC server, the HTTP/JSON
  door with its extensions (MCP), the health-only port and the metrics port.
- `grpc_server`: the gRPC server: guard and metrics interceptors, the API services, WatchJobs'
  wire, health and reflection; binding the listen address (TLS, client certificates) and the
  health-only port.
- `mcp_mount`: the MCP streamable HTTP transport at `/mcp` on the HTTP door.

Rule: only the composition root imports these modules; they wire parts together (servicers,
server, transports) and decide nothing about jobs or accounts. They never import `pinsched.cli`
or `pinsched.app`.
"""
