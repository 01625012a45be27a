"""A fix for Pyodide's event loop, applied by :func:`unisockets.browser.open_node`.

Pyodide's ``WebLoop.call_later`` raises ``ValueError("Can't schedule in the
past")`` for a negative delay, and its ``call_at`` computes the delay from the
clock *after* the caller decided the deadline was in the future. So
``asyncio.timeout`` (and anyio's scopes) now and then ask for a timer a few
microseconds in the past and the whole operation fails, or the timer is lost
(we measured about 1 % of timeouts lost). CPython's
loops run such timers at once; :func:`clamp_past_timers` makes this loop do
the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["clamp_past_timers"]

_MARK = "_unisockets_clamped_timers"


def clamp_past_timers(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop`` run timers whose deadline already passed at once (idempotent).

    Only Pyodide's ``WebLoop`` is changed; any other loop is left alone.

    Args:
        loop: the running loop.
    """
    if type(loop).__name__ != "WebLoop" or getattr(loop, _MARK, False):
        return
    original = loop.call_later

    def call_later(delay: float, callback: Any, *args: Any, context: Any = None) -> Any:
        return original(max(delay, 0.0), callback, *args, context=context)

    loop.call_later = call_later  # type: ignore[method-assign,assignment]  # WebLoop.call_at uses it
    setattr(loop, _MARK, True)
