"""Benchmarks run by hand: ``.venv/bin/python -m benchmarks.run_all`` (see docs/benchmarks.md)."""
