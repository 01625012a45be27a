"""The one place that touches Pyodide's foreign-function interface (``js``, ``pyodide.ffi``).

Everything else in :mod:`unisockets.browser` works with the helpers here, so
the rest of the package reads as plain asyncio code. Outside Pyodide the
imports fail softly: the package still imports (for docs and type checks),
and the first helper used raises :class:`RuntimeError`.

Rules kept here (Pyodide's "Calling JavaScript from Python" guide):

- A Python callable given to JavaScript as an event listener must be a
  :func:`pyodide.ffi.create_proxy` proxy, removed and destroyed when its owner
  closes (:class:`Listeners`); otherwise it leaks, or is called after
  destruction.
- A listener must never raise into JavaScript: the browser would log it and
  go on, and the state it was meant to change would silently not change.
  :class:`Listeners` wraps each one, logs the exception and calls the owner's
  failure hook.
- Bytes cross as copies: :func:`to_uint8array` copies Python bytes into a new
  ``Uint8Array`` (a view into WebAssembly memory could move under the browser),
  :func:`to_bytes` copies an ``ArrayBuffer`` (or a text message) out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

try:
    import js  # type: ignore[import-not-found]
    import pyodide.ffi  # type: ignore[import-not-found]
    from pyodide.ffi import create_proxy, to_js
except ImportError:  # not in Pyodide: importable, not usable
    js = None
    create_proxy = to_js = None
    _JSNULL: object = None
else:
    _JSNULL = getattr(pyodide.ffi, "jsnull", None)  # JavaScript null (Pyodide >= 0.28)

__all__ = [
    "Listeners",
    "in_browser",
    "is_null",
    "js_global",
    "js_object",
    "require_browser",
    "settle",
    "to_bytes",
    "to_uint8array",
]

logger = logging.getLogger("unisockets.browser")


def in_browser() -> bool:
    """Whether this interpreter runs under Pyodide with the browser's JavaScript globals."""
    return js is not None


def is_null(value: Any) -> bool:
    """Whether a value from JavaScript is ``null`` or ``undefined`` (``None`` or ``jsnull``)."""
    return value is None or (_JSNULL is not None and value is _JSNULL)


def require_browser() -> None:
    """Raise unless running under Pyodide.

    Raises:
        RuntimeError: outside Pyodide (use :mod:`unisockets.net` there).
    """
    if js is None:
        raise RuntimeError(
            "unisockets.browser runs only under Pyodide in a browser; use unisockets.net natively"
        )


def js_global(name: str) -> Any:
    """Return the JavaScript global ``name`` (e.g. ``"WebSocket"``, ``"RTCPeerConnection"``).

    Raises:
        RuntimeError: outside Pyodide.
        AttributeError: the browser has no such global.
    """
    require_browser()
    return getattr(js, name)


def js_object(mapping: Mapping[str, Any]) -> Any:
    """Convert a Python mapping (nested dicts, lists, str, numbers) into a plain JS object.

    Raises:
        RuntimeError: outside Pyodide.
    """
    require_browser()
    return to_js(dict(mapping), dict_converter=js.Object.fromEntries)


def to_uint8array(data: bytes | bytearray | memoryview) -> Any:
    """Copy ``data`` into a new JavaScript ``Uint8Array`` of the same length.

    Raises:
        RuntimeError: outside Pyodide.
    """
    require_browser()
    array = js.Uint8Array.new(len(data))
    array.assign(data)
    return array


def to_bytes(value: Any) -> bytes:
    """Copy a message payload from JavaScript: an ``ArrayBuffer``, a typed array or a string.

    Strings (text messages, e.g. from a peer that does not send binary) are
    encoded as UTF-8.

    Returns:
        The bytes (possibly empty).
    """
    if isinstance(value, str):
        return value.encode("utf-8")
    if hasattr(value, "to_bytes"):
        return bytes(value.to_bytes())
    return bytes(js.Uint8Array.new(value).to_bytes())


class Listeners:
    """Event listeners added to JavaScript objects, removed and destroyed together.

    Args:
        on_error: called with the exception when a listener raises (after it
            was logged); it must not raise itself.
    """

    def __init__(self, on_error: Callable[[BaseException], object] | None = None) -> None:
        self._on_error = on_error
        self._added: list[tuple[Any, str, Any]] = []

    def add(self, target: Any, event: str, handler: Callable[[Any], object]) -> None:
        """Call ``handler(event)`` on each ``event`` of ``target`` until :meth:`clear`.

        Args:
            target: a JavaScript ``EventTarget`` (WebSocket, RTCPeerConnection, ...).
            event: the event name, e.g. ``"message"``.
            handler: a synchronous callable taking the JavaScript event object.
        """
        require_browser()

        def guarded(js_event: Any) -> None:
            try:
                handler(js_event)
            except BaseException as exc:  # never into JavaScript (see module docstring)
                logger.exception("%s listener failed", event)
                if self._on_error is not None:
                    self._on_error(exc)

        proxy = create_proxy(guarded)
        target.addEventListener(event, proxy)
        self._added.append((target, event, proxy))

    def clear(self) -> None:
        """Remove every listener and free its proxy (idempotent)."""
        added, self._added = self._added, []
        for target, event, proxy in added:
            try:
                target.removeEventListener(event, proxy)
            finally:
                proxy.destroy()


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
