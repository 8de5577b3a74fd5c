"""The gRPC API layer: thin servicers, pure proto ↔ domain converters and input validation.

Rule: a servicer validates and converts, hands the request to the service layer and converts the
answer back; what happens to a job is decided below it. Conversions (`convert`,
`account_convert`, `pin_input`, `video_convert`) and checks (`fields`, `validation`, ...) are
pure; page tokens are encoded only by `pagination`. It never imports the dispatcher, the
scheduler, the composition root, the command line or the other doors (HTTP, MCP).
"""
