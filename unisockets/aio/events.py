"""The DOM's ``EventTarget`` for the native platform objects (:mod:`unisockets.aio.runtime`)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

__all__ = ["EventTarget", "MessageEvent"]

Handler = Callable[[Any], None]


class EventTarget:
    """``addEventListener``/``removeEventListener`` for our platform objects (DOM's shape)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def addEventListener(self, event: str, handler: Handler) -> None:
        """Call ``handler(event object)`` on each ``event``."""
        self._handlers.setdefault(event, []).append(handler)

    def removeEventListener(self, event: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``event`` (no error if it was not added)."""
        handlers = self._handlers.get(event, [])
        if handler in handlers:
            handlers.remove(handler)

    def _dispatch(self, event: str, **fields: Any) -> None:
        payload = SimpleNamespace(type=event, **fields)
        for handler in list(self._handlers.get(event, ())):
            handler(payload)

    def _dispatch_message(self, data: Any) -> None:
        """A ``message`` event with ``data`` (the data plane's hot path: one small object)."""
        handlers = self._handlers.get("message")
        if handlers:
            event = MessageEvent(data)
            for handler in tuple(handlers):
                handler(event)


class MessageEvent:
    """The DOM's ``MessageEvent`` as the driver reads it: ``type`` and ``data``."""

    __slots__ = ("data",)
    type = "message"

    def __init__(self, data: Any) -> None:
        self.data = data
