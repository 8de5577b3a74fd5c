"""The pure core: the domain (jobs and pins, accounts and pacing, times and planning, slots,
retry budgets, errors, Pinterest's answers as values) and every rule that decides what happens to
a job, as a function returning a `Decision` (`core.decision`) that one `apply` turns into a change.

Rule: pure. Its modules import the standard library and other `core` modules only (the import
contract test fails otherwise): never asyncio, aiohttp, grpc, sqlite, the store or the clock.
They never read a clock (the caller passes `now`) or a random source of their own (the caller
passes one). The async shell (`dispatch/`, `service`, `media.staging`, `scheduler`) reads, sends,
asks here, and commits what it is told with `store.changes.change`.
"""
