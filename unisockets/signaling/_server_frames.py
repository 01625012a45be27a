"""Incoming WebSocket frames of the server, cut and decoded (RFC 6455 §5.2), and frames out.

:class:`FrameReader` is the frame level of
:class:`~unisockets.signaling._server_connection.ServerWebSocket` (whose
module docstring describes the two paths): incoming bytes are cut into whole
frames; a whole, masked, unfragmented text frame is unmasked and decoded
here, every other frame goes through wsproto, which validates it and answers
pings. :func:`text_frame` builds what a server sends. :class:`PeerClosed` and
:class:`PeerViolation` say how a connection ended.
"""

from __future__ import annotations

import struct
from typing import Final

import wsproto.events as ev
from wsproto.connection import Connection, ConnectionState

from ._server_socket import SocketTransport

__all__ = ["FrameReader", "PeerClosed", "PeerViolation", "text_frame"]

#: Opcodes of RFC 6455 §5.2: continuation, text, binary, close, ping, pong.
_OPCODES: Final = frozenset({0, 1, 2, 8, 9, 10})
_SHORT: Final = struct.Struct("!BB")
_MEDIUM: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")


def text_frame(data: bytes) -> bytes:
    """One unmasked, final text frame carrying ``data`` (RFC 6455 §5.2; what a server sends).

    Args:
        data: the message, UTF-8 encoded (not checked).

    Returns:
        The frame's bytes: a 2-, 4- or 10-byte header, then ``data``.
    """
    size = len(data)
    if size < 126:
        return _SHORT.pack(0x81, size) + data
    if size < 65536:
        return _MEDIUM.pack(0x81, 126, size) + data
    return _LONG.pack(0x81, 127, size) + data


class PeerClosed(Exception):
    """The peer ended the WebSocket: a close frame, or a TCP connection that ended without one.

    Args:
        code: the peer's close code, 1005 if its close frame had none, 1006
            if there was no close frame (EOF, reset).
        reason: the peer's close reason, or a description of how it broke.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class PeerViolation(Exception):
    """The peer broke RFC 6455 or the size limit; the connection must be closed with ``code``.

    Args:
        code: the close code to send: 1002 protocol error, 1007 invalid
            UTF-8, 1009 message too big.
        reason: what was wrong, for the close frame and the logs.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class FrameReader:
    """The frame level of a server WebSocket (a base of ``ServerWebSocket``).

    The attributes below are the WebSocket's (its ``__init__`` sets them).
    """

    __slots__ = (
        "_buffer",
        "_error",
        "_max_frame",
        "_max_size",
        "_parts",
        "_parts_size",
        "_ping_payload",
        "_proto",
        "awaiting_pong",
        "transport",
    )

    transport: SocketTransport
    awaiting_pong: bool
    _buffer: bytes
    _error: PeerClosed | PeerViolation | None
    _max_frame: int
    _max_size: int
    _parts: list[str | bytes] | None
    _parts_size: int
    _ping_payload: bytes
    _proto: Connection | None

    def _receive_frames(self, data: bytes) -> list[str | bytes]:
        """Cut ``data`` (after what was left over) into whole frames and process them in order."""
        buf = self._buffer + data if self._buffer else data
        messages: list[str | bytes] = []
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            first = buf[pos]
            second = buf[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                start += 2
                if start > size:
                    break
                length = int.from_bytes(buf[pos + 2 : start], "big")
            elif length == 127:
                start += 8
                if start > size:
                    break
                length = int.from_bytes(buf[pos + 2 : start], "big")
            if second & 0x80:
                start += 4
            opcode = first & 0x0F
            if (
                first & 0x70  # RSV bits: no extension was negotiated
                or opcode not in _OPCODES
                or not second & 0x80  # a client's frames are masked
                or (opcode >= 8 and (length > 125 or not first & 0x80))  # control frames
            ):
                # wsproto refuses the header by itself (1002), as RFC 6455 §5.2 asks
                if self._through_wsproto(buf[pos : min(start, size)], messages):
                    self._fail(1002, "invalid frame header")
                break
            if length > self._max_frame:
                self._fail(1009, f"Exceeded maximum message size: {self._max_size} bytes")
                break
            end = start + length
            if end > size:
                break
            if (
                first == 0x81
                and second & 0x80
                and self._parts is None
                and (second != 0xFE or length >= 126)
                and (second & 0x7F) != 127
            ):
                # the fast path: a whole masked text frame (RFC 6455 §5.3 masking)
                mask = buf[start - 4 : start]
                payload = (
                    int.from_bytes(buf[start:end], "little")
                    ^ int.from_bytes(mask * ((length >> 2) + 1), "little")
                ).to_bytes(length + 4, "little")[:length]
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    self._fail(1007, "invalid UTF-8 in a text message")
                    break
                if len(text) > self._max_size:
                    self._fail(1009, f"Exceeded maximum message size: {self._max_size} bytes")
                    break
                messages.append(text)
            elif not self._through_wsproto(buf[pos:end], messages):
                break
            pos = end
        self._buffer = buf[pos:] if pos < size else b""
        return messages

    def _through_wsproto(self, frame: bytes, messages: list[str | bytes]) -> bool:
        """Hand one whole frame to wsproto; ``False`` once the connection must stop reading."""
        proto = self._proto
        assert proto is not None
        proto.receive_data(frame)
        for event in proto.events():
            if isinstance(event, ev.Message):
                if self._parts is None:
                    self._parts = []
                    self._parts_size = 0
                self._parts.append(event.data)
                self._parts_size += len(event.data)
                if self._parts_size > self._max_size:
                    self._fail(1009, f"Exceeded maximum message size: {self._max_size} bytes")
                    return False
                if event.message_finished:
                    parts, self._parts = self._parts, None
                    if isinstance(event, ev.TextMessage):
                        messages.append("".join(parts))  # type: ignore[arg-type]
                    else:
                        messages.append(b"".join(parts))  # type: ignore[arg-type]
            elif isinstance(event, ev.Ping):
                if proto.state is ConnectionState.OPEN:
                    self._send_control(proto.send(event.response()))
            elif isinstance(event, ev.Pong):
                if event.payload == self._ping_payload:
                    self.awaiting_pong = False
            elif isinstance(event, ev.CloseConnection):
                if proto.state is ConnectionState.OPEN:
                    # wsproto reports a malformed frame as a close event, state unchanged
                    self._fail(event.code, event.reason or "protocol error")
                    return False
                # the echo waits for wait_closed(): the replies to the messages before
                # the close frame go first (RFC 6455 §5.5.1: no data after a close frame)
                self._error = PeerClosed(event.code, event.reason or "")
                return False
        return True

    def _fail(self, code: int, reason: str) -> None:
        self._error = PeerViolation(code, reason)

    def _send_control(self, frame: bytes) -> None:
        if self.transport.queue(frame):
            self.transport.flush()
