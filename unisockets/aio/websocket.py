"""A WebSocket client on asyncio streams and wsproto, in the browser's ``WebSocket`` shape.

The asyncio driver's signaling (:mod:`unisockets.driver.signaling`) uses a
WHATWG ``WebSocket``: construct it (it starts connecting), listen for
``open``, ``message`` (``event.data``, a ``str`` for a text frame) and
``close`` (``event.code``, ``event.reason``), ``send(text)``, ``close(code)``.
This is that object over :func:`asyncio.open_connection` and wsproto's
sans-IO WebSocket (RFC 6455), in the caller's event loop. Pings from the
server are answered (RFC 6455, 5.5.2). Like a browser's, it sends no pings
of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from .events import EventTarget

__all__ = ["WebSocket"]

#: Close code for a connection that ended without a close frame (RFC 6455, 7.4.1).
ABNORMAL_CLOSURE = 1006
#: Bytes read from the socket at a time.
READ_SIZE = 65536


class WebSocket(EventTarget):
    """One client WebSocket, opening from construction (see the module docstring).

    Args:
        url: ``ws://host[:port]/path`` or ``wss://...``.
        ssl_context: TLS settings for ``wss://`` (default: the system's trust store).
        track: runs the connection's task (the runtime keeps it until it ends).

    Raises:
        ValueError: not a ``ws://`` or ``wss://`` URL with a host.

    Attributes:
        readyState: 0 connecting, 1 open, 2 closing, 3 closed (WHATWG numbers).
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        track: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]],
    ) -> None:
        super().__init__()
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        self.url = url
        self.readyState = 0
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "wss" else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._netloc = parts.netloc.rsplit("@", 1)[-1]
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "wss":
            self._ssl = ssl_context or ssl.create_default_context()
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._writer: asyncio.StreamWriter | None = None
        self._text: list[str] = []
        self._binary = bytearray()
        self._close_event: tuple[int, str] = (ABNORMAL_CLOSURE, "")
        self._task = track(self._run())

    def send(self, text: str) -> None:
        """Send one text message (queued in the transport; never blocks).

        Raises:
            RuntimeError: the WebSocket is not open (the browser's ``InvalidStateError``).
        """
        if self.readyState != 1 or self._writer is None:
            raise RuntimeError("the WebSocket is not open")
        self._writer.write(self._ws.send(TextMessage(data=text)))

    def close(self, code: int = 1000) -> None:
        """Send a close frame (if open) and end the connection (idempotent)."""
        if self.readyState >= 2:
            return
        if self._writer is not None and self._ws.state is ConnectionState.OPEN:
            with contextlib.suppress(Exception):  # the transport is closing already
                self._writer.write(self._ws.send(CloseConnection(code=code)))
        self.readyState = 2
        self._close_event = (code, "")
        self._task.cancel()

    async def _run(self) -> None:
        try:
            reader, self._writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl else None,
            )
            self._writer.write(self._ws.send(Request(host=self._netloc, target=self._target)))
            while self.readyState < 3:
                data = await reader.read(READ_SIZE)
                self._ws.receive_data(data or None)
                for event in self._ws.events():
                    self._handle(event)
                if not data:
                    break
        except (OSError, EOFError) as exc:
            self._close_event = (ABNORMAL_CLOSURE, str(exc))
        except Exception as exc:  # wsproto's RemoteProtocolError, a bad handshake
            self._close_event = (ABNORMAL_CLOSURE, f"{type(exc).__name__}: {exc}")
        finally:
            if self._writer is not None:
                self._writer.close()
            self.readyState = 3
            code, reason = self._close_event
            self._dispatch("close", code=code, reason=reason)

    def _handle(self, event: Event) -> None:
        assert self._writer is not None
        if isinstance(event, AcceptConnection):
            self.readyState = 1
            self._dispatch("open")
        elif isinstance(event, RejectConnection):
            self._close_event = (ABNORMAL_CLOSURE, f"handshake refused ({event.status_code})")
            self.readyState = 3
        elif isinstance(event, TextMessage):
            self._text.append(event.data)
            if event.message_finished:
                text, self._text = "".join(self._text), []
                self._dispatch("message", data=text)
        elif isinstance(event, BytesMessage):
            self._binary += event.data
            if event.message_finished:
                data, self._binary = bytes(self._binary), bytearray()
                self._dispatch("message", data=data)
        elif isinstance(event, Ping):
            self._writer.write(self._ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self._close_event = (event.code, event.reason or "")
            if self._ws.state is ConnectionState.REMOTE_CLOSING:
                self._writer.write(self._ws.send(event.response()))
            self.readyState = 3
