"""GENERATED from proto/pinsched/v1: never edit by hand."""
