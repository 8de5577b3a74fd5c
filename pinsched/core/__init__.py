"""The pure core: every rule that decides what happens to a job, as a function returning a
`Decision` (`core.decision`), applied by one `apply`.

Rule: pure. Its modules import the standard library, other `core` modules
and the existing pure domain modules (`jobs`, `retry`, `errors`, `video`, `reconcile`, `remote`,
`accounts`, `pinterest`'s outcome types) only; never asyncio, aiohttp, grpc or sqlite, and they
never read a clock (the caller passes `now`) or a random source of their own (the caller passes
one). The async shell (`dispatch/`, `service`, `staging`) reads, sends, asks here, and commits
what it is told with `store.changes.change`.
"""
