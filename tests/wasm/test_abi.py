"""The guest ABI's pure parts: constants of both flavours, sockaddr_in, errno numbers."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unisockets.wasm import abi


@pytest.mark.parametrize(
    ("domain", "type_", "flavour"),
    [
        (1, 6, abi.Flavour.WASI),  # wasi-libc
        (2, 1, abi.Flavour.LINUX),  # Linux values (the header's custom mode)
        (1, 6 | 0x4000, abi.Flavour.WASI),  # SOCK_NONBLOCK or-ed in: ignored
        (2, 1 | 0x80000, abi.Flavour.LINUX),  # SOCK_CLOEXEC or-ed in: ignored
    ],
)
def test_socket_kind_accepts_both_flavours(domain: int, type_: int, flavour: abi.Flavour) -> None:
    assert abi.socket_kind(domain, type_, 0) == abi.SocketKind(flavour=flavour)
    assert abi.socket_kind(domain, type_, 6) == abi.SocketKind(flavour=flavour)


@pytest.mark.parametrize(
    ("domain", "type_", "flavour"),
    [(1, 5, abi.Flavour.WASI), (2, 2, abi.Flavour.LINUX), (2, 2 | 0x800, abi.Flavour.LINUX)],
)
def test_socket_kind_accepts_datagram_sockets(
    domain: int, type_: int, flavour: abi.Flavour
) -> None:
    expected = abi.SocketKind(flavour=flavour, datagram=True)
    assert abi.socket_kind(domain, type_, 0) == expected
    assert abi.socket_kind(domain, type_, 17) == expected  # IPPROTO_UDP


@pytest.mark.parametrize(
    ("domain", "type_", "protocol", "code"),
    [
        (10, 6, 0, errno.EAFNOSUPPORT),
        (1, 3, 0, errno.ESOCKTNOSUPPORT),  # SOCK_RAW (Linux's value)
        (1, 6, 17, errno.EPROTONOSUPPORT),  # UDP on a stream socket
        (2, 2, 6, errno.EPROTONOSUPPORT),  # TCP on a datagram socket
    ],
)
def test_socket_kind_rejects_what_it_cannot_do(
    domain: int, type_: int, protocol: int, code: int
) -> None:
    assert abi.socket_kind(domain, type_, protocol) == code


def test_shutdown_modes_read_in_the_sockets_flavour() -> None:
    wasi, linux = abi.Flavour.WASI, abi.Flavour.LINUX
    assert abi.shutdown_how(wasi, 1) == (True, False)
    assert abi.shutdown_how(wasi, 2) == (False, True)
    assert abi.shutdown_how(wasi, 3) == (True, True)
    assert abi.shutdown_how(wasi, 0) is None
    assert abi.shutdown_how(linux, 0) == (True, False)
    assert abi.shutdown_how(linux, 1) == (False, True)
    assert abi.shutdown_how(linux, 2) == (True, True)
    assert abi.shutdown_how(linux, 3) is None


def test_sockaddr_in_layout() -> None:
    # family 1 (LE), port 1234 (BE 0x04d2), 10.0.0.3, zeros
    raw = bytes([1, 0, 0x04, 0xD2, 10, 0, 0, 3]) + bytes(8)
    assert abi.decode_sockaddr_in(raw) == ("10.0.0.3", 1234)
    assert abi.encode_sockaddr_in(abi.Flavour.WASI, "10.0.0.3", 1234) == raw
    linux = abi.encode_sockaddr_in(abi.Flavour.LINUX, "10.0.0.3", 1234)
    assert linux[:2] == bytes([2, 0]) and linux[2:] == raw[2:]
    assert len(linux) == abi.SOCKADDR_IN_SIZE


def test_sockaddr_in_errors() -> None:
    assert abi.decode_sockaddr_in(bytes([1, 0, 0, 80])) == errno.EINVAL
    assert abi.decode_sockaddr_in(bytes([10, 0, 0, 80, 1, 2, 3, 4])) == errno.EAFNOSUPPORT


@given(
    family=st.sampled_from([1, 2]),
    port=st.integers(0, 65535),
    host=st.ip_addresses(v=4).map(str),
)
def test_sockaddr_in_round_trips(family: int, port: int, host: str) -> None:
    flavour = abi.Flavour.WASI if family == 1 else abi.Flavour.LINUX
    assert abi.decode_sockaddr_in(abi.encode_sockaddr_in(flavour, host, port)) == (host, port)


@given(st.binary(max_size=32))
def test_decoding_garbage_gives_an_address_or_an_errno(raw: bytes) -> None:
    result = abi.decode_sockaddr_in(raw)
    assert result in (errno.EINVAL, errno.EAFNOSUPPORT) or isinstance(result, tuple)


def test_errno_numbers_are_wasis() -> None:
    assert abi.wasi_errno(errno.ECONNREFUSED) == 14
    assert abi.wasi_errno(errno.EADDRINUSE) == 3
    assert abi.wasi_errno(errno.EBADF) == 8
    assert abi.wasi_errno(errno.ENOTCONN) == 53
    assert abi.wasi_errno(errno.EINVAL) == 28
    assert abi.wasi_errno(errno.ECONNRESET) == 15
    assert abi.wasi_errno(errno.EPIPE) == 64
    assert abi.wasi_errno(None) == 29  # EIO
    assert abi.wasi_errno(errno.ENOTBLK) == 29  # no WASI number: EIO
