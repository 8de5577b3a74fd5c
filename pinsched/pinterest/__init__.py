"""Pinterest: the only code that talks to Pinterest's API v5 (or the sandbox standing in for it).

`client` makes the HTTP calls (one aiohttp session); `media` does the video media calls and
`video_url` downloads. Pure: `outcomes` (an answer as `Delivered`, `Rejected`, ...; a pin as
Pinterest's JSON), `oauth` (token grant outcomes, where an account's calls go) and `ratehints`
(what a 429's headers ask).

Rule: this package reports outcomes and never decides what happens to a job (the dispatcher,
`remote`, `reconcile` and `staging` do). It imports the domain types, the media files on disk
(`media.assets`) and the address guard (`webhooks.endpoints.SafeResolver`); never the store, the
API or the shell.
"""
