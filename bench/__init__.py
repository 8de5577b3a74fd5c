"""pinsched benchmarks: how fast, how big and how late, beside what users would pick instead.

Run `python -m bench` (full, about 23 min) or `python -m bench --quick` (smoke, < 60 s). See
`bench/README.md`. Benchmarks measure; tests never assert timings.
"""
