"""The stream socket calls that every driver makes alike, with the runtime injected.

:class:`StreamSocketBase` holds the Berkeley socket calls (``getsockname``,
``bind``, ``accept``, ``connect``, ``send``/``sendall``, ``recv``/``recv_into``,
``shutdown``, ``setsockopt``/``getsockopt``) of both socket APIs: the trio one
(:class:`unisockets.net.Socket`) and the asyncio one
(:class:`unisockets.driver.sockets.Socket`). Which call is legal in which
state and its errno is the :class:`~unisockets.protocol.socket_states.SocketStateMachine`'s;
options and timeouts are :mod:`unisockets.protocol.socket_options`'. What a
runtime does differently is injected, as abstract methods a driver's socket
defines (h11's rule, docs/concepts.md "The layers"): how a timeout bounds a
wait (:meth:`StreamSocketBase._deadline`), how a call yields to the scheduler
(:meth:`~StreamSocketBase._checkpoint`), how a node binds, connects and
accepts, and how the EOF of ``shutdown`` is sent from a node task. The locks
and the stream are the runtime's own (trio's or asyncio's ``Lock``, a trio or
asyncio byte stream): this module only awaits them.

What it awaits is described in :mod:`unisockets.protocol.socket_shapes`.
"""

from __future__ import annotations

import builtins
import errno
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Generic, Self, TypeVar

from .planner import check_address
from .socket_options import BlockingMode, SocketOptions, check_recv_into, encode
from .socket_shapes import Address, Buffer, ByteStream, Deadline, Lock, OsSocket, SocketContext
from .socket_states import SocketInput, SocketStateMachine, check_bufsize, oserror

__all__ = ["StreamSocketBase"]


StreamT = TypeVar("StreamT", bound=ByteStream)
BindingT = TypeVar("BindingT")


class StreamSocketBase(SocketContext, BlockingMode, Generic[StreamT, BindingT]):
    """The calls of a ``SOCK_STREAM`` socket, the same on every runtime (see the module docstring).

    A driver's socket sets the attributes below in its constructor and defines
    the abstract methods. Errors follow POSIX sockets: :class:`OSError` with a
    real errno (``ECONNREFUSED``, ``EADDRINUSE``, ``EADDRNOTAVAIL``,
    ``ENOTCONN``, ``EISCONN``, ``EBADF``, ``EINVAL``, ``EPIPE``,
    ``ECONNRESET``), ``BlockingIOError`` and ``TimeoutError`` for timeouts.
    """

    #: The runtime's "the stream broke" and "the stream was closed" errors
    #: (trio's ``BrokenResourceError``/``ClosedResourceError`` or the driver's).
    _broken_error: builtins.type[BaseException]
    _closed_error: builtins.type[BaseException]
    _machine: SocketStateMachine
    _stream: StreamT | None
    _options: SocketOptions
    _send_lock: Lock
    _receive_lock: Lock

    # -- what a runtime provides -------------------------------------------

    @abstractmethod
    def _deadline(self, timeout: float | None, call: str) -> Deadline:
        """The deadline of one call that starts now (``timeout`` None: none)."""

    @abstractmethod
    async def _checkpoint(self) -> None:
        """Yield to the scheduler once (a call that had nothing to wait for)."""

    @abstractmethod
    def _bound_address(self) -> Address | None:
        """The bound ``(host, port)`` of an unconnected socket, or None."""

    @abstractmethod
    async def _bind_to(self, host: str, port: int) -> BindingT:
        """Bind ``(host, port)`` on the node (checked); return what ``bind`` keeps."""

    @abstractmethod
    async def _unbind(self, binding: BindingT) -> None:
        """Release a binding made while the socket was being closed."""

    @abstractmethod
    def _keep_binding(self, binding: BindingT) -> None:
        """Keep the binding: the socket is bound."""

    @abstractmethod
    async def _open_connection(self, address: Address) -> StreamT:
        """Connect on the node (the address is checked)."""

    @abstractmethod
    async def _discard(self, stream: StreamT) -> None:
        """Close a stream that connected after the socket was closed."""

    @abstractmethod
    async def _accept_stream(self) -> StreamT:
        """Wait for the listener's next connection."""

    @abstractmethod
    def _accepted(self, stream: StreamT) -> Self:
        """A new connected socket of this class on this node."""

    @abstractmethod
    def _spawn_send_eof(self, stream: StreamT) -> None:
        """Run :meth:`_send_eof` in a task of the node (``shutdown`` returns at once)."""

    def _os_socket(self) -> OsSocket | None:
        """The OS socket behind this socket (native fallback), else None."""
        return None

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Turn the runtime's stream errors into the OSError a socket call would raise."""
        try:
            yield
        except self._broken_error as exc:
            raise oserror(errno.ECONNRESET, what) from exc
        except self._closed_error:
            raise oserror(errno.EBADF, what) from None

    def _connected_stream(self, call: SocketInput) -> StreamT:
        """Check ``call`` (``EBADF``, ``ENOTCONN``, ``EPIPE``) and return the stream."""
        self._machine.check(call)
        assert self._stream is not None  # CONNECTED
        return self._stream

    # -- addresses ---------------------------------------------------------

    def getsockname(self) -> Address:
        """This socket's ``(host, port)``; ``("0.0.0.0", 0)`` before bind/connect.

        Raises:
            OSError: ``EBADF`` when closed.
        """
        self._machine.check(SocketInput.GETSOCKNAME)
        if self._stream is not None:
            return self._stream.local_address
        return self._bound_address() or ("0.0.0.0", 0)

    def getpeername(self) -> Address:
        """The connected peer's ``(host, port)``.

        Raises:
            OSError: ``ENOTCONN`` when not connected, ``EBADF`` when closed.
        """
        return self._connected_stream(SocketInput.GETPEERNAME).remote_address

    # -- server side -------------------------------------------------------

    async def bind(self, address: Address) -> None:
        """Bind to ``(host, port)`` on this node (port 0: any free port).

        ``host`` may be ``""``, ``"0.0.0.0"`` or the node's own address; on
        an overlay node also any address that is no other node's id, e.g.
        ``"127.0.0.1"`` (docs/protocol.md, "Bind and listen").

        Raises:
            OSError: ``EADDRINUSE`` (taken), ``EADDRNOTAVAIL`` (another node's
                address), ``EINVAL`` (already bound or connected, bad address),
                ``EBADF`` (closed).
        """
        self._machine.check(SocketInput.BIND)
        host, port = check_address(address)
        with self._machine.attempt(SocketInput.BIND):
            binding = await self._bind_to(host, port)
        if self._machine.closed:  # closed while binding: EBADF below
            await self._unbind(binding)
        self._machine.handle(SocketInput.BIND_DONE)
        self._keep_binding(binding)

    async def accept(self) -> tuple[Self, Address]:
        """Wait for a connection (up to the socket's timeout, ``settimeout``).

        Returns:
            ``(socket, address)``: a connected socket and the peer's ``(host, port)``.
            The socket is blocking (timeout ``None``) and has this socket's options.

        Raises:
            OSError: ``EINVAL`` when not listening, ``EBADF`` when closed
                (also when closed while waiting).
            BlockingIOError: timeout ``0`` and no connection is queued.
            TimeoutError: the timeout expired.
        """
        self._machine.check(SocketInput.ACCEPT)
        with self._translate("accept"):
            async with self._deadline(self._timeout, "accept").scope():
                stream = await self._accept_stream()
        accepted = self._accepted(stream)
        accepted._options = self._options.copy()
        return accepted, stream.remote_address

    # -- client side -------------------------------------------------------

    async def connect(self, address: Address) -> None:
        """Connect to a listening socket at ``(host, port)`` (up to the socket's timeout).

        Raises:
            OSError: ``ECONNREFUSED`` (nobody accepting there), ``EISCONN``
                (already connected), ``EINVAL`` (bound/listening socket, bad
                address), ``ETIMEDOUT``, ``EBADF`` (closed).
            BlockingIOError: timeout ``0`` (a connection always needs a round
                trip); unlike an OS socket's ``EINPROGRESS``, the attempt is
                abandoned and the socket may connect again.
            TimeoutError: the timeout expired (the attempt is abandoned).
        """
        with self._machine.attempt(SocketInput.CONNECT):
            async with self._deadline(self._timeout, "connect").scope():
                stream = await self._open_connection(check_address(address))
        if self._machine.closed:  # closed while connecting: EBADF below
            await self._discard(stream)
        self._machine.handle(SocketInput.CONNECT_DONE)
        self._stream = stream

    # -- data --------------------------------------------------------------

    async def send(self, data: bytes | bytearray | memoryview) -> int:
        """Send ``data``; returns the number of bytes sent (all of them).

        Raises:
            OSError: ``ENOTCONN``, ``EPIPE`` (after ``shutdown(SHUT_WR)``),
                ``ECONNRESET`` (connection broke), ``EBADF`` (closed).
        """
        await self.sendall(data)
        return len(data)

    async def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data`` (in order with other sends on this socket).

        With a positive timeout (``settimeout``), the timeout bounds the
        wait for room to send (the peer's credit, natively the OS buffer);
        once there is room the whole of ``data`` is taken, so a timeout never
        leaves a part of it sent. With timeout ``0`` a send never raises
        ``BlockingIOError``: the data is taken as with ``None`` (a partial send
        could not be reported without losing track of the bytes, and there is
        no ``select()`` to wait for room with).

        Raises:
            OSError: as :meth:`send`.
            TimeoutError: the timeout expired before there was room (nothing sent).
        """
        stream = self._connected_stream(SocketInput.SEND)
        timeout = self._timeout or None  # 0: see above
        deadline = self._deadline(timeout, "send")
        async with deadline.scope():
            await self._send_lock.acquire()
        try:
            self._machine.check(SocketInput.SEND)  # closed or shut down meanwhile?
            with self._translate("send"):
                if timeout is not None:
                    async with deadline.scope():
                        await stream.wait_send_all_might_not_block()
                await stream.send_all(data)
        finally:
            self._send_lock.release()

    async def recv(self, bufsize: int) -> bytes:
        """Receive up to ``bufsize`` bytes (waiting up to the socket's timeout).

        Returns:
            At least one byte, or ``b""`` at EOF (the peer shut down its
            sending side or closed) and after ``shutdown(SHUT_RD)``.

        Raises:
            OSError: ``ENOTCONN``, ``EINVAL`` (``bufsize`` < 1),
                ``ECONNRESET`` (connection broke), ``EBADF`` (closed).
            BlockingIOError: timeout ``0`` and nothing received yet.
            TimeoutError: the timeout expired (no byte is lost: the next
                ``recv`` gets them).
        """
        stream = self._connected_stream(SocketInput.RECV)
        check_bufsize(bufsize)
        deadline = self._deadline(self._timeout, "recv")
        async with deadline.scope():
            await self._receive_lock.acquire()
        try:
            if self._machine.read_shut:
                return b""
            self._machine.check(SocketInput.RECV)
            with self._translate("recv"):
                async with deadline.scope():
                    return await stream.receive_some(bufsize)
        finally:
            self._receive_lock.release()

    async def recv_into(self, buffer: Buffer, nbytes: int = 0) -> int:
        """Receive up to ``nbytes`` bytes into ``buffer`` (:meth:`socket.socket.recv_into`).

        Args:
            buffer: a writable bytes-like object (``bytearray``, ``memoryview``,
                ``array``...), filled from its start.
            nbytes: the most bytes to receive; ``0``: ``len(buffer)``.

        Returns:
            The number of bytes written, ``0`` at EOF (or for an empty buffer).

        Raises:
            ValueError: ``nbytes`` negative or larger than the buffer.
            TypeError: ``buffer`` is not writable.
            OSError: as :meth:`recv`; ``BlockingIOError`` and ``TimeoutError`` as well.
        """
        self._connected_stream(SocketInput.RECV)
        view, size = check_recv_into(buffer, nbytes)
        if size == 0:
            await self._checkpoint()
            return 0
        data = await self.recv(size)
        view[: len(data)] = data
        return len(data)

    def shutdown(self, how: int) -> None:
        """Shut down one or both directions (``SHUT_RD``, ``SHUT_WR``, ``SHUT_RDWR``).

        ``SHUT_WR`` sends EOF to the peer after any send in progress;
        ``SHUT_RD`` makes later :meth:`recv` calls return ``b""``.

        Raises:
            OSError: ``ENOTCONN`` when not connected, ``EINVAL`` for a bad
                ``how``, ``EBADF`` when closed.
        """
        if self._machine.shutdown(how):  # the writing side was open until now
            assert self._stream is not None  # CONNECTED
            self._spawn_send_eof(self._stream)

    async def _send_eof(self, stream: StreamT) -> None:
        """Send the EOF of ``shutdown`` after any send in progress (a node task)."""
        async with self._send_lock:
            with suppress(self._broken_error, self._closed_error):
                await stream.send_eof()

    # -- options -----------------------------------------------------------

    def setsockopt(self, level: int, optname: int, value: int | Buffer) -> None:
        """Set a socket option (setsockopt(2)); docs/concepts.md lists them and their effect.

        The value is stored (``getsockopt`` returns it). On the native
        fallback it is also set on the OS socket: now if there is one, else
        on the one ``bind``/``connect`` creates (before binding/connecting).

        Args:
            level: ``socket.SOL_SOCKET`` or ``socket.IPPROTO_TCP``.
            optname: ``SO_REUSEADDR``, ``SO_KEEPALIVE``, ``SO_RCVBUF``,
                ``SO_SNDBUF`` or ``TCP_NODELAY``.
            value: an ``int`` (flags: non-zero is on) or a bytes-like C ``int``.

        Raises:
            OSError: ``ENOPROTOOPT`` (another option, or a read-only one),
                ``EINVAL`` (negative size, buffer too short), ``EBADF`` (closed);
                natively, whatever the OS says.
            TypeError: ``value`` is neither an ``int`` nor bytes-like.
        """
        self._machine.check(SocketInput.OPTION)
        _, number = self._options.set(level, optname, value)
        os_socket = self._os_socket()
        if os_socket is not None:
            os_socket.setsockopt(level, optname, number)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """Read a socket option (getsockopt(2)).

        Args:
            level: as :meth:`setsockopt`.
            optname: as :meth:`setsockopt`, or the read-only ``SO_TYPE``, ``SO_ERROR``.
            buflen: ``None``/``0`` for an ``int``; 1..1024 for bytes (a C ``int``).

        Returns:
            The value set, else the default (docs/concepts.md); natively, the OS
            socket's value once there is one (Linux doubles ``SO_RCVBUF``/``SO_SNDBUF``).

        Raises:
            OSError: ``ENOPROTOOPT`` (unknown option), ``EINVAL`` (bad
                ``buflen``), ``EBADF`` (closed).
        """
        self._machine.check(SocketInput.OPTION)
        value = self._options.get(level, optname, buflen)
        os_socket = self._os_socket()
        if os_socket is None:
            return value
        return encode(os_socket.getsockopt(level, optname), buflen)
