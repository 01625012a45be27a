"""The ``unisockets_*`` imports of a WebAssembly program running in this tab, over the tab's node.

The page ``web/wasm.html`` (docs/wasm.md, "In a browser tab") loads an
unmodified wasm32-wasi program built for ``unisockets run`` and instantiates
it with WASI preview 1 from a JavaScript shim plus the imports served here:
the ``env.unisockets_*`` functions and the WASI functions that touch sockets
(the table :data:`unisockets.wasm.abi.IMPORTS` and
:data:`~unisockets.wasm.abi.WASI_SOCKET_FUNCTIONS`, the one the native
runner defines its imports from). A call that may wait returns an asyncio
future, which the page awaits inside a ``WebAssembly.Suspending`` import, so
JavaScript Promise Integration suspends the guest, not the tab; the others
return their result at once.

Behaviour follows the native runner (:mod:`unisockets.wasm.host`): POSIX
imports return -1 and write the guest's exported ``errno`` in WASI's
numbering (:func:`unisockets.wasm.abi.wasi_errno`); WASI functions return a
WASI errno. Addresses are the overlay's, as natively: ``0.0.0.0`` is the
node's own address, a program may bind any address that is no other node's
id (the original's default ``127.0.0.1`` included; another node's id is
``EADDRNOTAVAIL``, docs/protocol.md "Bind and listen"), and ``connect``
reaches any overlay address.

:meth:`TabGuest.stop` cancels the call in progress and fails every later
one: the page then throws out of the suspended import, which unwinds the
guest.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import struct
import sys
from collections.abc import Awaitable, Callable
from socket import SocketKind
from typing import Any

from ..driver.datagrams import DatagramSocket
from ..driver.errors import oserror
from ..driver.sockets import SHUT_RD, SHUT_RDWR, SHUT_WR, Socket
from ..wasm import abi
from ..wasm.memory import MemoryView, efault
from ._js import js_global, require_browser
from .tab import BrowserNode, open_node

__all__ = ["GuestStopped", "JsMemoryView", "TabGuest", "start", "unimplemented"]

logger = logging.getLogger("unisockets.browser")

#: The first socket descriptor (0-2 are the guest's stdio, the shim's).
FIRST_SOCKET_FD = 3
#: At most this many sockets per guest (``EMFILE`` past it), as natively.
MAX_SOCKETS = 1024
#: The most bytes one receive hands the guest, as natively.
MAX_RECV = 1 << 20

# WASI preview 1 layouts (wasi-libc's wasi/api.h), as unisockets.wasm.wasi uses them.
_SOCKET_STREAM = 6  # __wasi_filetype_t
_SOCKET_DGRAM = 5
_SOCKET_RIGHTS = (1 << 1) | (1 << 6) | (1 << 27) | (1 << 28)  # read, write, poll, shutdown
_FDSTAT = struct.Struct("<BxHxxxxQQ")
#: Start import calls eagerly where asyncio can (Pyodide's Python is 3.12+).
_EAGER: dict[str, Any] = {"eager_start": True} if sys.version_info >= (3, 12) else {}


class GuestStopped(OSError):
    """A call of a guest that is being stopped (``ECANCELED``); the page unwinds the guest."""

    def __init__(self) -> None:
        super().__init__(errno.ECANCELED, "the guest is being stopped")


class JsMemoryView(MemoryView):
    """Bounds-checked access to a guest's ``WebAssembly.Memory`` from Python in the page.

    The memory's buffer is read again for every access (it is replaced when
    the memory grows). Checks and layouts are :class:`unisockets.wasm.memory.MemoryView`'s.

    Args:
        memory: the instance's exported ``WebAssembly.Memory`` (a JsProxy).
    """

    __slots__ = ("memory",)

    def __init__(self, memory: Any) -> None:
        super().__init__(0, int(memory.buffer.byteLength))
        self.memory = memory

    def check(self, pointer: int, size: int) -> int:
        self.length = int(self.memory.buffer.byteLength)
        return super().check(pointer, size)

    def read(self, pointer: int, size: int) -> bytes:
        offset = self.check(pointer, size)
        return bytes(
            js_global("Uint8Array").new(self.memory.buffer, offset, size & 0xFFFFFFFF).to_bytes()
        )

    def write(self, pointer: int, data: bytes | bytearray) -> None:
        offset = self.check(pointer, len(data))
        if data:
            js_global("Uint8Array").new(self.memory.buffer, offset, len(data)).assign(bytes(data))


class _GuestSocket:
    __slots__ = ("flavour", "socket")

    def __init__(self, socket: Socket | DatagramSocket, flavour: abi.Flavour) -> None:
        self.socket = socket
        self.flavour = flavour

    def stream(self) -> Socket:
        """The stream socket (``listen``/``accept``); ``EOPNOTSUPP`` on a datagram one, as Linux."""
        if isinstance(self.socket, DatagramSocket):
            raise oserror(errno.EOPNOTSUPP, "a datagram socket")
        return self.socket


#: Which method of :class:`TabGuest` serves which import of the table.
_METHODS = {
    "unisockets_socket": "_socket",
    "unisockets_bind": "_bind",
    "unisockets_connect": "_connect",
    "unisockets_listen": "_listen",
    "unisockets_accept": "_accept",
    "unisockets_send": "_send",
    "unisockets_recv": "_recv",
    "unisockets_sendto": "_sendto",
    "unisockets_recvfrom": "_recvfrom",
    "unisockets_errno": "_errno",
    "fd_close": "_fd_close",
    "sock_shutdown": "_sock_shutdown",
    "fd_read": "_fd_read",
    "fd_write": "_fd_write",
    "fd_fdstat_get": "_fd_fdstat_get",
    "poll_oneoff": "_poll_oneoff",
}


def unimplemented() -> list[str]:
    """The imports of the shared table that a tab does not serve yet (they fail with ``ENOSYS``).

    Returns:
        Their names, sorted; empty when the tab serves the whole table.
    """
    names = {spec.name for spec in (*abi.IMPORTS, *abi.WASI_SOCKET_FUNCTIONS)}
    return sorted(names - set(_METHODS))


def _not_implemented(spec: abi.ImportSpec, *, blocking: bool) -> Callable[..., Any]:
    def fail() -> OSError:
        logger.warning("%s is not served in a browser tab yet: ENOSYS", spec.name)
        return oserror(errno.ENOSYS, f"{spec.name} in a browser tab")

    if blocking:

        async def blocking_stub(*args: int) -> int:
            raise fail()

        return blocking_stub

    def stub(*args: int) -> int:
        raise fail()

    return stub


class TabGuest:
    """Serves one guest's socket imports from a node of this tab.

    Create it with :func:`start`; the page calls :meth:`attach` once the
    guest is instantiated, :meth:`call` for every import, :meth:`stop` from
    its stop button, and :meth:`aclose` when the guest has ended.

    Args:
        node: the tab's node whose sockets the guest uses.
    """

    def __init__(self, node: BrowserNode) -> None:
        self.node = node
        self.sockets: dict[int, _GuestSocket] = {}
        self.last_errno = 0
        self.stopping = False
        self._finished = asyncio.Event()
        self._session: asyncio.Task[None] | None = None
        self._memory: JsMemoryView | None = None
        self._errno_address: int | None = None
        self._tasks: set[asyncio.Task[int]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._specs = {spec.name: spec for spec in (*abi.IMPORTS, *abi.WASI_SOCKET_FUNCTIONS)}
        self._implementations: dict[str, Callable[..., Any]] = {
            name: getattr(self, method) for name, method in _METHODS.items()
        }
        for spec in self._specs.values():
            if spec.name not in self._implementations:
                # The table grew before this host learned the import: a program that
                # calls it gets ENOSYS; the others run (tests/browser lists the gap).
                self._implementations[spec.name] = _not_implemented(spec, blocking=spec.blocks)

    @property
    def address(self) -> str:
        """The node's overlay address (``"10.0.0.3"``)."""
        return self.node.address

    @staticmethod
    def table_json() -> str:
        """The import table (:func:`unisockets.wasm.abi.import_table`) as JSON, for the page."""
        return json.dumps(abi.import_table())

    def attach(self, memory: Any, errno_address: int | None) -> None:
        """Give the guest's memory and ``errno`` address (call before ``_start``).

        Args:
            memory: the instance's exported ``WebAssembly.Memory``.
            errno_address: the value of its ``errno`` export (a global holding
                an address), or ``None`` when it exports none (then only
                ``unisockets_errno`` reports errors).
        """
        self._memory = JsMemoryView(memory)
        self._errno_address = errno_address

    def is_socket(self, fd: int) -> bool:
        """Whether ``fd`` is one of the guest's sockets (else the WASI shim serves it)."""
        return fd in self.sockets

    def call(self, name: str, *args: int) -> int:
        """Call import ``name``, one that does not block, with the guest's arguments.

        Args:
            name: an import of the table whose ``blocks`` is false.
            args: its arguments (i32s, as JavaScript numbers).

        Returns:
            The result. A failure is a result too (-1 and ``errno``, or a
            WASI errno), never an exception.

        Raises:
            GuestStopped: the guest is being stopped.
            KeyError: ``name`` is not in the table.
            TypeError: the import blocks (use :meth:`call_blocking`).
        """
        spec = self._specs[name]
        if spec.blocks:
            raise TypeError(f"{name} blocks: use call_blocking")
        if self.stopping:
            raise GuestStopped()
        implementation = self._implementations[name]
        return self._result(spec, lambda: implementation(*args))

    def call_blocking(
        self,
        resolve: Callable[[int], object],
        reject: Callable[[str], object],
        name: str,
        *args: int,
    ) -> int | None:
        """Call import ``name``, one that may block; the page awaits it with JSPI.

        The call starts eagerly (Python 3.12+), so one that need not wait
        (bytes already received, an error) finishes here and its result is
        returned, sparing the guest a suspension. Otherwise the task settles
        the page's promise itself when it ends, from inside its last step,
        instead of through a done callback, which would cost one more turn
        of the event loop per call (docs/wasm.md, "Benchmarks in a browser tab").

        Args:
            resolve: the page's promise's ``resolve``, called with the result.
            reject: its ``reject``, called with a message when the guest is
                being stopped (or on a bug).
            name: an import of the table.
            args: its arguments (i32s, as JavaScript numbers).

        Returns:
            The result if the call finished at once (then neither callback
            is called), else ``None``. Failures are results (-1 and ``errno``,
            or a WASI errno).

        Raises:
            GuestStopped: the guest is being stopped.
            KeyError: ``name`` is not in the table.
        """
        spec = self._specs[name]
        implementation = self._implementations[name]
        page_waits = False  # set once the call did not finish at once

        async def run() -> int:
            try:
                result = await self._call_async(spec, implementation, args)
            except BaseException as exc:
                if page_waits:
                    reject(f"{type(exc).__name__}: {exc}")
                raise
            if page_waits:
                resolve(result)
            return result

        task = asyncio.Task(run(), loop=asyncio.get_event_loop(), **_EAGER)
        if task.done():
            return task.result()
        page_waits = True  # from now on the task settles the page's promise
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return None

    def _done(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: it was reported to the page already

    async def _call_async(
        self, spec: abi.ImportSpec, implementation: Callable[..., Awaitable[int]], args: Any
    ) -> int:
        if self.stopping:
            raise GuestStopped()
        try:
            result = await implementation(*args)
        except asyncio.CancelledError:
            if self.stopping:
                raise GuestStopped() from None
            raise
        except OSError as exc:
            return self._failed(spec, exc.errno)
        except Exception:
            logger.exception("%s failed", spec.name)
            return self._failed(spec, errno.EIO)
        if self.stopping:
            raise GuestStopped()
        return result

    def _result(self, spec: abi.ImportSpec, thunk: Callable[[], int]) -> int:
        try:
            return thunk()
        except OSError as exc:
            return self._failed(spec, exc.errno)
        except Exception:
            logger.exception("%s failed", spec.name)
            return self._failed(spec, errno.EIO)

    def _failed(self, spec: abi.ImportSpec, code: int | None) -> int:
        number = abi.wasi_errno(code)
        if spec.errors == "wasi":
            return number
        self.last_errno = number
        if self._errno_address is not None and self._memory is not None:
            try:
                self._memory.write_u32(self._errno_address, number)
            except OSError:
                self._errno_address = None  # a bogus export: stop writing there
        return -1

    def stop(self) -> None:
        """Stop the guest: cancel its call in progress; later calls raise :class:`GuestStopped`."""
        self.stopping = True
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Stop the guest, close its sockets and leave the network (the node of :func:`start`)."""
        self.stop()
        self._finished.set()
        if self._session is not None:
            await asyncio.shield(self._session)
        else:
            await self._close_sockets()

    async def _close_sockets(self) -> None:
        """Close what the guest left open; finish the closes it made (before the node leaves)."""
        sockets, self.sockets = list(self.sockets.values()), {}
        for guest_socket in sockets:
            await guest_socket.socket.aclose()
        # A guest that closes a socket and exits at once: its EOF and close must still
        # reach the peer, which would otherwise see the node leave instead.
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- helpers -----------------------------------------------------------------------

    @property
    def _view(self) -> JsMemoryView:
        if self._memory is None:
            raise efault("the guest exports no memory")
        return self._memory

    def _get(self, fd: int) -> _GuestSocket:
        guest_socket = self.sockets.get(fd)
        if guest_socket is None:
            raise oserror(errno.ENOTSOCK if 0 <= fd <= 2 else errno.EBADF, f"fd {fd}")
        return guest_socket

    def _add(self, socket: Socket | DatagramSocket, flavour: abi.Flavour) -> int:
        if len(self.sockets) >= MAX_SOCKETS:
            raise oserror(errno.EMFILE, "too many sockets")
        fd = FIRST_SOCKET_FD
        while fd in self.sockets:
            fd += 1
        self.sockets[fd] = _GuestSocket(socket, flavour)
        return fd

    def _address(self, pointer: int, length: int) -> tuple[str, int]:
        raw = self._view.read(pointer, min(length & 0xFFFFFFFF, abi.SOCKADDR_IN_SIZE))
        decoded = abi.decode_sockaddr_in(raw)
        if isinstance(decoded, int):
            raise oserror(decoded, "socket address")
        host, port = decoded
        return (self.node.address if host == "0.0.0.0" else host), port

    # -- the env imports ------------------------------------------------------------------

    def _errno(self) -> int:
        return self.last_errno

    def _socket(self, domain: int, type_: int, protocol: int) -> int:
        kind = abi.socket_kind(domain, type_, protocol)
        if isinstance(kind, int):
            raise oserror(kind, f"socket({domain}, {type_}, {protocol})")
        if kind.datagram:
            return self._add(self.node.socket(SocketKind.SOCK_DGRAM), kind.flavour)
        return self._add(self.node.socket(), kind.flavour)

    async def _bind(self, fd: int, pointer: int, length: int) -> int:
        guest_socket = self._get(fd)
        await guest_socket.socket.bind(self._address(pointer, length))
        return 0

    async def _connect(self, fd: int, pointer: int, length: int) -> int:
        guest_socket = self._get(fd)
        await guest_socket.socket.connect(self._address(pointer, length))
        return 0

    async def _listen(self, fd: int, backlog: int) -> int:
        self._get(fd).stream().listen(max(backlog, 1))
        return 0

    async def _accept(self, fd: int, pointer: int, length_pointer: int) -> int:
        guest_socket = self._get(fd)
        capacity = 0
        if pointer != 0:
            # Check the guest's pointers before blocking, not after accepting.
            if length_pointer == 0:
                raise oserror(errno.EFAULT, "accept: an address without a length")
            capacity = self._view.read_u32(length_pointer)
            self._view.check(pointer, min(capacity, abi.SOCKADDR_IN_SIZE))
        connection, (host, port) = await guest_socket.stream().accept()
        try:
            new_fd = self._add(connection, guest_socket.flavour)
        except OSError:
            connection.close()
            raise
        if pointer != 0:
            encoded = abi.encode_sockaddr_in(guest_socket.flavour, host, port)
            self._view.write(pointer, encoded[: min(capacity, abi.SOCKADDR_IN_SIZE)])
            self._view.write_u32(length_pointer, abi.SOCKADDR_IN_SIZE)
        return new_fd

    async def _send(self, fd: int, pointer: int, size: int, flags: int) -> int:
        guest_socket = self._get(fd)
        data = self._view.read(pointer, size & 0xFFFFFFFF)
        return await guest_socket.socket.send(data)

    async def _recv(self, fd: int, pointer: int, size: int, flags: int) -> int:
        guest_socket = self._get(fd)
        size &= 0xFFFFFFFF
        self._view.check(pointer, size)
        if size == 0:
            return 0
        data = await guest_socket.socket.recv(min(size, MAX_RECV))
        self._view.write(pointer, data)
        return len(data)

    async def _sendto(
        self, fd: int, pointer: int, size: int, flags: int, address: int, address_length: int
    ) -> int:
        guest_socket = self._get(fd)
        sock = guest_socket.socket
        if address == 0 or not isinstance(sock, DatagramSocket):
            return await self._send(fd, pointer, size, flags)  # Linux ignores it on TCP
        target = self._address(address, address_length)
        return await sock.sendto(self._view.read(pointer, size & 0xFFFFFFFF), target)

    async def _recvfrom(
        self, fd: int, pointer: int, size: int, flags: int, address: int, length_pointer: int
    ) -> int:
        guest_socket = self._get(fd)
        sock = guest_socket.socket
        if address == 0 or not isinstance(sock, DatagramSocket):
            return await self._recv(fd, pointer, size, flags)
        if length_pointer == 0:
            raise oserror(errno.EFAULT, "recvfrom: an address without a length")
        size &= 0xFFFFFFFF
        capacity = self._view.read_u32(length_pointer)
        self._view.check(pointer, size)
        self._view.check(address, min(capacity, abi.SOCKADDR_IN_SIZE))
        data, (host, port) = await sock.recvfrom(min(size, MAX_RECV))
        self._view.write(pointer, data)
        encoded = abi.encode_sockaddr_in(guest_socket.flavour, host, port)
        self._view.write(address, encoded[: min(capacity, abi.SOCKADDR_IN_SIZE)])
        self._view.write_u32(length_pointer, abi.SOCKADDR_IN_SIZE)
        return len(data)

    # -- the WASI functions on sockets (the page routes other descriptors to the shim) ----

    def _fd_close(self, fd: int) -> int:
        guest_socket = self.sockets.pop(fd, None)
        if guest_socket is None:
            raise oserror(errno.EBADF, f"fd {fd}")
        # Closed now (eagerly: the address is released at once), finished in a task
        # that the node's leaving waits for (_close_sockets).
        closing = asyncio.Task(
            guest_socket.socket.aclose(), loop=asyncio.get_event_loop(), **_EAGER
        )
        if not closing.done():
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        return 0

    def _sock_shutdown(self, fd: int, how: int) -> int:
        guest_socket = self._get(fd)
        mode = abi.shutdown_how(guest_socket.flavour, how)
        if mode is None:
            raise oserror(errno.EINVAL, f"shutdown mode {how}")
        if isinstance(guest_socket.socket, DatagramSocket):
            # Nothing to tell a datagram peer; Linux says ENOTCONN unless connected.
            guest_socket.socket.getpeername()
            return 0
        python_how = {(True, False): SHUT_RD, (False, True): SHUT_WR}.get(mode, SHUT_RDWR)
        guest_socket.socket.shutdown(python_how)
        return 0

    async def _fd_read(self, fd: int, iovs: int, count: int, nread: int) -> int:
        guest_socket = self._get(fd)
        vectors = self._view.iovecs(iovs, count)
        self._view.check(nread, 4)
        wanted = sum(length for _, length in vectors)
        data = await guest_socket.socket.recv(min(wanted, MAX_RECV)) if wanted else b""
        offset = 0
        for buffer, length in vectors:
            if offset >= len(data):
                break
            self._view.write(buffer, data[offset : offset + length])
            offset += length
        self._view.write_u32(nread, len(data))
        return 0

    async def _fd_write(self, fd: int, iovs: int, count: int, nwritten: int) -> int:
        guest_socket = self._get(fd)
        view = self._view
        data = b"".join(view.read(buffer, length) for buffer, length in view.iovecs(iovs, count))
        view.check(nwritten, 4)
        written = await guest_socket.socket.send(data) if data else 0
        self._view.write_u32(nwritten, written)
        return 0

    def _fd_fdstat_get(self, fd: int, pointer: int) -> int:
        datagram = isinstance(self._get(fd).socket, DatagramSocket)
        kind = _SOCKET_DGRAM if datagram else _SOCKET_STREAM
        self._view.write(pointer, _FDSTAT.pack(kind, 0, _SOCKET_RIGHTS, _SOCKET_RIGHTS))
        return 0

    async def _poll_oneoff(self, inp: int, out: int, count: int, nevents: int) -> int:
        # Relative clocks only (sleep()), as natively; the shim's would spin the tab.
        raw = self._view.read(inp, abi.SUBSCRIPTION_SIZE * (count & 0xFFFFFFFF))
        clocks = abi.clock_subscriptions(raw)
        self._view.check(out, abi.EVENT_SIZE * len(clocks))
        self._view.check(nevents, 4)
        shortest = min(timeout for timeout, _ in clocks)
        await asyncio.sleep(shortest / 1e9)
        fired = [userdata for timeout, userdata in clocks if timeout <= shortest]
        self._view.write(out, abi.clock_events(fired))
        self._view.write_u32(nevents, len(fired))
        return 0


_sessions: set[asyncio.Task[None]] = set()  # running sessions (a task needs a reference)


def start(signaling_url: str, subnet: str = "10.0.0", **options: Any) -> asyncio.Future[TabGuest]:
    """Join a network from this tab in a new task; the future gives its :class:`TabGuest`.

    The node lives in that task (its task group must), until
    :meth:`TabGuest.aclose`.

    Args:
        signaling_url: the signaling server's ``ws://`` URL.
        subnet: the overlay subnet, three octets.
        options: more keyword arguments of :func:`unisockets.browser.open_node`.

    Returns:
        A future of the guest host, failing as :func:`unisockets.browser.open_node`
        does (``SignalingError``: unreachable server, full subnet).

    Raises:
        RuntimeError: not under Pyodide.
    """
    require_browser()
    ready: asyncio.Future[TabGuest] = asyncio.get_event_loop().create_future()

    async def session() -> None:
        try:
            async with open_node(signaling_url, subnet, **options) as node:
                guest = TabGuest(node)
                guest._session = asyncio.current_task()
                ready.set_result(guest)
                await guest._finished.wait()
                await guest._close_sockets()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                logger.exception("the guest's node failed")

    task = asyncio.ensure_future(session())
    _sessions.add(task)
    task.add_done_callback(_sessions.discard)
    return ready
