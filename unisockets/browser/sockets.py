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

What differs from :mod:`socket`: every call that waits is a coroutine (a
page has one thread; blocking it would freeze the tab), and there are no
socket options, ``makefile`` or non-stream types.
"""

from __future__ import annotations

import asyncio
import errno
import socket as _stdlib_socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from ..protocol.socket_states import (
    SocketInput,
    SocketStateMachine,
    check_backlog,
    check_bufsize,
    check_local_host,
)
from .errors import BrokenResourceError, ClosedResourceError, oserror
from .node import DEFAULT_BACKLOG, Listener, check_address
from .streams import Address, Stream

if TYPE_CHECKING:
    from .node import BrowserNode

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


class Socket:
    """A stream socket on a browser node (``AF_INET``, ``SOCK_STREAM``).

    Create it with :meth:`BrowserNode.socket <unisockets.browser.node.BrowserNode.socket>`.
    ``async with sock:`` closes it and waits until the close was sent.

    Attributes:
        family: always ``AF_INET``.
        type: always ``SOCK_STREAM``.
    """

    family = AF_INET
    type = SOCK_STREAM

    def __init__(self, node: BrowserNode, stream: Stream | None = None) -> None:
        self._node = node
        self._machine = SocketStateMachine(connected=stream is not None)
        self._bound: Address | None = None
        self._listener: Listener | None = None
        self._stream = stream
        self._send_lock = asyncio.Lock()
        self._receive_lock = asyncio.Lock()

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

        Raises:
            OSError: ``EADDRINUSE`` (taken), ``EADDRNOTAVAIL`` (another node's
                address), ``EINVAL`` (already bound or connected, bad address),
                ``EBADF`` (closed).
        """
        self._machine.check(SocketInput.BIND)
        host, port = check_address(address)
        check_local_host(host, self._node.address)
        with self._machine.attempt(SocketInput.BIND):
            bound = await self._node.bind(port)
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
        """Wait for a connection.

        Returns:
            ``(socket, address)``: a connected socket and the peer's ``(host, port)``.

        Raises:
            OSError: ``EINVAL`` when not listening, ``EBADF`` when closed (also while waiting).
        """
        self._machine.check(SocketInput.ACCEPT)
        assert self._listener is not None  # LISTENING
        with _translate("accept"):
            stream = await self._listener.accept()
        return Socket(self._node, stream), stream.remote_address

    # --- client side -------------------------------------------------------------------------

    async def connect(self, address: Address) -> None:
        """Connect to a listening socket at ``(host, port)``.

        Raises:
            OSError: ``ECONNREFUSED``, ``EISCONN`` (already connected), ``EINVAL``
                (bound or listening socket, bad address), ``ETIMEDOUT``,
                ``ECONNRESET``, ``EBADF`` (closed).
        """
        with self._machine.attempt(SocketInput.CONNECT):
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

        Raises:
            OSError: as :meth:`send`.
        """
        stream = self._connected_stream(SocketInput.SEND)
        async with self._send_lock:
            self._machine.check(SocketInput.SEND)  # closed or shut down meanwhile?
            with _translate("send"):
                await stream.send_all(data)

    async def recv(self, bufsize: int) -> bytes:
        """Receive up to ``bufsize`` bytes.

        Returns:
            At least one byte, or ``b""`` at EOF and after ``shutdown(SHUT_RD)``.

        Raises:
            OSError: ``ENOTCONN``, ``EINVAL`` (``bufsize`` < 1), ``ECONNRESET``,
                ``EBADF`` (closed).
        """
        stream = self._connected_stream(SocketInput.RECV)
        check_bufsize(bufsize)
        async with self._receive_lock:
            if self._machine.read_shut:
                return b""
            self._machine.check(SocketInput.RECV)
            with _translate("recv"):
                return await stream.receive_some(bufsize)

    def shutdown(self, how: int) -> None:
        """Shut down one or both directions (``SHUT_RD``, ``SHUT_WR``, ``SHUT_RDWR``).

        Raises:
            OSError: ``ENOTCONN`` when not connected, ``EINVAL`` for a bad
                ``how``, ``EBADF`` when closed.
        """
        if self._machine.shutdown(how):  # the writing side was open until now
            assert self._stream is not None  # CONNECTED
            self._node._spawn(self._send_eof(self._stream))

    async def _send_eof(self, stream: Stream) -> None:
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
        return self._machine.close()

    async def _finish_close(self) -> None:
        if self._stream is not None:
            async with self._send_lock:
                await self._stream.aclose()
        elif self._listener is not None:
            await self._listener.aclose()
        elif self._bound is not None:
            with suppress(OSError, ConnectionError):
                await self._node.unbind(self._bound)

    # --- helpers -----------------------------------------------------------------------------

    def _connected_stream(self, call: SocketInput) -> Stream:
        """Check ``call`` (``EBADF``, ``ENOTCONN``, ``EPIPE``) and return the stream."""
        self._machine.check(call)
        assert self._stream is not None  # CONNECTED
        return self._stream
