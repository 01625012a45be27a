"""The WASI preview 1 functions that touch descriptors, implemented by the host.

wasmtime-py's WASI knows nothing of the guest's sockets, blocks in Rust
where a stop cannot reach it, and its functions cannot be called from a
host function on the guest's behalf (they need the calling instance's
memory). So :func:`define_wasi` defines wasmtime's WASI on the linker (for
arguments, environment, clocks, random, exit) and shadows the functions
that deal with descriptors. The guest has no preopened directories, so its
only descriptors are its stdio (0-2) and its sockets (3 and up):

- ``fd_read``/``fd_write``: stdin comes from an :class:`InputSource` read on
  the trio side, where a stop interrupts it; stdout/stderr go to an
  :class:`OutputSink`; on a socket they are ``recv``/``send``, so ``read()``
  and ``write()`` work on sockets;
- ``fd_close``, ``sock_shutdown``: close / shut down a socket (wasi-libc's
  ``close()`` and ``shutdown()`` land here);
- ``fd_fdstat_get``: a socket is a ``socket_stream`` (``socket_dgram`` for
  ``SOCK_DGRAM``); stdio descriptors are
  character devices (terminals), so wasi-libc line-buffers ``stdout`` and a
  guest's output is not stuck in its buffer when it is stopped;
- ``poll_oneoff``: waits for relative clocks only (``sleep()``), in trio,
  where a stop interrupts it; other subscriptions get ``ENOTSUP``.

These functions return a WASI errno (0 on success), not -1: that is WASI's
convention. Layouts are from wasi-libc's ``wasi/api.h``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
from collections.abc import Callable

import trio
import wasmtime

from . import abi
from .host import SocketHost

__all__ = [
    "BytesInput",
    "CallbackOutput",
    "FdInput",
    "FdOutput",
    "InputSource",
    "OutputSink",
    "define_wasi",
]

logger = logging.getLogger("unisockets.wasm")

_I32 = wasmtime.ValType.i32()

# __wasi_filetype_t
_CHARACTER_DEVICE = 2
_SOCKET_STREAM = 6
_SOCKET_DGRAM = 5
# __wasi_rights_t bits
_RIGHT_FD_READ = 1 << 1
_RIGHT_FD_SEEK = 1 << 2
_RIGHT_FD_TELL = 1 << 5
_RIGHT_FD_WRITE = 1 << 6
_RIGHT_POLL_FD_READWRITE = 1 << 27
_RIGHT_SOCK_SHUTDOWN = 1 << 28
_SOCKET_RIGHTS = _RIGHT_FD_READ | _RIGHT_FD_WRITE | _RIGHT_POLL_FD_READWRITE | _RIGHT_SOCK_SHUTDOWN
_FDSTAT = struct.Struct("<BxHxxxxQQ")  # filetype, flags, rights base, rights inheriting


class InputSource:
    """Where a guest's standard input (descriptor 0) comes from."""

    def read(self, host: SocketHost, size: int) -> bytes:
        """Read up to ``size`` bytes (``b""`` at end of input), in the guest's thread.

        Args:
            host: the guest's socket host (to wait in trio through it).
            size: the most bytes to return.

        Raises:
            OSError: the read failed, or ``GuestStopped`` (the guest is being stopped).
        """
        raise NotImplementedError


class BytesInput(InputSource):
    """Standard input from a byte string (then end of input).

    Args:
        data: the whole input.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def read(self, host: SocketHost, size: int) -> bytes:
        chunk = self._data[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk


class FdInput(InputSource):
    """Standard input from a host file descriptor (e.g. the process's own 0).

    The read waits for the descriptor in trio (:func:`trio.lowlevel.wait_readable`)
    and then reads what is there, so a stop interrupts a guest waiting for
    input; the descriptor's blocking mode is left alone. Regular files, which
    cannot be waited for, are read directly.

    Args:
        fd: the host descriptor to read.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self, host: SocketHost, size: int) -> bytes:
        return host.run(self._read, size)

    async def _read(self, size: int) -> bytes:
        try:
            await trio.lowlevel.wait_readable(self._fd)
        except OSError as exc:
            if exc.errno != errno.EPERM:  # EPERM: a regular file (epoll refuses those)
                raise
        return os.read(self._fd, size)


class OutputSink:
    """Where a guest's standard output or error goes."""

    def write(self, data: bytes) -> None:
        """Write all of ``data``, in the guest's thread.

        Args:
            data: the bytes the guest wrote.

        Raises:
            OSError: the write failed (the guest sees its errno).
        """
        raise NotImplementedError


class FdOutput(OutputSink):
    """Output to a host file descriptor (e.g. the process's own 1 or 2).

    Args:
        fd: the host descriptor to write to.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]


class CallbackOutput(OutputSink):
    """Output handed to a callback, chunk by chunk (exceptions become ``EIO``).

    Args:
        callback: called with each chunk of bytes, in the guest's thread.
    """

    def __init__(self, callback: Callable[[bytes], object]) -> None:
        self._callback = callback

    def write(self, data: bytes) -> None:
        try:
            self._callback(data)
        except Exception as exc:
            raise OSError(errno.EIO, f"output callback failed: {exc!r}") from None


def _wasi_errno(exc: OSError) -> int:
    return abi.wasi_errno(exc.errno)


_STDIO = (0, 1, 2)


def define_wasi(
    linker: wasmtime.Linker,
    host: SocketHost,
    stdin: InputSource,
    stdout: OutputSink,
    stderr: OutputSink,
) -> None:
    """Define WASI preview 1 on ``linker``, descriptor functions implemented here.

    Args:
        linker: the guest's linker.
        host: the guest's socket host.
        stdin: the guest's standard input (descriptor 0).
        stdout: the guest's standard output (descriptor 1).
        stderr: the guest's standard error (descriptor 2).
    """
    linker.define_wasi()
    linker.allow_shadowing = True
    outputs = {1: stdout, 2: stderr}
    closed: set[int] = set()

    def check_stdio(fd: int) -> None:
        if fd not in _STDIO or fd in closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    # Arities from the shared table (abi.WASI_SOCKET_FUNCTIONS), as on the browser page.
    arity = {spec.name: len(spec.params) for spec in abi.WASI_SOCKET_FUNCTIONS}

    def define(name: str, fn: Callable[..., int]) -> None:
        def call(caller: wasmtime.Caller, *args: int) -> int:
            try:
                return fn(caller, *args)
            except OSError as exc:
                return _wasi_errno(exc)
            except Exception:  # never into wasmtime-py: it keeps exceptions process-wide
                logger.exception("WASI %s failed", name)
                return abi.WASI_EIO

        linker.define_func(
            abi.WASI_MODULE,
            name,
            wasmtime.FuncType([_I32] * arity[name], [_I32]),
            call,
            access_caller=True,
        )

    def fd_close(caller: wasmtime.Caller, fd: int) -> int:
        if not host.close(fd):
            check_stdio(fd)
            closed.add(fd)
        return 0

    def sock_shutdown(caller: wasmtime.Caller, fd: int, how: int) -> int:
        host.shutdown(fd, how)
        return 0

    def fd_read(caller: wasmtime.Caller, fd: int, iovs: int, count: int, nread: int) -> int:
        view = host.view(caller)
        vectors = view.iovecs(iovs, count)
        view.check(nread, 4)
        wanted = sum(length for _, length in vectors)
        if host.lookup(fd) is not None:
            data = host.receive(fd, wanted)
        else:
            check_stdio(fd)
            if fd != 0:
                raise OSError(errno.EBADF, "not open for reading")
            data = stdin.read(host, wanted) if wanted else b""
        view = host.view(caller)
        offset = 0
        for buffer, length in vectors:
            if offset >= len(data):
                break
            view.write(buffer, data[offset : offset + length])
            offset += length
        view.write_u32(nread, len(data))
        return 0

    def fd_write(caller: wasmtime.Caller, fd: int, iovs: int, count: int, nwritten: int) -> int:
        view = host.view(caller)
        data = b"".join(view.read(buffer, length) for buffer, length in view.iovecs(iovs, count))
        view.check(nwritten, 4)
        if host.lookup(fd) is not None:
            written = host.send(fd, data)
        else:
            check_stdio(fd)
            if fd == 0:
                raise OSError(errno.EBADF, "not open for writing")
            outputs[fd].write(data)
            written = len(data)
        host.view(caller).write_u32(nwritten, written)
        return 0

    def fd_fdstat_get(caller: wasmtime.Caller, fd: int, pointer: int) -> int:
        guest_socket = host.lookup(fd)
        if guest_socket is not None:
            datagram = guest_socket.socket.type == socket.SOCK_DGRAM
            kind = _SOCKET_DGRAM if datagram else _SOCKET_STREAM
            stat = _FDSTAT.pack(kind, 0, _SOCKET_RIGHTS, _SOCKET_RIGHTS)
        else:
            check_stdio(fd)
            # A terminal (no seek/tell rights): wasi-libc then line-buffers stdout.
            rights = _RIGHT_FD_READ if fd == 0 else _RIGHT_FD_WRITE
            stat = _FDSTAT.pack(_CHARACTER_DEVICE, 0, rights, 0)
        host.view(caller).write(pointer, stat)
        return 0

    def poll_oneoff(caller: wasmtime.Caller, inp: int, out: int, count: int, nevents: int) -> int:
        view = host.view(caller)
        raw = view.read(inp, abi.SUBSCRIPTION_SIZE * (count & 0xFFFFFFFF))
        clocks = abi.clock_subscriptions(raw)
        view.check(out, abi.EVENT_SIZE * len(clocks))
        view.check(nevents, 4)
        shortest = min(timeout for timeout, _ in clocks)
        host.run(trio.sleep, shortest / 1e9)
        fired = [userdata for timeout, userdata in clocks if timeout <= shortest]
        view = host.view(caller)
        view.write(out, abi.clock_events(fired))
        view.write_u32(nevents, len(fired))
        return 0

    define("fd_close", fd_close)
    define("sock_shutdown", sock_shutdown)
    define("fd_read", fd_read)
    define("fd_write", fd_write)
    define("fd_fdstat_get", fd_fdstat_get)
    define("poll_oneoff", poll_oneoff)
