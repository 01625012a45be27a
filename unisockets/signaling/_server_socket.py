"""The signaling server's byte transport: a non-blocking socket, optional TLS, an output buffer.

:class:`SocketTransport` moves bytes for one accepted TCP connection with as
few system calls and task switches as it can, because the server's cost per
relayed message is mostly I/O overhead (docs/benchmarks.md, "Signaling
server"):

- Reading: :meth:`SocketTransport.receive_some` returns everything the
  kernel has (up to 64 KiB) in one ``recv``, so the WebSocket layer can hand
  every message in it to the state machine before reading again;
  :meth:`SocketTransport.receive_now` is the same ``recv`` without waiting,
  for the server's shared reader, which knows from its epoll that there is
  something to read.
- Writing never waits: :meth:`SocketTransport.queue` appends a whole frame
  and :meth:`SocketTransport.flush` writes everything queued in one ``send``
  from the calling task (the producer: no task switch). Only what the kernel
  does not take is left to a drain task (started on demand in the
  connection's nursery) that waits until the socket is writable.
- TLS runs sans-IO (:class:`ssl.SSLObject` over two :class:`ssl.MemoryBIO`)
  on the same path: frames are encrypted when they are written, in one go.

It works on a stdlib socket with :func:`trio.lowlevel.wait_readable` and
:func:`trio.lowlevel.wait_writable`, much as trio's own sockets do (trio's
``_socket.py``): a write is tried at once and waits only if it would block; a
read is tried at once only after a read that filled the buffer, and
otherwise waits first (with many quiet clients the first ``recv`` nearly
always fails: measured, two ``recv`` calls per message at 10,000 clients). Errors follow
trio's vocabulary: :class:`trio.BrokenResourceError` when the peer or the
network broke the connection (chained from the ``OSError`` or
``ssl.SSLError``).
"""

from __future__ import annotations

import socket
import ssl
from typing import Final

import trio

__all__ = ["RECEIVE_SIZE", "SocketTransport"]

#: Bytes asked of the kernel per ``recv``: a whole buffer of frames at once.
RECEIVE_SIZE: Final = 64 * 1024
#: Most bytes of queued frames joined into one ``send`` (bounds the copy for slow readers).
SEND_SIZE: Final = 256 * 1024


class SocketTransport:
    """One accepted TCP connection (optionally TLS) with a non-blocking outgoing buffer.

    Outgoing data is a list of whole frames (:meth:`queue`) not yet started,
    plus the bytes that must go out before them: the rest of a frame the
    kernel took only part of, or TLS records. :meth:`discard` drops only the
    frames not yet started, so the peer never sees a cut frame.

    Args:
        sock: the connected stdlib socket; the transport owns it from now on
            and makes it non-blocking.
        ssl_context: a server-side TLS context, or ``None`` for plain TCP
            (then :meth:`start_tls` must not be called).

    Attributes:
        broken: whether a ``send`` failed (the peer is gone); everything
            queued was dropped and later frames are dropped too.
    """

    __slots__ = (
        "_drained",
        "_draining",
        "_frames",
        "_frames_bytes",
        "_full_read",
        "_incoming",
        "_nursery",
        "_outgoing",
        "_sock",
        "_tls",
        "_wire",
        "broken",
        "dirty",
    )

    def __init__(self, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls: ssl.SSLObject | None = None
        if ssl_context is not None:
            self._tls = ssl_context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._frames: list[bytes] = []
        self._frames_bytes = 0
        self._wire: bytes | memoryview = b""
        self._full_read = False
        self._nursery: trio.Nursery | None = None
        self._draining = False
        self._drained: trio.Event | None = None
        self.broken = False
        #: Whether frames were queued since the last :meth:`flush` (the server's bookkeeping).
        self.dirty = False

    @property
    def queued(self) -> int:
        """Bytes waiting for the kernel: queued frames and the unsent rest of a started one."""
        return len(self._wire) + self._frames_bytes

    def attach(self, nursery: trio.Nursery) -> None:
        """Let :meth:`flush` start its drain task in ``nursery`` from now on.

        Before this call, a :meth:`flush` that could not write everything
        leaves the rest for :meth:`drain`.

        Args:
            nursery: the connection's nursery; cancelling it ends the drain.
        """
        self._nursery = nursery

    async def start_tls(self) -> None:
        """Run the server side of the TLS handshake (no-op for plain TCP).

        Raises:
            trio.BrokenResourceError: the handshake failed (not TLS, bad
                certificate, ...) or the connection broke.
            EOFError: the peer closed the connection during the handshake.
        """
        tls = self._tls
        if tls is None:
            return
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._take_tls_output()
                await self.drain()
                data = await self._receive_raw()
                if not data:
                    raise EOFError("closed during the TLS handshake") from None
                self._incoming.write(data)
            except ssl.SSLError as exc:
                raise trio.BrokenResourceError(f"TLS handshake failed: {exc}") from exc
            else:
                self._take_tls_output()
                await self.drain()
                return

    async def receive_some(self) -> bytes:
        """Everything available, up to 64 KiB of plaintext; ``b""`` at EOF.

        A checkpoint (trio's ABC for ``receive_some``); waits until there is
        data. With TLS, a peer that closes TCP without ``close_notify`` is
        EOF too (as ``https_compatible=True``).

        Returns:
            The bytes received, or ``b""`` if the peer closed the connection.

        Raises:
            trio.BrokenResourceError: the connection was reset, or TLS failed.
        """
        tls = self._tls
        if tls is None:
            return await self._receive_raw()
        while True:
            chunks: list[bytes] = []
            try:
                while True:
                    chunks.append(tls.read(RECEIVE_SIZE))
                    if not chunks[-1]:
                        break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                chunks.append(b"")
                return b"".join(chunks)
            except ssl.SSLError as exc:
                raise trio.BrokenResourceError(f"TLS failed: {exc}") from exc
            finally:
                if self._outgoing.pending:  # e.g. a key update the peer asked for
                    self._take_tls_output()
                    self.flush()
            data = b"".join(chunks)
            if data:
                return data
            raw = await self._receive_raw()
            if not raw:
                return b""
            self._incoming.write(raw)

    @property
    def tls(self) -> bool:
        """Whether the connection runs TLS (then only :meth:`receive_some` reads it)."""
        return self._tls is not None

    def fileno(self) -> int:
        """The socket's file descriptor (``-1`` once closed), e.g. to register it with epoll."""
        return self._sock.fileno()

    def receive_now(self) -> bytes | None:
        """One ``recv`` of up to 64 KiB, never waiting (plain TCP only): for a shared reader.

        Returns:
            The bytes received, ``b""`` if the peer closed the connection, or
            ``None`` if there is nothing to read now.

        Raises:
            trio.BrokenResourceError: the connection was reset.
        """
        try:
            return self._sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise trio.BrokenResourceError(f"receive failed: {exc}") from exc

    async def _receive_raw(self) -> bytes:
        if self._full_read:
            # The last read filled the buffer, so more is likely waiting: try before waiting.
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                data = self._sock.recv(RECEIVE_SIZE)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise trio.BrokenResourceError(f"receive failed: {exc}") from exc
            else:
                self._full_read = len(data) == RECEIVE_SIZE
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
        # Otherwise a recv now would most likely fail (EAGAIN): wait first, saving that call.
        while True:
            await trio.lowlevel.wait_readable(self._sock)
            try:
                data = self._sock.recv(RECEIVE_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(f"receive failed: {exc}") from exc
            self._full_read = len(data) == RECEIVE_SIZE
            return data

    def queue(self, frame: bytes) -> bool:
        """Append one whole frame to the outgoing buffer (never waits, never writes).

        Args:
            frame: the frame's bytes, as they go on the wire (before TLS).

        Returns:
            Whether the caller must now :meth:`flush` this transport: ``True``
            for the first frame since the last flush, unless a drain task
            already waits to write.
        """
        if self.broken:
            return False
        self._frames.append(frame)
        self._frames_bytes += len(frame)
        if self.dirty or self._draining:
            return False
        self.dirty = True
        return True

    def queue_raw(self, data: bytes) -> None:
        """Append bytes that must go out as they are (an HTTP response) before any frame.

        Args:
            data: bytes for the peer, encrypted if TLS is on.
        """
        if self._tls is not None:
            try:
                self._tls.write(data)
            except OSError:  # ssl.SSLError: TLS is closed or broken
                self._break()
                return
            self._take_tls_output()
        else:
            self._wire = bytes(self._wire) + data

    def discard(self) -> None:
        """Drop the queued frames that have not started (a started one is finished)."""
        self._frames.clear()
        self._frames_bytes = 0

    def flush(self) -> bool:
        """Write as much as the kernel takes now, in as few ``send`` calls as possible.

        Never waits. If something is left and :meth:`attach` was called, a
        drain task writes the rest once the socket is writable.

        Returns:
            Whether everything queued is written (or dropped, if the
            connection broke).
        """
        self.dirty = False
        if self._flush():
            return True
        if self._nursery is not None and not self._draining:
            self._draining = True
            self._nursery.start_soon(self._drain_task)
        return False

    def _flush(self) -> bool:
        sock = self._sock
        while True:
            wire = self._wire
            taken: list[bytes] | None = None
            if not wire:
                frames = self._frames
                if not frames:
                    return True
                if self._frames_bytes <= SEND_SIZE:
                    taken, self._frames = frames, []
                else:
                    size = count = 0
                    while size < SEND_SIZE:
                        size += len(frames[count])
                        count += 1
                    taken, self._frames = frames[:count], frames[count:]
                data = taken[0] if len(taken) == 1 else b"".join(taken)
                self._frames_bytes -= len(data)
                if self._tls is not None:
                    try:
                        self._tls.write(data)
                    except OSError:  # ssl.SSLError: TLS is closed or broken
                        return self._break()
                    data = self._outgoing.read()
                    taken = None  # TLS records cannot be cut at frame boundaries
                wire = data
            try:
                sent = sock.send(wire)
            except BlockingIOError:
                sent = 0
            except OSError:
                return self._break()
            if sent == len(wire):
                self._wire = b""
                continue
            self._keep_unsent(wire, sent, taken)
            return False

    def _break(self) -> bool:
        """The connection broke while writing: drop everything, now and later."""
        self.broken = True
        self._wire = b""
        self.discard()
        return True

    def _keep_unsent(self, wire: bytes | memoryview, sent: int, taken: list[bytes] | None) -> None:
        """After a short ``send``: the rest of the started frame must go, later frames may wait."""
        rest = memoryview(wire)[sent:]
        if taken is None:
            self._wire = rest
            return
        end = index = 0
        while end <= sent:
            end += len(taken[index])
            index += 1
        self._wire = rest[: end - sent]
        later = taken[index:]
        if later:
            self._frames[:0] = later
            self._frames_bytes += sum(map(len, later))

    def _take_tls_output(self) -> None:
        if self._outgoing.pending:
            self._wire = bytes(self._wire) + self._outgoing.read()

    async def drain(self) -> None:
        """Wait until everything queued is written (or the connection broke)."""
        if self._draining:
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()
            return
        self.dirty = False
        while not self._flush():
            await trio.lowlevel.wait_writable(self._sock)

    async def _drain_task(self) -> None:
        try:
            while True:
                await trio.lowlevel.wait_writable(self._sock)
                if self._flush():
                    return
        finally:
            self._draining = False
            if self._drained is not None:
                self._drained.set()
                self._drained = None

    def close(self) -> None:
        """Close the socket (no TLS ``close_notify``), waking any task waiting on it."""
        if self._sock.fileno() != -1:
            trio.lowlevel.notify_closing(self._sock)
        self._sock.close()
