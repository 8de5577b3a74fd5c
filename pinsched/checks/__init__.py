"""Checks of a pin against Pinterest before its moment, without publishing anything.

- `pins`: the remote checks themselves (`Checker`: token and scopes, board, section, image
  URLs, a video's media id), Pinterest reads only.
- `dryrun`: `validate_only`: a request checked and answered without persisting anything.
- `at_risk`: the look ahead of a pending job's moment (`preflight_lead_time_s`), which notes
  a problem on the job while there is still time to fix it.

Rule: checks only read, from Pinterest and the store (the one write is `at_risk`'s note on a
job, through the store); they never import `pinsched.api`, `pinsched.http`, `pinsched.mcp`,
`pinsched.cli`, `pinsched.app` or `pinsched.dispatch` (the servicers and the daemon call them).
"""
