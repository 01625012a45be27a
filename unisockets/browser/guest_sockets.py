"""The socket calls a WebAssembly guest makes in a tab, over the tab's node's sockets.

:class:`GuestSocketCalls` holds one method per import of the shared table
(:data:`unisockets.wasm.abi.IMPORTS` and
:data:`~unisockets.wasm.abi.WASI_SOCKET_FUNCTIONS`; :data:`METHODS` says which
serves which) and the guest's descriptor table; :class:`~unisockets.browser.wasm_guest.TabGuest`
adds the page's side (memory, dispatch, cancellation, stop). Behaviour follows the
native runner (:mod:`unisockets.wasm.host`): a call raises :class:`OSError` with the
POSIX errno that the dispatcher turns into the guest's ``errno`` (docs/wasm.md).
"""

from __future__ import annotations

import asyncio
import errno
import struct
import sys
from socket import SocketKind
from typing import TYPE_CHECKING, Any

from ..driver.datagrams import DatagramSocket
from ..driver.errors import oserror
from ..driver.sockets import SHUT_RD, SHUT_RDWR, SHUT_WR, Socket
from ..wasm import abi

if TYPE_CHECKING:
    from ..wasm.memory import MemoryView
    from .tab import BrowserNode

__all__ = [
    "EAGER",
    "FIRST_SOCKET_FD",
    "MAX_RECV",
    "MAX_SOCKETS",
    "METHODS",
    "GuestSocket",
    "GuestSocketCalls",
]

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
EAGER: dict[str, Any] = {"eager_start": True} if sys.version_info >= (3, 12) else {}


class GuestSocket:
    """One descriptor of the guest: its socket and the API flavour that made it."""

    __slots__ = ("flavour", "socket")

    def __init__(self, socket: Socket | DatagramSocket, flavour: abi.Flavour) -> None:
        self.socket = socket
        self.flavour = flavour

    def stream(self) -> Socket:
        """The stream socket (``listen``/``accept``); ``EOPNOTSUPP`` on a datagram one, as Linux."""
        if isinstance(self.socket, DatagramSocket):
            raise oserror(errno.EOPNOTSUPP, "a datagram socket")
        return self.socket


#: Which method of :class:`GuestSocketCalls` serves which import of the table.
METHODS = {
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


class GuestSocketCalls:
    """The guest's descriptors and its socket calls, over :attr:`node`'s sockets.

    A base of :class:`~unisockets.browser.wasm_guest.TabGuest`, which sets the
    attributes below and provides :attr:`_view`, the guest's memory. Every call
    returns its result or raises :class:`OSError` with a POSIX errno.
    """

    node: BrowserNode
    sockets: dict[int, GuestSocket]
    last_errno: int
    _closing: set[asyncio.Task[None]]

    @property
    def _view(self) -> MemoryView:
        raise NotImplementedError

    def _get(self, fd: int) -> GuestSocket:
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
        self.sockets[fd] = GuestSocket(socket, flavour)
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
        closing = asyncio.Task(guest_socket.socket.aclose(), loop=asyncio.get_event_loop(), **EAGER)
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
