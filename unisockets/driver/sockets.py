"""Berkeley-style socket objects in the browser, async like :mod:`unisockets.net.sockets`.

``sock = node.socket()`` gives a ``SOCK_STREAM`` socket on the tab's overlay
node, with the calls and errors of POSIX sockets: :class:`OSError` with a real
errno (``ECONNREFUSED``, ``EADDRINUSE``, ``EADDRNOTAVAIL``, ``ENOTCONN``,
``EISCONN``, ``EBADF``, ``EINVAL``, ``EPIPE``, ``ECONNRESET``). As natively,
``shutdown`` and ``close`` are synchronous and the EOF or close reaches the
peer from a task of the node, after any send already in progress. Which call is
legal in which state, and the errno of each illegal one, is decided by the
sans-IO :class:`~unisockets.protocol.socket_states.SocketStateMachine`, the
same as for :mod:`unisockets.net.sockets`, and so are the calls' bodies
(:class:`~unisockets.protocol.socket_api.StreamSocketBase`): this module gives
them asyncio's waits, locks and errors.

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
import socket as _stdlib_socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

from ..protocol.addresses import format_alias
from ..protocol.socket_api import StreamSocketBase
from ..protocol.socket_options import SocketOptions, timeout_error
from ..protocol.socket_states import SocketInput, SocketStateMachine, check_backlog
from .errors import BrokenResourceError, ClosedResourceError
from .legacy import AnyStream
from .node import DEFAULT_BACKLOG, Listener
from .streams import Address

if TYPE_CHECKING:
    from .node import DriverNode


__all__ = ["AF_INET", "SHUT_RD", "SHUT_RDWR", "SHUT_WR", "SOCK_STREAM", "Socket"]

AF_INET = _stdlib_socket.AF_INET
SOCK_STREAM = _stdlib_socket.SOCK_STREAM
SHUT_RD = _stdlib_socket.SHUT_RD
SHUT_WR = _stdlib_socket.SHUT_WR
SHUT_RDWR = _stdlib_socket.SHUT_RDWR


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


class Socket(StreamSocketBase[AnyStream, Address]):
    """A stream socket on a browser node (``AF_INET``, ``SOCK_STREAM``).

    Create it with :meth:`DriverNode.socket <unisockets.driver.node.DriverNode.socket>`.
    ``async with sock:`` closes it and waits until the close was sent.

    Attributes:
        family: always ``AF_INET``.
        type: always ``SOCK_STREAM``.
    """

    family = AF_INET
    type = SOCK_STREAM
    _broken_error = BrokenResourceError
    _closed_error = ClosedResourceError

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

    # --- what asyncio provides (StreamSocketBase) --------------------------------------------

    def _deadline(self, timeout: float | None, call: str) -> _Deadline:
        return _Deadline(timeout, call)

    async def _checkpoint(self) -> None:
        await asyncio.sleep(0)

    def _bound_address(self) -> Address | None:
        return self._bound

    async def _bind_to(self, host: str, port: int) -> Address:
        return await self._node.bind(port, host)

    async def _unbind(self, binding: Address) -> None:
        with suppress(OSError, ConnectionError):
            await self._node.unbind(binding)

    def _keep_binding(self, binding: Address) -> None:
        self._bound = binding

    async def _open_connection(self, address: Address) -> AnyStream:
        return await self._node.connect(address)

    async def _discard(self, stream: AnyStream) -> None:
        await stream.aclose()

    async def _accept_stream(self) -> AnyStream:
        assert self._listener is not None  # LISTENING
        return await self._listener.accept()

    def _accepted(self, stream: AnyStream) -> Socket:
        return type(self)(self._node, stream)

    def _spawn_send_eof(self, stream: AnyStream) -> None:
        self._node._spawn(self._send_eof(stream))

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
