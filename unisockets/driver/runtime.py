"""What the asyncio driver needs from its platform: a WebSocket, WebRTC, and byte conversion.

The driver (:mod:`.signaling`, :mod:`.links`, :mod:`.pipes`, :mod:`.node`) is
written against the browser's own API shapes (WHATWG ``WebSocket``, W3C
``RTCPeerConnection`` and ``RTCDataChannel``: ``addEventListener``, promise
methods, ``readyState``, ``bufferedAmount``). A :class:`Runtime` makes those
objects:

- in a browser tab, ``unisockets.browser._js.BROWSER`` gives the page's
  own (through Pyodide's foreign-function interface; :mod:`unisockets.browser`);
- natively, :class:`unisockets.aio.runtime.NativeRuntime` gives objects of the
  same shape over aiortc and a WebSocket client on asyncio streams, running
  in the caller's own event loop (docs/concepts.md, "asyncio and trio").

Nothing in the driver imports a third-party module: it loads under Pyodide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["EventListeners", "Runtime", "close_quietly", "settle"]

logger = logging.getLogger("unisockets.driver")


def settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Resolve ``future`` with ``result`` or ``error`` unless it is already done."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def close_quietly(platform_object: Any) -> None:
    """Call ``platform_object.close()``, logging (not raising) what it raises (already closed)."""
    try:
        platform_object.close()
    except Exception:
        logger.debug("close failed", exc_info=True)


class Runtime(Protocol):
    """The platform under the asyncio driver (see the module docstring)."""

    def websocket(self, url: str) -> Any:
        """Start opening a WebSocket to ``url`` (a WHATWG ``WebSocket``-shaped object).

        Events: ``open``, ``message`` (``event.data``: a ``str`` for a text
        frame), ``close`` (``event.code``, ``event.reason``). Methods:
        ``send(text)``, ``close(code)``.

        Raises:
            Exception: a malformed URL (at once, as the browser's constructor).
        """
        ...

    def peer_connection(self, configuration: Mapping[str, Any]) -> Any:
        """A new ``RTCPeerConnection``-shaped object (W3C WebRTC 1.0).

        Args:
            configuration: an ``RTCConfiguration`` dict (``iceServers``).
        """
        ...

    def options(self, mapping: Mapping[str, Any]) -> Any:
        """A dictionary argument for the platform's methods (a JS object in a browser)."""
        ...

    def to_wire(self, data: bytes) -> Any:
        """What ``RTCDataChannel.send`` takes for binary ``data`` (a copy)."""
        ...

    def to_bytes(self, value: Any) -> bytes:
        """A message payload (binary, or text encoded as UTF-8) as ``bytes``."""
        ...

    def candidate_json(self, candidate: Any) -> str:
        """An ``RTCIceCandidate`` as a JSON ``RTCIceCandidateInit`` string."""
        ...

    def is_null(self, value: Any) -> bool:
        """Whether a platform value is ``null``/``undefined`` (or ``None``)."""
        ...

    def proxy(self, handler: Callable[[Any], None]) -> Any:
        """What ``addEventListener`` takes for ``handler`` (Pyodide needs a proxy)."""
        ...

    def release(self, proxy: Any) -> None:
        """Free a :meth:`proxy` once it was removed."""
        ...


class EventListeners:
    """Event listeners added to platform objects, removed and released together.

    A listener never raises into the platform (a browser would log it and go
    on, and the state it was meant to change would silently not change): each
    one is wrapped, logs its exception and calls the owner's failure hook.

    Args:
        runtime: the platform (it makes the proxies).
        on_error: called with the exception when a listener raises (after it
            was logged); it must not raise itself.
    """

    def __init__(
        self, runtime: Runtime, on_error: Callable[[BaseException], object] | None = None
    ) -> None:
        self._runtime = runtime
        self._on_error = on_error
        self._added: list[tuple[Any, str, Any]] = []

    def add(self, target: Any, event: str, handler: Callable[[Any], object]) -> None:
        """Call ``handler(event)`` on each ``event`` of ``target`` until :meth:`clear`.

        Args:
            target: an ``EventTarget`` (WebSocket, RTCPeerConnection, ...).
            event: the event name, e.g. ``"message"``.
            handler: a synchronous callable taking the event object.
        """

        def guarded(platform_event: Any) -> None:
            try:
                handler(platform_event)
            except BaseException as exc:  # never into the platform (see above)
                logger.exception("%s listener failed", event)
                if self._on_error is not None:
                    self._on_error(exc)

        proxy = self._runtime.proxy(guarded)
        target.addEventListener(event, proxy)
        self._added.append((target, event, proxy))

    def clear(self) -> None:
        """Remove every listener and free its proxy (idempotent)."""
        added, self._added = self._added, []
        for target, event, proxy in added:
            try:
                target.removeEventListener(event, proxy)
            finally:
                self._runtime.release(proxy)
