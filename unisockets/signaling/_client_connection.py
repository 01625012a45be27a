"""The client side of one WebSocket (RFC 6455) over a trio stream, batched (private).

:class:`ClientWebSocket` drives wsproto (the sans-IO WebSocket library) over
a TCP or TLS stream of trio's, for the signaling client
(:mod:`unisockets.signaling.client`). It exists for one property that
trio-websocket does not have: :meth:`ClientWebSocket.receive` returns
*every* message of one read at once. trio-websocket's reader task hands its
messages over a memory channel one at a time, and each hand-over is a
checkpoint, so a client that has 500 answers buffered needs 500 scheduler
rounds to see them; with a busy data plane in the same trio run (1,000
streams), each round is slow and requests time out although their answers
have arrived (docs/transport.md, "Limits of the native backend"). Here one
read (up to 64 KiB) is parsed and handed over in one step, and
:meth:`ClientWebSocket.send` writes many messages with one ``send_all``.

What RFC 6455 asks of a client and nothing more: masked frames (wsproto),
a pong for each ping (section 5.5.3), the echo of the server's close frame
(section 5.5.1), close code 1006 for a connection lost without one (section
7.1.5), 1009 for a message over the size limit (section 7.4.1). The opening
handshake (section 4.1) is bounded by ``connect_timeout``; a failed TLS
handshake is reported with its cause.
"""

from __future__ import annotations

import contextlib
import itertools
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason as CloseCode

__all__ = [
    "CloseReason",
    "ClientWebSocket",
    "ConnectionClosed",
    "ConnectionRejected",
    "ConnectionTimeout",
    "HandshakeError",
    "open_client_websocket",
]

#: Bytes asked of the stream per read: every message in them is handed over at once.
RECEIVE_SIZE: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class CloseReason:
    """Why a WebSocket closed (RFC 6455 section 7.1.5).

    Attributes:
        code: the close code, e.g. 1000; 1006 when no close frame came.
        name: the code's name in RFC 6455 section 7.4.1, e.g. ``"NORMAL_CLOSURE"``.
        reason: the text of the close frame, if any.
    """

    code: int
    name: str
    reason: str | None


def _reason(code: int, text: str | None) -> CloseReason:
    try:
        name = CloseCode(code).name
    except ValueError:
        name = "UNKNOWN" if code < 4000 else "PRIVATE_RESERVED"
    return CloseReason(code, name, text or None)


class ConnectionClosed(Exception):
    """The WebSocket is closed; :attr:`reason` says how (a :class:`CloseReason`)."""

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason)
        self.reason = reason


class HandshakeError(Exception):
    """The connection never became a WebSocket (the message says why)."""


class ConnectionTimeout(HandshakeError):
    """No WebSocket within the connect timeout (no TCP, TLS or HTTP answer in time)."""


class ConnectionRejected(HandshakeError):
    """The server answered the upgrade with an HTTP status instead of 101.

    Attributes:
        status_code: the HTTP status, e.g. 404.
    """

    def __init__(self, status_code: int) -> None:
        super().__init__(f"the server answered HTTP {status_code}, not a WebSocket upgrade")
        self.status_code = status_code


class ClientWebSocket:
    """An open client WebSocket; made by :func:`open_client_websocket`.

    One task at a time may call :meth:`receive`; any task may :meth:`send`,
    :meth:`ping` and :meth:`aclose` (writes are serialized by a lock, so
    frames are never interleaved).
    """

    def __init__(
        self, stream: trio.abc.Stream, connection: WSConnection, max_message_size: int
    ) -> None:
        self._stream = stream
        self._ws = connection
        self._max_message_size = max_message_size
        self._write_lock = trio.Lock()
        self._messages: list[str | bytes] = []
        self._parts: list[str | bytes] = []
        self._size = 0
        self._reading = False
        self._close_reason: CloseReason | None = None
        self._closed = trio.Event()  # set once closed, whichever side began it
        self._pings: dict[bytes, trio.Event] = {}
        self._ping_numbers = itertools.count()

    @property
    def closed(self) -> CloseReason | None:
        """How the WebSocket closed, or None while it is open."""
        return self._close_reason

    async def receive(self) -> list[str | bytes]:
        """Wait for messages; return every one that the last read completed, in order.

        Returns:
            At least one message (a text message as ``str``).

        Raises:
            ConnectionClosed: the WebSocket closed (after the messages before the close).
        """
        while not self._messages:
            if self._close_reason is not None:
                raise ConnectionClosed(self._close_reason)
            await self._read_once()
        batch, self._messages = self._messages, []
        return batch

    async def send(self, messages: list[str]) -> None:
        """Write ``messages`` as text frames, in order, with one write to the stream.

        Not cancel-safe: a cancelled write may leave a frame half-written
        (callers shield it and bound it instead).

        Raises:
            ConnectionClosed: the WebSocket is closed (or closes during the write).
        """
        if self._close_reason is not None or self._ws.state is not ConnectionState.OPEN:
            raise ConnectionClosed(self._close_reason or _reason(1006, "closing"))
        data = b"".join([self._ws.send(Message(data=text)) for text in messages])
        await self._write(data)
        if self._close_reason is not None:
            raise ConnectionClosed(self._close_reason)

    async def ping(self) -> None:
        """Send a ping and wait for its pong (RFC 6455 section 5.5.2).

        A pong answers its own ping and every earlier one (section 5.5.3
        lets a server answer only the latest).

        Raises:
            ConnectionClosed: the WebSocket closed before the pong.
        """
        if self._close_reason is not None or self._ws.state is not ConnectionState.OPEN:
            raise ConnectionClosed(self._close_reason or _reason(1006, "closing"))
        payload = next(self._ping_numbers).to_bytes(8, "big")
        answered = self._pings[payload] = trio.Event()
        await self._write(self._ws.send(Ping(payload=payload)))
        await answered.wait()
        if self._close_reason is not None and payload in self._pings:
            raise ConnectionClosed(self._close_reason)

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close normally: send a close frame, wait for the server's, close the stream.

        Bound it with a timeout: it waits for the server's close frame (read
        by the task in :meth:`receive`, or here if none is reading).
        Idempotent; the stream is closed in any case.
        """
        try:
            if self._ws.state is ConnectionState.OPEN:
                self._close_reason = self._close_reason or _reason(code, reason)
                await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
            while not self._closed.is_set() and self._ws.state is ConnectionState.LOCAL_CLOSING:
                await self._read_once()
        except ConnectionClosed:
            pass
        finally:
            self._lost(None)
            await trio.aclose_forcefully(self._stream)

    # --- internals ------------------------------------------------------------------------

    async def _read_once(self) -> None:
        """Read once and handle what came; if another task is reading, wait for the close."""
        if self._reading:  # (a close reads while the receiver is busy elsewhere, or vice versa)
            await self._closed.wait()
            return
        self._reading = True
        try:
            data = await self._stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lost(str(exc) or None)
            return
        finally:
            self._reading = False
        if not data:
            self._lost(None)
            return
        await self._received(data)

    async def _received(self, data: bytes | bytearray) -> None:
        """Feed ``data`` to wsproto; queue its messages; answer pings and a close."""
        self._ws.receive_data(bytes(data))
        await self._handle(self._ws.events())

    async def _handle(self, events: Iterator[Event]) -> None:
        ws = self._ws
        replies: list[bytes] = []
        for event in events:
            if isinstance(event, TextMessage | BytesMessage):
                self._size += len(event.data)
                if self._size > self._max_message_size:
                    text = f"message over {self._max_message_size} bytes"
                    self._close_reason = _reason(CloseCode.MESSAGE_TOO_BIG, text)
                    replies.append(ws.send(CloseConnection(code=CloseCode.MESSAGE_TOO_BIG)))
                    break
                part = event.data
                self._parts.append(part if isinstance(part, str) else bytes(part))
                if event.message_finished:
                    empty: str | bytes = "" if isinstance(event, TextMessage) else b""
                    self._messages.append(empty.join(self._parts))  # type: ignore[arg-type]
                    self._parts, self._size = [], 0
            elif isinstance(event, Ping):
                replies.append(ws.send(event.response()))
            elif isinstance(event, Pong):
                self._answered(event.payload)
            elif isinstance(event, CloseConnection):
                if self._close_reason is None:
                    self._close_reason = _reason(event.code, event.reason)
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    replies.append(ws.send(event.response()))  # the echo (section 5.5.1)
                elif ws.state is ConnectionState.OPEN:  # a frame wsproto could not parse
                    replies.append(ws.send(CloseConnection(code=event.code)))
                self._closed.set()
                break
        if replies:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._write(b"".join(replies))
        if self._close_reason is not None:
            self._wake_pings()

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._lost(str(exc) or None)
                raise ConnectionClosed(self._close_reason or _reason(1006, None)) from exc

    def _answered(self, payload: bytes) -> None:
        if payload not in self._pings:
            return
        for sent in list(self._pings):  # in the order sent: this one and all before it
            self._pings.pop(sent).set()
            if sent == payload:
                break

    def _lost(self, text: str | None) -> None:
        """The stream ended (or we gave up on it): closed, 1006 unless a close frame came."""
        if self._close_reason is None:
            self._close_reason = _reason(CloseCode.ABNORMAL_CLOSURE, text)
        self._closed.set()
        self._wake_pings()

    def _wake_pings(self) -> None:
        for answered in self._pings.values():
            answered.set()


async def _handshake(
    stream: trio.abc.Stream, host: str, target: str, max_message_size: int
) -> ClientWebSocket:
    """Send the upgrade request, read the answer (RFC 6455 section 4.1)."""
    connection = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(connection.send(Request(host=host, target=target)))
    while True:
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise HandshakeError("the server closed the connection during the handshake")
        connection.receive_data(bytes(data))
        events = connection.events()
        for event in events:
            if isinstance(event, AcceptConnection):
                ws = ClientWebSocket(stream, connection, max_message_size)
                await ws._handle(events)  # frames that came with the 101 answer
                return ws
            if isinstance(event, RejectConnection):
                raise ConnectionRejected(event.status_code)


async def _connect(
    url: str, ssl_context: ssl.SSLContext | None, max_message_size: int
) -> ClientWebSocket:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    host = parts.hostname
    port = parts.port or (443 if scheme == "wss" else 80)
    default_port = port == (443 if scheme == "wss" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    try:
        if scheme == "wss":
            context = ssl_context or ssl.create_default_context()
            tls = trio.SSLStream(stream, context, server_hostname=host, https_compatible=True)
            stream = tls
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:
                cause = exc.__cause__
                wrong = isinstance(cause, ssl.SSLError) and cause.reason == "WRONG_VERSION_NUMBER"
                hint = " (the server does not speak TLS: a ws:// server?)" if wrong else ""
                text = f"TLS handshake with {host}:{port} failed: {cause or exc}{hint}"
                raise HandshakeError(text) from exc
        host_header = host if default_port else f"{host}:{port}"
        return await _handshake(stream, host_header, target, max_message_size)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise


@asynccontextmanager
async def open_client_websocket(
    url: str,
    ssl_context: ssl.SSLContext | None,
    *,
    connect_timeout: float,
    close_timeout: float,
    max_message_size: int,
) -> AsyncIterator[ClientWebSocket]:
    """Open a WebSocket to ``url`` for the body of an ``async with``; close it after.

    Args:
        url: ``ws://host[:port]/path`` or ``wss://...``.
        ssl_context: the TLS context for ``wss://`` (None: the default one).
        connect_timeout: seconds for TCP, TLS and the HTTP upgrade together.
        close_timeout: seconds the closing handshake may take at the end.
        max_message_size: longest message accepted, in bytes (else close 1009).

    Yields:
        The open :class:`ClientWebSocket`.

    Raises:
        OSError: no TCP connection (e.g. ``all attempts to connect to ... failed``).
        ConnectionTimeout: no WebSocket within ``connect_timeout``.
        ConnectionRejected: the server answered the upgrade with an HTTP error.
        HandshakeError: TLS failed, or the server hung up during the upgrade.
        ValueError: ``url`` is not a ``ws://`` or ``wss://`` URL.
    """
    with trio.move_on_after(connect_timeout) as opening:
        ws = await _connect(url, ssl_context, max_message_size)
    if opening.cancelled_caught:
        raise ConnectionTimeout(f"no WebSocket handshake from {url} within {connect_timeout:g} s")
    try:
        yield ws
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(close_timeout):
                await ws.aclose()
            await trio.aclose_forcefully(ws._stream)
