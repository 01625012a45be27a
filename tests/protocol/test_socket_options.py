"""The option table of both socket objects (protocol.socket_options), against Linux.

Each check that a real Linux socket can answer is asked of one too, so the
table cannot drift from the semantics it claims (flags read back 0/1, the
errnos of an unknown option and a short buffer, the timeout errors).
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

import pytest

from unisockets.protocol.socket_options import (
    OPTIONS,
    SocketOptions,
    check_recv_into,
    check_timeout,
    timeout_error,
)

linux = pytest.mark.skipif(sys.platform != "linux", reason="compares with Linux sockets")


def test_every_option_has_its_linux_numbers() -> None:
    if sys.platform == "linux":
        for option in OPTIONS.values():
            assert getattr(socket, option.level) == option.linux_level
            assert getattr(socket, option.name) == option.linux_number
    # a runtime whose socket module lacks a name gets Linux's number
    options = SocketOptions(object())
    assert options.get(1, 2) == 0  # SOL_SOCKET, SO_REUSEADDR
    assert options.get(6, 1) == 0  # IPPROTO_TCP, TCP_NODELAY


@linux
@pytest.mark.parametrize("name", ["SO_REUSEADDR", "SO_KEEPALIVE", "TCP_NODELAY"])
def test_flags_read_back_as_linux_reads_them(name: str) -> None:
    option = OPTIONS[name]
    level, number = getattr(socket, option.level), getattr(socket, name)
    ours = SocketOptions(socket)
    with socket.socket() as real:
        for value in (0, 1, 7, -1):
            real.setsockopt(level, number, value)
            ours.set(level, number, value)
            assert ours.get(level, number) == real.getsockopt(level, number)
            assert ours.get(level, number, 4) == real.getsockopt(level, number, 4)


@linux
def test_errors_are_linux_errors() -> None:
    ours = SocketOptions(socket)
    with socket.socket() as real:
        for call in (
            lambda s: s.setsockopt(socket.SOL_SOCKET, socket.SO_TYPE, 1),  # read-only
            lambda s: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, b"\0"),  # short
            lambda s: s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2000),
        ):
            with pytest.raises(OSError) as theirs:
                call(real)
            with pytest.raises(OSError) as info:
                call(_Shim(ours))  # the same call on ours
            # CPython's buflen check has no errno; ours says EINVAL, as Linux would
            assert info.value.errno == (theirs.value.errno or errno.EINVAL)
        assert ours.get(socket.SOL_SOCKET, socket.SO_TYPE) == real.getsockopt(
            socket.SOL_SOCKET, socket.SO_TYPE
        )
    with pytest.raises(OSError) as info:
        ours.set(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    assert info.value.errno == errno.ENOPROTOOPT


class _Shim:
    """``SocketOptions`` under the names of :class:`socket.socket`."""

    def __init__(self, options: SocketOptions) -> None:
        self.setsockopt = options.set
        self.getsockopt = options.get


def test_sizes_values_and_copies() -> None:
    ours = SocketOptions(socket)
    sol = socket.SOL_SOCKET
    ours.set(sol, socket.SO_RCVBUF, struct.pack("i", 5000) + b"extra")  # first int counts
    assert ours.get(sol, socket.SO_RCVBUF) == 5000
    copy = ours.copy()
    copy.set(sol, socket.SO_RCVBUF, 1)
    assert ours.get(sol, socket.SO_RCVBUF) == 5000
    assert ours.explicit() == [(sol, socket.SO_RCVBUF, 5000)]
    with pytest.raises(OverflowError):
        ours.set(sol, socket.SO_RCVBUF, 2**31)
    with pytest.raises(TypeError):
        ours.set(sol, socket.SO_RCVBUF, 1.5)


def test_timeouts_as_the_socket_module() -> None:
    with socket.socket() as real:
        for good in (None, 0, 0.5, 3):
            real.settimeout(good)
            assert check_timeout(good) == real.gettimeout()
        for bad, error in ((-1, ValueError), ("1", TypeError), (float("nan"), ValueError)):
            with pytest.raises(error):
                real.settimeout(bad)  # type: ignore[arg-type]
            with pytest.raises(error):
                check_timeout(bad)
    assert isinstance(timeout_error(0, "recv"), BlockingIOError)
    assert timeout_error(0, "recv").errno == errno.EAGAIN
    assert isinstance(timeout_error(1.5, "recv"), socket.timeout)


def test_recv_into_sizes_as_the_socket_module() -> None:
    view, n = check_recv_into(bytearray(8), 0)
    assert n == 8 and len(view) == 8
    assert check_recv_into(bytearray(8), 3)[1] == 3
    a, b = socket.socketpair()
    with a, b:
        for nbytes, message in ((-1, "negative"), (9, "too small")):
            with pytest.raises(ValueError, match=message):
                a.recv_into(bytearray(8), nbytes)
            with pytest.raises(ValueError, match=message):
                check_recv_into(bytearray(8), nbytes)
        with pytest.raises(TypeError):
            a.recv_into(b"read-only")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            check_recv_into(b"read-only", 0)
