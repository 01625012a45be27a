"""Wait for a log message as for an event: what a component says it did, without sleeping."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["log_event"]


class _Handler(logging.Handler):
    def __init__(self, text: str, event: trio.Event, token: trio.lowlevel.TrioToken) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = event
        self.token = token
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.text not in message:
            return
        self.records.append(message)
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:  # another thread (the asyncio bridge): hand it to trio
            self.token.run_sync_soon(self.event.set)
        else:
            self.event.set()


@contextmanager
def log_event(logger: str, text: str) -> Iterator[trio.Event]:
    """An event set when ``logger`` (or a child) logs a message containing ``text``.

    Args:
        logger: the logger's name, e.g. ``"unisockets.transport"``.
        text: what the message must contain.

    Yields:
        The event (call in trio; set at most once per match, idempotent).
    """
    event = trio.Event()
    handler = _Handler(text, event, trio.lowlevel.current_trio_token())
    target = logging.getLogger(logger)
    level = target.level
    target.addHandler(handler)
    if target.getEffectiveLevel() > logging.INFO:
        target.setLevel(logging.INFO)
    try:
        yield event
    finally:
        target.removeHandler(handler)
        target.setLevel(level)
