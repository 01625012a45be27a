"""Berkeley-style socket objects in the browser, async like :mod:`unisockets.net.sockets`.

``sock = node.socket()`` gives a ``SOCK_STREAM`` socket on the tab's overlay
node, with the calls and errors of POSIX sockets: :class:`OSError` with a real
errno (``ECONNREFUSED``, ``EADDRINUSE``, ``EADDRNOTAVAIL``, ``ENOTCONN``,
``EISCONN``, ``EBADF``, ``EINVAL``, ``EPIPE``, ``ECONNRESET``). As natively,
``shutdown`` and ``close`` are synchronous and the EOF or close reaches the
peer from a task of the node, after any send already in progress. Which call is
legal in which state, and the errno of each illegal one, is decided by the
sans-IO :class:`~unisockets.protocol.socket_states.SocketStateMachine`, the
same as for :mod:`unisockets.net.sockets`.

Socket options, timeouts and ``recv_into`` work as natively, decided by the
same sans-IO :mod:`unisockets.protocol.socket_options` (docs/concepts.md,
"Socket options and timeouts"); ``close`` releases a bound or listening
address at once, a ``bind`` of it right after waits for the release.

What differs from :mod:`socket`: every call that waits is a coroutine (a
page has one thread; blocking it would freeze the tab), and there is no
``makefile``, file descriptor or non-stream type.
"""

from __future__ import annotations

import asyncio
import errno
import socket as _stdlib_socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING

from ..protocol.addresses import format_alias
from ..protocol.socket_options import (
    BlockingMode,
    SocketOptions,
    check_recv_into,
    timeout_error,
)
from ..protocol.socket_states import (
    SocketInput,
    SocketStateMachine,
    check_backlog,
    check_bufsize,
)
from .errors import BrokenResourceError, ClosedResourceError, oserror
from .legacy import AnyStream
from .node import DEFAULT_BACKLOG, Listener, check_address
from .streams import Address

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .node import DriverNode

__all__ = ["AF_INET", "SHUT_RD", "SHUT_RDWR", "SHUT_WR", "SOCK_STREAM", "Socket"]

AF_INET = _stdlib_socket.AF_INET
SOCK_STREAM = _stdlib_socket.SOCK_STREAM
SHUT_RD = _stdlib_socket.SHUT_RD
SHUT_WR = _stdlib_socket.SHUT_WR
SHUT_RDWR = _stdlib_socket.SHUT_RDWR


@contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn stream errors into the OSError a socket call would raise."""
    try:
        yield
    except BrokenResourceError as exc:
        raise oserror(errno.ECONNRESET, what) from exc
    except ClosedResourceError:
        raise oserror(errno.EBADF, what) from None


class _Deadline:
    """The time one call of a socket with a timeout may take (:meth:`Socket.settimeout`)."""

    def __init__(self, timeout: float | None, call: str) -> None:
        self._timeout = timeout
        self._call = call
        self._loop = asyncio.get_running_loop()
        self._when = None if timeout is None else self._loop.time() + timeout

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """Around one wait of the call: raise the timeout's error when the deadline passes.

        A timeout of ``0`` cancels the block after one pass of the event loop,
        so what can finish without waiting (bytes already received, a
        connection already queued) finishes, the rest raises ``BlockingIOError``.
        """
        if self._timeout is None:
            yield
            return
        timer = asyncio.timeout(None)
        try:
            async with timer:
                if self._timeout == 0:
                    loop = self._loop
                    handle = loop.call_soon(lambda: timer.reschedule(loop.time()))
                else:
                    handle = None
                    timer.reschedule(self._when)
                try:
                    yield
                finally:
                    if handle is not None:
                        handle.cancel()
        except TimeoutError:
            if timer.expired():
                raise timeout_error(self._timeout, self._call) from None
            raise


class Socket(BlockingMode):
    """A stream socket on a browser node (``AF_INET``, ``SOCK_STREAM``).

    Create it with :meth:`DriverNode.socket <unisockets.driver.node.DriverNode.socket>`.
    ``async with sock:`` closes it and waits until the close was sent.

    Attributes:
        family: always ``AF_INET``.
        type: always ``SOCK_STREAM``.
    """

    family = AF_INET
    type = SOCK_STREAM

    def __init__(self, node: DriverNode, stream: AnyStream | None = None) -> None:
        self._node = node
        self._machine = SocketStateMachine(connected=stream is not None)
        self._bound: Address | None = None
        self._listener: Listener | None = None
        self._stream = stream
        self._send_lock = asyncio.Lock()
        self._receive_lock = asyncio.Lock()
        self._options = SocketOptions(_stdlib_socket)

    def __repr__(self) -> str:
        return f"<unisockets.browser.Socket {self._machine.state.value} on {self._node!r}>"

    # --- addresses ---------------------------------------------------------------------------

    def getsockname(self) -> Address:
        """This socket's ``(host, port)``; ``("0.0.0.0", 0)`` before bind/connect.

        Raises:
            OSError: ``EBADF`` when closed.
        """
        self._machine.check(SocketInput.GETSOCKNAME)
        if self._stream is not None:
            return self._stream.local_address
        return self._bound or ("0.0.0.0", 0)

    def getpeername(self) -> Address:
        """The connected peer's ``(host, port)``.

        Raises:
            OSError: ``ENOTCONN`` when not connected, ``EBADF`` when closed.
        """
        return self._connected_stream(SocketInput.GETPEERNAME).remote_address

    # --- server side -------------------------------------------------------------------------

    async def bind(self, address: Address) -> None:
        """Bind to ``(host, port)`` on this node (port 0: any free port).

        ``host`` may be ``""``, ``"0.0.0.0"`` or the node's own address, and
        also any address that is no other node's id, e.g. ``"127.0.0.1"``
        (docs/protocol.md, "Bind and listen"), as on the trio node.

        Raises:
            OSError: ``EADDRINUSE`` (taken), ``EADDRNOTAVAIL`` (another node's
                address), ``EINVAL`` (already bound or connected, bad address),
                ``EBADF`` (closed).
        """
        self._machine.check(SocketInput.BIND)
        host, port = check_address(address)
        with self._machine.attempt(SocketInput.BIND):
            bound = await self._node.bind(port, host)
        if self._machine.closed:  # closed while binding: EBADF below
            with suppress(OSError, ConnectionError):
                await self._node.unbind(bound)
        self._machine.handle(SocketInput.BIND_DONE)
        self._bound = bound

    def listen(self, backlog: int = DEFAULT_BACKLOG) -> None:
        """Start accepting connections; up to ``backlog`` wait for :meth:`accept`.

        Raises:
            OSError: ``EINVAL`` when not bound, connected, or ``backlog`` is not
                an ``int``; ``EBADF`` when closed.
        """
        self._machine.check(SocketInput.LISTEN)
        if self._listener is not None:  # listening already
            return
        assert self._bound is not None  # BOUND
        self._listener = self._node.listen_bound(self._bound, check_backlog(backlog))
        self._machine.handle(SocketInput.LISTEN)

    async def accept(self) -> tuple[Socket, Address]:
        """Wait for a connection (up to the socket's timeout, :meth:`settimeout`).

        Returns:
            ``(socket, address)``: a connected socket and the peer's ``(host, port)``.
            The socket is blocking and has this socket's options.

        Raises:
            OSError: ``EINVAL`` when not listening, ``EBADF`` when closed (also while waiting).
            BlockingIOError: timeout ``0`` and no connection is queued.
            TimeoutError: the timeout expired.
        """
        self._machine.check(SocketInput.ACCEPT)
        assert self._listener is not None  # LISTENING
        with _translate("accept"):
            async with _Deadline(self._timeout, "accept").scope():
                stream = await self._listener.accept()
        accepted = Socket(self._node, stream)
        accepted._options = self._options.copy()
        return accepted, stream.remote_address

    # --- client side -------------------------------------------------------------------------

    async def connect(self, address: Address) -> None:
        """Connect to a listening socket at ``(host, port)`` (up to the socket's timeout).

        Raises:
            OSError: ``ECONNREFUSED``, ``EISCONN`` (already connected), ``EINVAL``
                (bound or listening socket, bad address), ``ETIMEDOUT``,
                ``ECONNRESET``, ``EBADF`` (closed).
            BlockingIOError: timeout ``0`` (the attempt is abandoned).
            TimeoutError: the timeout expired (the attempt is abandoned).
        """
        with self._machine.attempt(SocketInput.CONNECT):
            async with _Deadline(self._timeout, "connect").scope():
                stream = await self._node.connect(check_address(address))
        if self._machine.closed:  # closed while connecting: EBADF below
            await stream.aclose()
        self._machine.handle(SocketInput.CONNECT_DONE)
        self._stream = stream

    # --- data --------------------------------------------------------------------------------

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

        A positive timeout bounds the wait for room to send (the peer's
        credit); then the whole of ``data`` is taken. Timeout ``0`` sends as
        ``None`` does, as natively (:meth:`unisockets.net.Socket.sendall`).

        Raises:
            OSError: as :meth:`send`.
            TimeoutError: the timeout expired before there was room (nothing sent).
        """
        stream = self._connected_stream(SocketInput.SEND)
        deadline = _Deadline(self._timeout or None, "send")
        async with deadline.scope():
            await self._send_lock.acquire()
        try:
            self._machine.check(SocketInput.SEND)  # closed or shut down meanwhile?
            with _translate("send"):
                if self._timeout:
                    async with deadline.scope():
                        await stream.wait_send_all_might_not_block()
                await stream.send_all(data)
        finally:
            self._send_lock.release()

    async def recv(self, bufsize: int) -> bytes:
        """Receive up to ``bufsize`` bytes.

        Returns:
            At least one byte, or ``b""`` at EOF and after ``shutdown(SHUT_RD)``.

        Raises:
            OSError: ``ENOTCONN``, ``EINVAL`` (``bufsize`` < 1), ``ECONNRESET``,
                ``EBADF`` (closed).
            BlockingIOError: timeout ``0`` and nothing received yet.
            TimeoutError: the timeout expired (no byte is lost).
        """
        stream = self._connected_stream(SocketInput.RECV)
        check_bufsize(bufsize)
        deadline = _Deadline(self._timeout, "recv")
        async with deadline.scope():
            await self._receive_lock.acquire()
        try:
            if self._machine.read_shut:
                return b""
            self._machine.check(SocketInput.RECV)
            with _translate("recv"):
                async with deadline.scope():
                    return await stream.receive_some(bufsize)
        finally:
            self._receive_lock.release()

    async def recv_into(self, buffer: Buffer, nbytes: int = 0) -> int:
        """Receive up to ``nbytes`` bytes into ``buffer`` (:meth:`socket.socket.recv_into`).

        Args:
            buffer: a writable bytes-like object, filled from its start.
            nbytes: the most bytes to receive; ``0``: ``len(buffer)``.

        Returns:
            The number of bytes written, ``0`` at EOF (or for an empty buffer).

        Raises:
            ValueError: ``nbytes`` negative or larger than the buffer.
            TypeError: ``buffer`` is not writable.
            OSError: as :meth:`recv`.
        """
        self._connected_stream(SocketInput.RECV)
        view, size = check_recv_into(buffer, nbytes)
        if size == 0:
            await asyncio.sleep(0)
            return 0
        data = await self.recv(size)
        view[: len(data)] = data
        return len(data)

    # --- options and timeouts ----------------------------------------------------------------

    def setsockopt(self, level: int, optname: int, value: int | Buffer) -> None:
        """Set a socket option (setsockopt(2)); stored, see docs/concepts.md for each one.

        Raises:
            OSError: ``ENOPROTOOPT`` (another option), ``EINVAL`` (bad value),
                ``EBADF`` (closed).
            TypeError: ``value`` is neither an ``int`` nor bytes-like.
        """
        self._machine.check(SocketInput.OPTION)
        self._options.set(level, optname, value)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """Read a socket option (getsockopt(2)): the value set, else its default.

        Raises:
            OSError: ``ENOPROTOOPT`` (unknown option), ``EINVAL`` (bad
                ``buflen``), ``EBADF`` (closed).
        """
        self._machine.check(SocketInput.OPTION)
        return self._options.get(level, optname, buflen)

    def shutdown(self, how: int) -> None:
        """Shut down one or both directions (``SHUT_RD``, ``SHUT_WR``, ``SHUT_RDWR``).

        Raises:
            OSError: ``ENOTCONN`` when not connected, ``EINVAL`` for a bad
                ``how``, ``EBADF`` when closed.
        """
        if self._machine.shutdown(how):  # the writing side was open until now
            assert self._stream is not None  # CONNECTED
            self._node._spawn(self._send_eof(self._stream))

    async def _send_eof(self, stream: AnyStream) -> None:
        async with self._send_lock:
            with suppress(BrokenResourceError, ClosedResourceError):
                await stream.send_eof()

    # --- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket at once; the close reaches the peer from a node task. Idempotent."""
        if self._begin_close():
            self._node._spawn(self._finish_close())

    async def aclose(self) -> None:
        """Close the socket and wait until the close was sent. Idempotent."""
        if self._begin_close():
            await self._finish_close()
        else:
            await asyncio.sleep(0)

    async def __aenter__(self) -> Socket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _begin_close(self) -> bool:
        if not self._machine.close():
            return False
        # Release the address now: a bind of it right after waits for the release.
        if self._stream is None and self._listener is not None:
            self._listener.close()
        elif self._stream is None and self._bound is not None:
            self._node._release(format_alias(*self._bound))
        return True

    async def _finish_close(self) -> None:
        if self._stream is not None:
            async with self._send_lock:
                await self._stream.aclose()
        elif self._listener is not None:
            await self._listener.aclose()

    # --- helpers -----------------------------------------------------------------------------

    def _connected_stream(self, call: SocketInput) -> AnyStream:
        """Check ``call`` (``EBADF``, ``ENOTCONN``, ``EPIPE``) and return the stream."""
        self._machine.check(call)
        assert self._stream is not None  # CONNECTED
        return self._stream
