"""Berkeley-style socket objects, async in the spirit of :mod:`trio.socket`.

``sock = node.socket()`` gives a ``SOCK_STREAM`` socket on that node's network
(overlay or native). The calls and their errors follow POSIX sockets:
errors are :class:`OSError` with a real errno (``ECONNREFUSED``,
``EADDRINUSE``, ``EADDRNOTAVAIL``, ``ENOTCONN``, ``EISCONN``, ``EBADF``,
``EINVAL``, ``EPIPE``, ``ECONNRESET``), so code written against
:mod:`socket` handles them unchanged. Which call is legal in which state, and
the errno of each illegal one, is decided by the sans-IO
:class:`~unisockets.protocol.socket_states.SocketStateMachine` (shared with
:mod:`unisockets.browser.sockets`).

``shutdown`` and ``close`` are synchronous, as in :mod:`socket` and
:mod:`trio.socket`: they take effect at once for this socket, and the EOF or
close reaches the peer from a task of the node's nursery, after any
``send``/``sendall`` already in progress.
"""

from __future__ import annotations

import builtins
import errno
import socket as _stdlib_socket
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.socket_states import (
    SocketInput,
    SocketStateMachine,
    check_backlog,
    check_bufsize,
)
from .addresses import Address, check_address, oserror
from .streams import SocketStream

if TYPE_CHECKING:
    from types import TracebackType

    from .node import Binding, Node

__all__ = ["AF_INET", "SHUT_RD", "SHUT_RDWR", "SHUT_WR", "SOCK_STREAM", "Socket"]

AF_INET = _stdlib_socket.AF_INET
SOCK_STREAM = _stdlib_socket.SOCK_STREAM
SHUT_RD = _stdlib_socket.SHUT_RD
SHUT_WR = _stdlib_socket.SHUT_WR
SHUT_RDWR = _stdlib_socket.SHUT_RDWR


@contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn trio's stream errors into the OSError a socket call would raise."""
    try:
        yield
    except trio.BrokenResourceError as exc:
        raise oserror(errno.ECONNRESET, what) from exc
    except trio.ClosedResourceError:
        raise oserror(errno.EBADF, what) from None


class _ListenReady:
    """What :meth:`Socket.listen` returns: awaiting it waits until signaling knows."""

    def __init__(self, listener: trio.abc.Listener[SocketStream]) -> None:
        self._listener = listener

    def __await__(self) -> Generator[Any, None, None]:
        wait_ready: Callable[[], Coroutine[Any, Any, None]]
        wait_ready = self._listener.wait_ready  # type: ignore[attr-defined]
        return wait_ready().__await__()


class Socket:
    """A stream socket on a unisockets node (``AF_INET``, ``SOCK_STREAM``).

    Create it with :meth:`unisockets.net.Node.socket`. Usable as a context
    manager (``with`` closes it, ``async with`` closes it and waits).

    Attributes:
        family: always ``AF_INET``.
        type: always ``SOCK_STREAM``.
    """

    family = AF_INET
    type = SOCK_STREAM

    def __init__(self, node: Node, stream: SocketStream | None = None) -> None:
        self._node = node
        self._machine = SocketStateMachine(connected=stream is not None)
        self._binding: Binding | None = None
        self._listener: trio.abc.Listener[SocketStream] | None = None
        self._stream = stream
        self._send_lock = trio.Lock()
        self._receive_lock = trio.Lock()

    # -- addresses -------------------------------------------------------

    def getsockname(self) -> Address:
        """This socket's ``(host, port)``; ``("0.0.0.0", 0)`` before bind/connect.

        Raises:
            OSError: ``EBADF`` when closed.
        """
        self._machine.check(SocketInput.GETSOCKNAME)
        if self._stream is not None:
            return self._stream.local_address
        if self._binding is not None:
            return self._binding.address
        return ("0.0.0.0", 0)

    def getpeername(self) -> Address:
        """The connected peer's ``(host, port)``.

        Raises:
            OSError: ``ENOTCONN`` when not connected, ``EBADF`` when closed.
        """
        return self._connected_stream(SocketInput.GETPEERNAME).remote_address

    # -- server side -----------------------------------------------------

    async def bind(self, address: Address) -> None:
        """Bind to ``(host, port)`` on this node (port 0: any free port).

        ``host`` may be ``""``, ``"0.0.0.0"`` or the node's own address; on
        an overlay node also any address that is no other node's id, e.g.
        ``"127.0.0.1"`` (docs/protocol.md, "Bind").

        Raises:
            OSError: ``EADDRINUSE`` (taken), ``EADDRNOTAVAIL`` (another node's
                address), ``EINVAL`` (already bound or connected, bad address),
                ``EBADF`` (closed).
        """
        self._machine.check(SocketInput.BIND)
        host, port = check_address(address)
        with self._machine.attempt(SocketInput.BIND):
            binding = await self._node.bind(port, host)
        if self._machine.closed:  # closed while binding: EBADF below
            await binding.aclose()
        self._machine.handle(SocketInput.BIND_DONE)
        self._binding = binding

    def listen(self, backlog: int = 128) -> _ListenReady:
        """Start accepting connections; up to ``backlog`` wait for :meth:`accept`.

        Takes effect at once, as in :mod:`socket`. On an overlay node the
        signaling server learns of it a moment later; the returned object may
        be awaited (``await sock.listen(5)``) to wait until it has, so that a
        connect made right after is not refused. :meth:`accept` waits for it
        too.

        Raises:
            OSError: ``EINVAL`` when not bound (bind first) or connected,
                ``EBADF`` when closed; when awaited, the error that made
                listening fail (e.g. signaling is gone).
        """
        self._machine.check(SocketInput.LISTEN)
        if self._listener is not None:  # listening already
            return _ListenReady(self._listener)
        assert self._binding is not None  # BOUND
        self._listener = self._binding.listen(max(check_backlog(backlog), 1))
        self._machine.handle(SocketInput.LISTEN)
        return _ListenReady(self._listener)

    async def accept(self) -> tuple[Socket, Address]:
        """Wait for a connection.

        Returns:
            ``(socket, address)``: a connected socket and the peer's ``(host, port)``.

        Raises:
            OSError: ``EINVAL`` when not listening, ``EBADF`` when closed
                (also when closed while waiting).
        """
        self._machine.check(SocketInput.ACCEPT)
        assert self._listener is not None  # LISTENING
        with _translate("accept"):
            await _ListenReady(self._listener)
            stream = await self._listener.accept()
        return Socket(self._node, stream), stream.remote_address

    # -- client side -----------------------------------------------------

    async def connect(self, address: Address) -> None:
        """Connect to a listening socket at ``(host, port)``.

        Raises:
            OSError: ``ECONNREFUSED`` (nobody accepting there), ``EISCONN``
                (already connected), ``EINVAL`` (bound/listening socket, bad
                address), ``ETIMEDOUT``, ``EBADF`` (closed).
        """
        with self._machine.attempt(SocketInput.CONNECT):
            stream = await self._node.connect(check_address(address))
        if self._machine.closed:  # closed while connecting: EBADF below
            await trio.aclose_forcefully(stream)
        self._machine.handle(SocketInput.CONNECT_DONE)
        self._stream = stream

    # -- data ------------------------------------------------------------

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
            At least one byte, or ``b""`` at EOF (the peer shut down its
            sending side or closed) and after ``shutdown(SHUT_RD)``.

        Raises:
            OSError: ``ENOTCONN``, ``EINVAL`` (``bufsize`` < 1),
                ``ECONNRESET`` (connection broke), ``EBADF`` (closed).
        """
        stream = self._connected_stream(SocketInput.RECV)
        check_bufsize(bufsize)
        async with self._receive_lock:
            if self._machine.read_shut:
                return b""
            self._machine.check(SocketInput.RECV)
            with _translate("recv"):
                return bytes(await stream.receive_some(bufsize))

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
            self._node._spawn(self._send_eof, self._stream)

    async def _send_eof(self, stream: SocketStream) -> None:
        async with self._send_lock:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_eof()

    # -- closing ---------------------------------------------------------

    def close(self) -> None:
        """Close the socket at once; the close reaches the peer from a node task. Idempotent."""
        resource = self._begin_close()
        if resource is not None:
            self._node._spawn(resource.aclose)

    async def aclose(self) -> None:
        """Close the socket and wait until the close has been sent. Idempotent."""
        resource = self._begin_close()
        if resource is not None:
            async with self._send_lock:
                await resource.aclose()
        else:
            await trio.lowlevel.checkpoint()

    def _begin_close(self) -> trio.abc.AsyncResource | Binding | None:
        if not self._machine.close():
            return None
        resource: trio.abc.AsyncResource | Binding | None = (
            self._stream or self._listener or self._binding
        )
        return resource

    def __enter__(self) -> Socket:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Socket:
        return self

    async def __aexit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- helpers ---------------------------------------------------------

    def _connected_stream(self, call: SocketInput) -> SocketStream:
        """Check ``call`` (``EBADF``, ``ENOTCONN``, ``EPIPE``) and return the stream."""
        self._machine.check(call)
        assert self._stream is not None  # CONNECTED
        return self._stream

    def __repr__(self) -> str:
        return f"<unisockets.Socket {self._machine.state.value} on {self._node!r}>"
