"""Media: videos uploaded to the daemon and staged on Pinterest before their pin's moment.

- `assets`: uploaded videos on disk (the media directory beside the database) and their sweep.
- `staging`: the `Stager`, which registers, uploads and waits for a job's video ahead of
  `planned_at` (the pure rules are `pinsched.core.staging`).
- `publish_first`: due publishes go before staging work on the same loop and writer.
- `upload_secrets`: a registered video's upload parameters sealed at rest.
- `urlprobe`: is a media URL fetchable, of the right type and size.

Rule: media modules are daemon parts below the API: they may use the core, the store, the
Pinterest client, the clock and ops, never `pinsched.api`, `pinsched.http`, `pinsched.mcp`,
`pinsched.cli` or `pinsched.app` (the servicers and the HTTP door call them, not the reverse).
"""
