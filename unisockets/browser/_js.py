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

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..driver.runtime import EventListeners, settle

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
    "BROWSER",
    "BrowserRuntime",
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


class Listeners(EventListeners):
    """:class:`~unisockets.driver.runtime.EventListeners` on the page's objects (:data:`BROWSER`).

    Args:
        on_error: called with the exception when a listener raises (after it
            was logged); it must not raise itself.
    """

    def __init__(self, on_error: Callable[[BaseException], object] | None = None) -> None:
        require_browser()
        super().__init__(BROWSER, on_error)


class BrowserRuntime:
    """The page's ``WebSocket`` and WebRTC for the asyncio driver.

    A :class:`unisockets.driver.runtime.Runtime`.
    """

    def websocket(self, url: str) -> Any:
        """``new WebSocket(url)`` (raises the browser's ``SyntaxError`` for a bad URL)."""
        return js_global("WebSocket").new(url)

    def peer_connection(self, configuration: Mapping[str, Any]) -> Any:
        """``new RTCPeerConnection(configuration)``."""
        return js_global("RTCPeerConnection").new(js_object(configuration))

    def options(self, mapping: Mapping[str, Any]) -> Any:
        """A plain JS object (:func:`js_object`)."""
        return js_object(mapping)

    def to_wire(self, data: bytes) -> Any:
        """A new ``Uint8Array`` (:func:`to_uint8array`)."""
        return to_uint8array(data)

    def to_bytes(self, value: Any) -> bytes:
        """:func:`to_bytes`."""
        return to_bytes(value)

    def candidate_json(self, candidate: Any) -> str:
        """``JSON.stringify(candidate.toJSON())``."""
        return str(js_global("JSON").stringify(candidate.toJSON()))

    def is_null(self, value: Any) -> bool:
        """:func:`is_null`."""
        return is_null(value)

    def proxy(self, handler: Callable[[Any], None]) -> Any:
        """A :func:`pyodide.ffi.create_proxy` proxy (destroyed by :meth:`release`)."""
        require_browser()
        return create_proxy(handler)

    def release(self, proxy: Any) -> None:
        """``proxy.destroy()``."""
        proxy.destroy()


#: The browser's runtime (usable only under Pyodide).
BROWSER: Final = BrowserRuntime()
