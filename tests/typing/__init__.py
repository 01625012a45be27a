"""Snippets that ``make typecheck`` (mypy) checks: typed uses of the public API."""
