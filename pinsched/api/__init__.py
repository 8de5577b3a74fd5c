"""The gRPC API layer: thin servicers, pure proto ↔ domain converters and input validation."""
