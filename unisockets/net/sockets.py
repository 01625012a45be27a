"""Berkeley-style socket objects, async in the spirit of :mod:`trio.socket`.

``sock = node.socket()`` gives a ``SOCK_STREAM`` socket on that node's network
(overlay or native). The calls and their errors follow POSIX sockets:
errors are :class:`OSError` with a real errno (``ECONNREFUSED``,
``EADDRINUSE``, ``EADDRNOTAVAIL``, ``ENOTCONN``, ``EISCONN``, ``EBADF``,
``EINVAL``, ``EPIPE``, ``ECONNRESET``), so code written against
:mod:`socket` handles them unchanged. Which call is legal in which state, and
the errno of each illegal one, is decided by the sans-IO
:class:`~unisockets.protocol.socket_states.SocketStateMachine` (shared with
:mod:`unisockets.driver.sockets`), and so are the calls' bodies
(:class:`~unisockets.protocol.socket_api.StreamSocketBase`): this module gives
them trio's waits, locks and errors.

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

import math
import socket as _stdlib_socket
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.socket_api import StreamSocketBase
from ..protocol.socket_options import SocketOptions, timeout_error
from ..protocol.socket_states import SocketInput, SocketStateMachine, check_backlog
from .addresses import Address
from .listeners import NativeListener, OverlayListener
from .streams import SocketStream

if TYPE_CHECKING:
    from .base import Binding, Node

__all__ = ["AF_INET", "SHUT_RD", "SHUT_RDWR", "SHUT_WR", "SOCK_STREAM", "Listening", "Socket"]

AF_INET = _stdlib_socket.AF_INET
SOCK_STREAM = _stdlib_socket.SOCK_STREAM
SHUT_RD = _stdlib_socket.SHUT_RD
SHUT_WR = _stdlib_socket.SHUT_WR
SHUT_RDWR = _stdlib_socket.SHUT_RDWR


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
    """The time one call of a socket with a timeout may take (``Socket.settimeout``).

    ``async with deadline.scope():`` around each wait of the call raises the
    timeout's error when the deadline passes. The deadline is set after the
    scope is entered, so a deadline that has passed already (timeout ``0``)
    cancels the block at its first real wait (trio turns an expired deadline
    into a cancellation in its run loop): what can finish without waiting
    (bytes already received, a connection already queued) finishes, the rest
    raises ``BlockingIOError``. A class, not an ``@asynccontextmanager``: it is
    entered around every ``recv``.
    """

    __slots__ = ("_call", "_deadline", "_scope", "_timeout")

    def __init__(self, timeout: float | None, call: str) -> None:
        self._timeout = timeout
        self._call = call
        self._deadline = math.inf if timeout is None else trio.current_time() + timeout
        self._scope: trio.CancelScope | None = None

    def scope(self) -> _Deadline:
        """Bound one wait (not nested: a call's waits come one after the other)."""
        return self

    async def __aenter__(self) -> None:
        if self._timeout is not None:
            self._scope = trio.CancelScope()
            self._scope.__enter__()
            self._scope.deadline = self._deadline

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        scope = self._scope
        if scope is None:
            return False
        self._scope = None
        handled = scope.__exit__(exc_type, exc, tb)
        if scope.cancelled_caught:
            assert self._timeout is not None
            raise timeout_error(self._timeout, self._call) from None
        return handled


class Socket(StreamSocketBase[SocketStream, "Binding"]):
    """A stream socket on a unisockets node (``AF_INET``, ``SOCK_STREAM``).

    Create it with :meth:`unisockets.net.Node.socket`. Usable as a context
    manager (``with`` closes it, ``async with`` closes it and waits).

    Attributes:
        family: always ``AF_INET``.
        type: always ``SOCK_STREAM``.
    """

    family = AF_INET
    type = SOCK_STREAM

    _broken_error = trio.BrokenResourceError
    _closed_error = trio.ClosedResourceError

    def __init__(self, node: Node, stream: SocketStream | None = None) -> None:
        self._node = node
        self._machine = SocketStateMachine(connected=stream is not None)
        self._binding: Binding | None = None
        self._listener: OverlayListener | NativeListener | None = None
        self._stream = stream
        self._send_lock = trio.Lock()
        self._receive_lock = trio.Lock()
        self._options = SocketOptions(_stdlib_socket)

    # -- what trio provides (StreamSocketBase) ---------------------------------

    def _deadline(self, timeout: float | None, call: str) -> _Deadline:
        return _Deadline(timeout, call)

    async def _checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def _bound_address(self) -> Address | None:
        return None if self._binding is None else self._binding.address

    async def _bind_to(self, host: str, port: int) -> Binding:
        return await self._node.bind(port, host, socket_options=self._options.explicit())

    async def _unbind(self, binding: Binding) -> None:
        await binding.aclose()

    def _keep_binding(self, binding: Binding) -> None:
        self._binding = binding

    async def _open_connection(self, address: Address) -> SocketStream:
        return await self._node.connect(address, socket_options=self._options.explicit())

    async def _discard(self, stream: SocketStream) -> None:
        await trio.aclose_forcefully(stream)

    async def _accept_stream(self) -> SocketStream:
        assert self._listener is not None  # LISTENING
        await self._listener.wait_ready()
        return await self._listener.accept()

    def _accepted(self, stream: SocketStream) -> Socket:
        return type(self)(self._node, stream)

    def _spawn_send_eof(self, stream: SocketStream) -> None:
        self._node._spawn(self._send_eof, stream)

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

    def __repr__(self) -> str:
        return f"<unisockets.Socket {self._machine.state.value} on {self._node!r}>"
