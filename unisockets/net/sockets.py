"""Berkeley-style socket objects, async in the spirit of :mod:`trio.socket`.

``sock = node.socket()`` gives a ``SOCK_STREAM`` socket on that node's network
(overlay or native). The calls and their errors follow POSIX sockets:
errors are :class:`OSError` with a real errno (``ECONNREFUSED``,
``EADDRINUSE``, ``EADDRNOTAVAIL``, ``ENOTCONN``, ``EISCONN``, ``EBADF``,
``EINVAL``, ``EPIPE``, ``ECONNRESET``), so code written against
:mod:`socket` handles them unchanged. Which call is legal in which state, and
the errno of each illegal one, is decided by the sans-IO
:class:`~unisockets.protocol.socket_states.SocketStateMachine` (shared with
:mod:`unisockets.driver.sockets`).

``shutdown`` and ``close`` are synchronous, as in :mod:`socket` and
:mod:`trio.socket`: they take effect at once for this socket, and the EOF or
close reaches the peer from a task of the node's nursery, after any
``send``/``sendall`` already in progress. ``close`` releases a bound or
listening address at once: a ``bind`` of it right after succeeds (on the
overlay it waits for the release to reach the signaling server).

Socket options (``setsockopt``/``getsockopt``), timeouts (``settimeout``)
and ``recv_into``'s sizes are decided by the sans-IO
:mod:`unisockets.protocol.socket_options`; docs/concepts.md ("Socket options
and timeouts") lists them.
"""

from __future__ import annotations

import builtins
import errno
import math
import socket as _stdlib_socket
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.socket_options import (
    BlockingMode,
    SocketOptions,
    check_recv_into,
    encode,
    timeout_error,
)
from ..protocol.socket_states import (
    SocketInput,
    SocketStateMachine,
    check_backlog,
    check_bufsize,
)
from .addresses import Address, check_address, oserror
from .listeners import NativeListener, OverlayListener
from .streams import SocketStream

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Buffer

    from .base import Binding, Node

__all__ = ["AF_INET", "SHUT_RD", "SHUT_RDWR", "SHUT_WR", "SOCK_STREAM", "Listening", "Socket"]

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


class Listening:
    """What :meth:`Socket.listen` returns: the socket listens already; await it to be sure.

    ``sock.listen(5)`` alone is enough to listen, as with :mod:`socket`.
    ``await sock.listen(5)`` also waits until the signaling server knows the
    address accepts (at once on a native node), so that a connect made right
    after is not refused.

    Attributes:
        listener: the :class:`trio.abc.Listener` the socket accepts from
            (:class:`~unisockets.net.OverlayListener` or
            :class:`~unisockets.net.NativeListener`); the socket owns it.
    """

    def __init__(self, listener: OverlayListener | NativeListener) -> None:
        self.listener = listener

    def __await__(self) -> Generator[Any, None, None]:
        """Wait until connections will not be refused.

        Raises:
            OSError: listening failed (e.g. the address was lost, signaling is gone).
        """
        return self.listener.wait_ready().__await__()

    def __repr__(self) -> str:
        return f"<Listening {self.listener!r}>"


class _Deadline:
    """The time one call of a socket with a timeout may take (:meth:`Socket.settimeout`)."""

    def __init__(self, timeout: float | None, call: str) -> None:
        self._timeout = timeout
        self._call = call
        self._deadline = math.inf if timeout is None else trio.current_time() + timeout

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Around one wait of the call: raise the timeout's error when the deadline passes.

        The deadline is set after the scope is entered, so a deadline that has
        passed already (timeout ``0``) cancels the block at its first real wait
        (trio turns an expired deadline into a cancellation in its run loop):
        what can finish without waiting (bytes already received, a connection
        already queued) finishes, the rest raises ``BlockingIOError``.
        """
        if self._timeout is None:
            yield
            return
        with trio.CancelScope() as scope:
            scope.deadline = self._deadline
            yield
        if scope.cancelled_caught:
            raise timeout_error(self._timeout, self._call)


class Socket(BlockingMode):
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
        self._listener: OverlayListener | NativeListener | None = None
        self._stream = stream
        self._send_lock = trio.Lock()
        self._receive_lock = trio.Lock()
        self._options = SocketOptions(_stdlib_socket)

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
        ``"127.0.0.1"`` (docs/protocol.md, "Bind and listen").

        Raises:
            OSError: ``EADDRINUSE`` (taken), ``EADDRNOTAVAIL`` (another node's
                address), ``EINVAL`` (already bound or connected, bad address),
                ``EBADF`` (closed).
        """
        self._machine.check(SocketInput.BIND)
        host, port = check_address(address)
        with self._machine.attempt(SocketInput.BIND):
            binding = await self._node.bind(port, host, socket_options=self._options.explicit())
        if self._machine.closed:  # closed while binding: EBADF below
            await binding.aclose()
        self._machine.handle(SocketInput.BIND_DONE)
        self._binding = binding

    def listen(self, backlog: int = 128) -> Listening:
        """Start accepting connections; up to ``backlog`` wait for :meth:`accept`.

        Takes effect at once, as in :mod:`socket`. On an overlay node the
        signaling server learns of it a moment later; the returned
        :class:`Listening` may be awaited (``await sock.listen(5)``) to wait
        until it has, so that a connect made right after is not refused.
        :meth:`accept` waits for it too.

        Returns:
            A :class:`Listening` (awaitable; ``.listener`` is the listener).

        Raises:
            OSError: ``EINVAL`` when not bound (bind first) or connected,
                ``EBADF`` when closed; when awaited, the error that made
                listening fail (e.g. signaling is gone).
        """
        self._machine.check(SocketInput.LISTEN)
        if self._listener is not None:  # listening already
            return Listening(self._listener)
        assert self._binding is not None  # BOUND
        self._listener = self._binding.listen(max(check_backlog(backlog), 1))
        self._machine.handle(SocketInput.LISTEN)
        return Listening(self._listener)

    async def accept(self) -> tuple[Socket, Address]:
        """Wait for a connection (up to the socket's timeout, :meth:`settimeout`).

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
        assert self._listener is not None  # LISTENING
        deadline = _Deadline(self._timeout, "accept")
        with _translate("accept"), deadline.scope():
            await self._listener.wait_ready()
            stream = await self._listener.accept()
        accepted = Socket(self._node, stream)
        accepted._options = self._options.copy()
        return accepted, stream.remote_address

    # -- client side -----------------------------------------------------

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
        deadline = _Deadline(self._timeout, "connect")
        with self._machine.attempt(SocketInput.CONNECT), deadline.scope():
            stream = await self._node.connect(
                check_address(address), socket_options=self._options.explicit()
            )
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

        With a positive timeout (:meth:`settimeout`), the timeout bounds the
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
        deadline = _Deadline(timeout, "send")
        with deadline.scope():
            await self._send_lock.acquire()
        try:
            self._machine.check(SocketInput.SEND)  # closed or shut down meanwhile?
            with _translate("send"):
                if timeout is not None:
                    with deadline.scope():
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
        deadline = _Deadline(self._timeout, "recv")
        with deadline.scope():
            await self._receive_lock.acquire()
        try:
            if self._machine.read_shut:
                return b""
            self._machine.check(SocketInput.RECV)
            with _translate("recv"), deadline.scope():
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
            await trio.lowlevel.checkpoint()
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
            self._node._spawn(self._send_eof, self._stream)

    async def _send_eof(self, stream: SocketStream) -> None:
        async with self._send_lock:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_eof()

    # -- options and timeouts -------------------------------------------

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

    def _os_socket(self) -> trio.socket.SocketType | None:
        """The OS socket behind this socket (native node, after bind/connect), else ``None``."""
        if self._stream is not None:
            inner = self._stream.transport_stream
            return inner.socket if isinstance(inner, trio.SocketStream) else None
        if self._binding is not None:
            return self._binding.os_socket
        return None

    # -- closing ---------------------------------------------------------

    def close(self) -> None:
        """Close the socket at once; the close reaches the peer from a node task. Idempotent.

        A bound or listening address is released before this returns: a
        ``bind`` of it right after succeeds (on the overlay it waits for the
        release to reach the signaling server).
        """
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
        resource: SocketStream | OverlayListener | NativeListener | Binding | None = (
            self._stream or self._listener or self._binding
        )
        if resource is not None and not isinstance(resource, SocketStream):
            resource.close()  # release the address now; aclose finishes the rest
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
