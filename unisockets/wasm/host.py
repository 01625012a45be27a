"""The ``unisockets_*`` imports: a guest's Berkeley sockets, backed by a unisockets node.

One :class:`SocketHost` serves one guest. Its import functions run in the
guest's thread (see :mod:`unisockets.wasm.runner`); every socket operation
is handed to the node's trio loop (with the node's trio token:
``run_sync_soon`` and a memory channel to this guest's :meth:`SocketHost.serve`
task, a little cheaper than :func:`trio.from_thread.run`) and the guest's
thread waits for the reply, so a blocked ``accept`` or ``recv`` blocks only
its own guest. Errors follow POSIX (the original unisockets ABI, see
examples/c/unisockets.h): the import returns -1 and the host writes the
guest's ``errno`` (in WASI's numbering) at the address the guest exports as
``errno``.

Addresses on an overlay node are overlay addresses, as in the original
runner: ``0.0.0.0`` is this node's own address, and every other address,
``127.0.0.1`` included, is an ordinary address of the subnet, for ``bind``
as for ``connect``. A C program binding ``127.0.0.1:1234`` holds that alias
(the signaling server lets a node bind any address that is not another
node's id, docs/protocol.md, "Bind and listen"), and a program on any node of the subnet
that connects to ``127.0.0.1:1234`` reaches it: the original's echo server
and client work unchanged on two nodes. On a native node (OS TCP)
``127.x.x.x`` and ``0.0.0.0`` mean the node's own host address.

Stopping (:meth:`SocketHost.stop`, from the trio thread) cancels the
guest's operation in progress and makes every later host call fail with
:class:`GuestStopped` (``ECANCELED``); the runner traps the guest through
wasmtime's epoch interruption. No Python exception ever leaves an import
function (wasmtime-py would keep it process-wide): unexpected ones are
logged and become ``EIO``.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import queue
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import outcome
import trio
import wasmtime

from ..net import SHUT_RD, SHUT_RDWR, SHUT_WR, SOCK_DGRAM, SOCK_STREAM
from ..net.datagram import DatagramSocket
from ..net.node import NativeNode, Node
from ..net.sockets import Socket
from . import abi
from .memory import GuestMemory, MemoryView

__all__ = ["GuestSocket", "GuestStopped", "SocketHost"]

T = TypeVar("T")

logger = logging.getLogger("unisockets.wasm")

#: The first descriptor number given to a socket (0-2 are stdio; the runner
#: gives the guest no preopened directories, so WASI has no descriptor >= 3).
FIRST_SOCKET_FD = 3
#: At most this many sockets per guest (``EMFILE`` past it).
MAX_SOCKETS = 1024
#: The most bytes one ``recv`` hands the guest (larger buffers get short reads).
MAX_RECV = 1 << 20
#: The most bytes one ``send`` takes from the guest (larger buffers get short sends).
MAX_SEND = 1 << 30


class GuestStopped(OSError):
    """A host call of a guest that is being stopped: ``ECANCELED``.

    The guest sees -1 / ``ECANCELED`` (never a Python exception: wasmtime-py
    keeps the last host exception process-wide, where another guest's thread
    could pick it up); the runner's epoch interruption then traps it at its
    next function call or loop iteration.
    """

    def __init__(self) -> None:
        super().__init__(errno.ECANCELED, "the guest is being stopped")


def _oserror(code: int, detail: str = "") -> OSError:
    message = os.strerror(code)
    return OSError(code, f"{message}: {detail}" if detail else message)


async def _listen(socket: Socket, backlog: int) -> None:
    await socket.listen(backlog)


class GuestSocket:
    """One socket descriptor of a guest.

    Attributes:
        socket: the unisockets socket behind it.
        flavour: the constant values the guest created it with.
    """

    __slots__ = ("flavour", "socket")

    def __init__(self, socket: Socket | DatagramSocket, flavour: abi.Flavour) -> None:
        self.socket = socket
        self.flavour = flavour

    def stream(self) -> Socket:
        """The socket, which must be a stream socket (``listen``, ``accept``, ``shutdown``).

        Raises:
            OSError: ``EOPNOTSUPP`` for a datagram socket (as Linux's UDP).
        """
        if isinstance(self.socket, DatagramSocket):
            raise _oserror(errno.EOPNOTSUPP, "a datagram socket")
        return self.socket


_I32 = wasmtime.ValType.i32()


def _func_type(params: int) -> wasmtime.FuncType:
    return wasmtime.FuncType([_I32] * params, [_I32])


class SocketHost:
    """The host side of one guest's sockets.

    Args:
        node: the node whose sockets the guest uses.
        token: the node's trio token (from :func:`trio.lowlevel.current_trio_token`).
    """

    def __init__(self, node: Node, token: trio.lowlevel.TrioToken) -> None:
        self.node = node
        self.token = token
        self.sockets: dict[int, GuestSocket] = {}
        self.last_errno = 0
        self.stopping = False
        self._memory: GuestMemory | None = None
        self._errno_address: int | None = None
        self._scope: trio.CancelScope | None = None
        # One call at a time crosses to trio (the guest is single-threaded).
        self._jobs_send, self._jobs_receive = trio.open_memory_channel[
            tuple[Callable[..., Awaitable[Any]], tuple[Any, ...]]
        ](1)
        self._replies: queue.SimpleQueue[outcome.Outcome[Any]] = queue.SimpleQueue()

    # -- set-up (guest thread) -------------------------------------------

    def define(self, linker: wasmtime.Linker) -> None:
        """Define the ``env.unisockets_*`` imports (and ``env.unisockets_errno``).

        Args:
            linker: the guest's linker (its engine's).
        """
        implementations: dict[str, Callable[..., int]] = {
            "unisockets_socket": self._socket,
            "unisockets_bind": self._bind,
            "unisockets_connect": self._connect,
            "unisockets_listen": self._listen,
            "unisockets_accept": self._accept,
            "unisockets_send": self._send,
            "unisockets_recv": self._recv,
            # Datagram sockets (docs/wasm.md): beside the original's seven.
            "unisockets_sendto": self._sendto,
            "unisockets_recvfrom": self._recvfrom,
        }
        # The signatures come from the shared table (abi.IMPORTS), as on the browser page.
        for spec in abi.IMPORTS:
            if spec.errors == "none":  # unisockets_errno
                function: Callable[..., int] = lambda: self.last_errno  # noqa: E731
                access_caller = False
            else:
                function = self._posix(implementations[spec.name])
                access_caller = True
            linker.define_func(
                spec.module,
                spec.name,
                _func_type(len(spec.params)),
                function,
                access_caller=access_caller,
            )

    def attach(self, instance: wasmtime.Instance, store: wasmtime.Store) -> None:
        """Find the instance's ``memory`` and ``errno`` exports (call before running it).

        Args:
            instance: the guest's instance.
            store: the instance's store.
        """
        exports = instance.exports(store)
        memory = exports.get("memory")
        if isinstance(memory, wasmtime.Memory):
            self._memory = GuestMemory(memory)
        errno_export = exports.get("errno")
        if isinstance(errno_export, wasmtime.Global):
            self._errno_address = int(errno_export.value(store))

    # -- crossing to trio ---------------------------------------------------

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await afn(*args)`` in the node's trio loop and wait for it (guest thread).

        The call is handed to this guest's :meth:`serve` task; the guest's
        thread sleeps until the result comes back.

        Args:
            afn: an async function of the node's objects (e.g. ``socket.recv``).
            args: its arguments.

        Returns:
            What ``afn`` returned.

        Raises:
            OSError: ``GuestStopped`` (the guest is being stopped, also while
                waiting), or whatever ``afn`` raises.
        """
        result: T = self._cross(functools.partial(self._submit, afn, args))
        return result

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the node's trio thread (socket objects are not thread-safe).

        Raises:
            OSError: ``GuestStopped`` (the guest is being stopped), or what ``fn`` raises.
        """
        result: T = self._cross(functools.partial(self._reply_sync, fn, args))
        return result

    def _cross(self, in_trio: Callable[[], object]) -> Any:
        if self.stopping:
            raise GuestStopped()
        try:
            self.token.run_sync_soon(in_trio)
        except trio.RunFinishedError:
            raise GuestStopped() from None
        result: outcome.Outcome[Any] = self._replies.get()
        return result.unwrap()

    def _reply_sync(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        self._replies.put(outcome.capture(fn, *args))

    def _submit(self, afn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> None:
        try:
            self._jobs_send.send_nowait((afn, args))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self._replies.put(outcome.Error(GuestStopped()))

    async def serve(self) -> None:
        """Run the guest's calls in trio, one at a time, until cancelled (trio thread).

        :func:`unisockets.wasm.run_wasm` runs it beside the guest's thread.
        When it ends, the call in progress and every later one fail with
        :class:`GuestStopped`.
        """
        try:
            async for afn, args in self._jobs_receive:
                reply: outcome.Outcome[Any] = outcome.Error(GuestStopped())
                try:
                    with trio.CancelScope() as self._scope:
                        if self.stopping:
                            self._scope.cancel()
                        reply = outcome.Value(await afn(*args))
                except Exception as exc:
                    reply = outcome.Error(exc)
                finally:
                    # Also when this task is cancelled: the guest must not wait forever.
                    self._scope = None
                    self._replies.put(reply)
        finally:
            if self._jobs_pending():
                self._replies.put(outcome.Error(GuestStopped()))
            self._jobs_receive.close()

    def _jobs_pending(self) -> bool:
        # A job submitted but never started (the channel holds at most one).
        try:
            self._jobs_receive.receive_nowait()
        except (trio.WouldBlock, trio.ClosedResourceError, trio.EndOfChannel):
            return False
        return True

    def view(self, caller: wasmtime.Caller) -> MemoryView:
        """The guest's memory during this call.

        Args:
            caller: the current host call's caller.

        Raises:
            OSError: ``EFAULT`` when the guest exports no memory.
        """
        if self._memory is None:
            raise _oserror(errno.EFAULT, "the guest exports no memory")
        return self._memory.view(caller)

    # -- stopping and closing (trio thread) ------------------------------

    def stop(self) -> None:
        """Make the guest's host calls fail: cancel the one in progress, trap the next ones."""
        self.stopping = True
        if self._scope is not None:
            self._scope.cancel()

    async def aclose(self) -> None:
        """Close every socket the guest left open."""
        sockets, self.sockets = list(self.sockets.values()), {}
        with trio.CancelScope(shield=True):
            for guest_socket in sockets:
                await guest_socket.socket.aclose()

    # -- descriptors ------------------------------------------------------

    def lookup(self, fd: int) -> GuestSocket | None:
        """The socket behind descriptor ``fd``, or ``None`` (not a socket).

        Args:
            fd: a guest descriptor.
        """
        return self.sockets.get(fd)

    def _get(self, fd: int) -> GuestSocket:
        guest_socket = self.sockets.get(fd)
        if guest_socket is None:
            # 0-2 are the guest's stdio: descriptors, but not sockets.
            raise _oserror(errno.ENOTSOCK if 0 <= fd <= 2 else errno.EBADF, f"fd {fd}")
        return guest_socket

    def _add(self, socket: Socket | DatagramSocket, flavour: abi.Flavour) -> int:
        if len(self.sockets) >= MAX_SOCKETS:
            raise _oserror(errno.EMFILE)
        fd = FIRST_SOCKET_FD
        while fd in self.sockets:
            fd += 1
        self.sockets[fd] = GuestSocket(socket, flavour)
        return fd

    def close(self, fd: int) -> bool:
        """Close socket ``fd`` (WASI ``fd_close``); the close reaches the peer from trio.

        Args:
            fd: a guest descriptor.

        Returns:
            ``True`` if ``fd`` was a socket (now closed), ``False`` if it is not one.

        Raises:
            OSError: ``GuestStopped`` when the guest is being stopped.
        """
        guest_socket = self.sockets.pop(fd, None)
        if guest_socket is None:
            return False
        self.run_sync(guest_socket.socket.close)
        return True

    def shutdown(self, fd: int, how: int) -> None:
        """Shut down one or both directions of socket ``fd`` (WASI ``sock_shutdown``).

        ``how`` is read in the socket's flavour (:func:`abi.shutdown_how`).

        Raises:
            OSError: ``EINVAL`` (bad ``how``), ``ENOTCONN``, ``EBADF``/``ENOTSOCK``.
        """
        guest_socket = self._get(fd)
        mode = abi.shutdown_how(guest_socket.flavour, how)
        if mode is None:
            raise _oserror(errno.EINVAL, f"shutdown mode {how}")
        if isinstance(guest_socket.socket, DatagramSocket):
            # Nothing to tell a datagram peer; Linux says ENOTCONN unless connected.
            self.run_sync(guest_socket.socket.getpeername)
            return
        python_how = {(True, False): SHUT_RD, (False, True): SHUT_WR}.get(mode, SHUT_RDWR)
        self.run_sync(guest_socket.socket.shutdown, python_how)

    def send(self, fd: int, data: bytes) -> int:
        """Send ``data`` on socket ``fd``; returns the bytes sent.

        Raises:
            OSError: as :meth:`unisockets.net.Socket.send`.
        """
        return self.run(self._get(fd).socket.send, data)

    def receive(self, fd: int, size: int) -> bytes:
        """Receive up to ``size`` bytes (at most :data:`MAX_RECV`) from socket ``fd``.

        Returns:
            Between 1 and ``size`` bytes, or ``b""`` at EOF or when ``size`` is 0.

        Raises:
            OSError: as :meth:`unisockets.net.Socket.recv`.
        """
        guest_socket = self._get(fd)
        if size <= 0:
            return b""
        data = self.run(guest_socket.socket.recv, min(size, MAX_RECV))
        return data[:size]

    # -- the imports (guest thread) ---------------------------------------

    def _posix(self, implementation: Callable[..., int]) -> Callable[..., int]:
        """Wrap an import: an OSError becomes ``-1`` plus the guest's errno."""

        def call(caller: wasmtime.Caller, *args: int) -> int:
            try:
                return implementation(caller, *args)
            except OSError as exc:
                self.set_errno(caller, exc.errno)
            except Exception:
                logger.exception("%s failed", implementation.__name__)
                self.set_errno(caller, errno.EIO)
            return -1

        return call

    def set_errno(self, caller: wasmtime.Caller, code: int | None) -> None:
        """Record a failed call's errno and write it to the guest's ``errno`` if exported.

        Args:
            caller: the current host call's caller (for the guest's memory).
            code: the Python (Linux) errno; written in WASI's numbering.
        """
        self.last_errno = abi.wasi_errno(code)
        if self._errno_address is not None and self._memory is not None:
            try:
                self._memory.view(caller).write_u32(self._errno_address, self.last_errno)
            except OSError:
                self._errno_address = None  # a bogus export: stop writing there

    def _local(self, host: str) -> str:
        """The node's address for a guest's: see the module docstring."""
        if host == "0.0.0.0" or (host.startswith("127.") and isinstance(self.node, NativeNode)):
            return self.node.address
        return host

    def _address(self, caller: wasmtime.Caller, pointer: int, length: int) -> tuple[str, int]:
        raw = self.view(caller).read(pointer, min(length & 0xFFFFFFFF, abi.SOCKADDR_IN_SIZE))
        decoded = abi.decode_sockaddr_in(raw)
        if isinstance(decoded, int):
            raise _oserror(decoded, "socket address")
        host, port = decoded
        return self._local(host), port

    def _socket(self, caller: wasmtime.Caller, domain: int, type_: int, protocol: int) -> int:
        kind = abi.socket_kind(domain, type_, protocol)
        if isinstance(kind, int):
            raise _oserror(kind, f"socket({domain}, {type_}, {protocol})")
        socket = self.run_sync(self.node.socket, SOCK_DGRAM if kind.datagram else SOCK_STREAM)
        return self._add(socket, kind.flavour)

    def _bind(self, caller: wasmtime.Caller, fd: int, pointer: int, length: int) -> int:
        guest_socket = self._get(fd)
        address = self._address(caller, pointer, length)
        self.run(guest_socket.socket.bind, address)
        return 0

    def _connect(self, caller: wasmtime.Caller, fd: int, pointer: int, length: int) -> int:
        guest_socket = self._get(fd)
        address = self._address(caller, pointer, length)
        self.run(guest_socket.socket.connect, address)
        return 0

    def _listen(self, caller: wasmtime.Caller, fd: int, backlog: int) -> int:
        guest_socket = self._get(fd)
        # Returns once the node accepts there (on an overlay node: once the
        # signaling server knows), so a connect right after it is not refused.
        self.run(_listen, guest_socket.stream(), max(backlog, 1))
        return 0

    def _accept(self, caller: wasmtime.Caller, fd: int, pointer: int, length_pointer: int) -> int:
        guest_socket = self._get(fd)
        capacity = 0
        if pointer != 0:
            # Check the guest's pointers before blocking, not after accepting.
            if length_pointer == 0:
                raise _oserror(errno.EFAULT, "accept: an address without a length")
            capacity = self.view(caller).read_u32(length_pointer)
            self.view(caller).check(pointer, min(capacity, abi.SOCKADDR_IN_SIZE))
        connection, (host, port) = self.run(guest_socket.stream().accept)
        try:
            new_fd = self._add(connection, guest_socket.flavour)
        except OSError:
            self.run_sync(connection.close)
            raise
        if pointer != 0:
            view = self.view(caller)
            encoded = abi.encode_sockaddr_in(guest_socket.flavour, host, port)
            view.write(pointer, encoded[: min(capacity, abi.SOCKADDR_IN_SIZE)])
            view.write_u32(length_pointer, abi.SOCKADDR_IN_SIZE)
        return new_fd

    def _send(self, caller: wasmtime.Caller, fd: int, pointer: int, size: int, flags: int) -> int:
        self._get(fd)
        # A short send (POSIX allows it) keeps the count representable as an i32.
        data = self.view(caller).read(pointer, min(size & 0xFFFFFFFF, MAX_SEND))
        return self.send(fd, data)

    def _recv(self, caller: wasmtime.Caller, fd: int, pointer: int, size: int, flags: int) -> int:
        self._get(fd)
        size &= 0xFFFFFFFF
        self.view(caller).check(pointer, size)
        data = self.receive(fd, size)
        self.view(caller).write(pointer, data)
        return len(data)

    def _sendto(
        self,
        caller: wasmtime.Caller,
        fd: int,
        pointer: int,
        size: int,
        flags: int,
        address_pointer: int,
        address_length: int,
    ) -> int:
        """``sendto``: one datagram to the address (a null address: as ``send``)."""
        guest_socket = self._get(fd)
        if address_pointer == 0 or not isinstance(guest_socket.socket, DatagramSocket):
            return self._send(caller, fd, pointer, size, flags)  # Linux ignores it on TCP
        address = self._address(caller, address_pointer, address_length)
        data = self.view(caller).read(pointer, min(size & 0xFFFFFFFF, MAX_SEND))
        return self.run(guest_socket.socket.sendto, data, address)

    def _recvfrom(
        self,
        caller: wasmtime.Caller,
        fd: int,
        pointer: int,
        size: int,
        flags: int,
        address_pointer: int,
        length_pointer: int,
    ) -> int:
        """``recvfrom``: the next datagram and, if asked for, its sender's address."""
        guest_socket = self._get(fd)
        sock = guest_socket.socket
        if address_pointer == 0 or not isinstance(sock, DatagramSocket):
            return self._recv(caller, fd, pointer, size, flags)
        if length_pointer == 0:
            raise _oserror(errno.EFAULT, "recvfrom: an address without a length")
        size &= 0xFFFFFFFF
        capacity = self.view(caller).read_u32(length_pointer)
        self.view(caller).check(pointer, size)
        self.view(caller).check(address_pointer, min(capacity, abi.SOCKADDR_IN_SIZE))
        data, (host, port) = self.run(sock.recvfrom, min(size, MAX_RECV))
        view = self.view(caller)
        view.write(pointer, data)
        encoded = abi.encode_sockaddr_in(guest_socket.flavour, host, port)
        view.write(address_pointer, encoded[: min(capacity, abi.SOCKADDR_IN_SIZE)])
        view.write_u32(length_pointer, abi.SOCKADDR_IN_SIZE)
        return len(data)
