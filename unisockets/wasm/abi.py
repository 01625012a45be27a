"""The guest ABI: constants, errno numbers and struct layouts shared with the C header.

Everything here is pure data and pure functions (no wasmtime, no trio), so it
is testable on its own. Sources:

- the import signatures are the original unisockets' ``unisockets.h``
  (examples/c/unisockets.h is our compatible copy);
- constant and errno values are WASI preview 1's (``wasi/api.h`` of
  wasi-libc) and Linux's, because programs built with the header's
  ``UNISOCKETS_WITH_CUSTOM_ARPA_INET`` mode use Linux's values;
- ``struct sockaddr_in`` is 16 bytes on wasm32: family (u16, little-endian)
  at 0, port (u16, big-endian) at 2, IPv4 address at 4, 8 bytes of zeros.

:data:`IMPORTS` and :data:`WASI_SOCKET_FUNCTIONS` are the one table of the
functions a host serves: the native runner (:mod:`unisockets.wasm.host`,
:mod:`unisockets.wasm.wasi`) defines its imports from it, and the browser
page (docs/wasm.md, "In a browser tab") reads it as JSON
(:func:`import_table`) to build its imports. This module imports nothing but
the standard library, so Pyodide loads it too.
"""

from __future__ import annotations

import errno
import ipaddress
import struct
from dataclasses import dataclass
from enum import Enum
from typing import Literal

__all__ = [
    "IMPORTS",
    "IMPORT_MODULE",
    "SOCKADDR_IN_SIZE",
    "WASI_MODULE",
    "WASI_SOCKET_FUNCTIONS",
    "clock_events",
    "clock_subscriptions",
    "Flavour",
    "ImportSpec",
    "SocketKind",
    "decode_sockaddr_in",
    "encode_sockaddr_in",
    "import_table",
    "shutdown_how",
    "socket_kind",
    "wasi_errno",
]

#: The module name of the ``unisockets_*`` imports.
IMPORT_MODULE = "env"
#: The module name of WASI preview 1's imports.
WASI_MODULE = "wasi_snapshot_preview1"
#: ``sizeof(struct sockaddr_in)`` on wasm32, in bytes.
SOCKADDR_IN_SIZE = 16
#: The smallest address length a ``bind``/``connect`` accepts: family, port, IPv4 (bytes).
SOCKADDR_IN_MIN = 8


class Flavour(Enum):
    """Which constant values a guest uses: wasi-libc's or Linux's."""

    WASI = "wasi"
    LINUX = "linux"


#: ``AF_INET`` per flavour (wasi-libc: 1; Linux: 2, which is wasi-libc's AF_INET6).
AF_INET = {Flavour.WASI: 1, Flavour.LINUX: 2}
#: ``SOCK_STREAM`` per flavour (wasi-libc: WASI's filetype socket_stream, 6).
SOCK_STREAM = {Flavour.WASI: 6, Flavour.LINUX: 1}
#: ``SOCK_DGRAM`` per flavour (wasi-libc: WASI's filetype socket_dgram, 5).
SOCK_DGRAM = {Flavour.WASI: 5, Flavour.LINUX: 2}
#: ``IPPROTO_TCP`` (same in both).
IPPROTO_TCP = 6
#: ``IPPROTO_UDP`` (same in both).
IPPROTO_UDP = 17
#: The low bits of ``type`` that hold the socket type; the rest are flags
#: (``SOCK_NONBLOCK`` / ``SOCK_CLOEXEC``), which are ignored.
SOCK_TYPE_MASK = 0xFF

# ``shutdown`` modes, as (read, write) pairs, per flavour: WASI's sdflags are
# bits (RD=1, WR=2, RDWR=3); Linux's are an enumeration (RD=0, WR=1, RDWR=2).
_SHUTDOWN = {
    Flavour.WASI: {1: (True, False), 2: (False, True), 3: (True, True)},
    Flavour.LINUX: {0: (True, False), 1: (False, True), 2: (True, True)},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketKind:
    """What a guest asked ``socket()`` for, once validated.

    Attributes:
        flavour: the constant values the guest uses (decides ``accept``'s
            ``sin_family`` and how ``shutdown`` modes read).
        datagram: ``SOCK_DGRAM`` (a UDP-like socket, docs/wasm.md) rather
            than ``SOCK_STREAM``.
    """

    flavour: Flavour
    datagram: bool = False


def socket_kind(domain: int, type_: int, protocol: int) -> SocketKind | int:
    """Validate ``socket(domain, type, protocol)`` arguments.

    Args:
        domain: ``AF_INET``, 1 (wasi-libc) or 2 (Linux).
        type_: ``SOCK_STREAM``, 6 (wasi-libc) or 1 (Linux), or
            ``SOCK_DGRAM``, 5 (wasi-libc) or 2 (Linux), possibly or-ed
            with ``SOCK_NONBLOCK`` / ``SOCK_CLOEXEC`` flags (ignored).
        protocol: 0, or ``IPPROTO_TCP`` (6) for a stream socket,
            ``IPPROTO_UDP`` (17) for a datagram socket.

    Returns:
        The socket's kind, or a Python :mod:`errno` value: ``EAFNOSUPPORT``
        (another family), ``EPROTOTYPE``-like ``ESOCKTNOSUPPORT`` (another
        type), ``EPROTONOSUPPORT`` (another protocol).
    """
    kind = type_ & SOCK_TYPE_MASK
    flavours = {SOCK_STREAM[f]: (f, False) for f in Flavour}
    flavours.update({SOCK_DGRAM[f]: (f, True) for f in Flavour})
    if kind not in flavours:
        return errno.ESOCKTNOSUPPORT
    flavour, datagram = flavours[kind]
    if domain not in (AF_INET[Flavour.WASI], AF_INET[Flavour.LINUX]):
        return errno.EAFNOSUPPORT
    if protocol not in (0, IPPROTO_UDP if datagram else IPPROTO_TCP):
        return errno.EPROTONOSUPPORT
    return SocketKind(flavour=flavour, datagram=datagram)


def shutdown_how(flavour: Flavour, how: int) -> tuple[bool, bool] | None:
    """Read a ``shutdown`` mode in the socket's flavour.

    Args:
        flavour: the flavour the socket was created with.
        how: the guest's ``SHUT_RD`` / ``SHUT_WR`` / ``SHUT_RDWR`` value.

    Returns:
        ``(shut_read, shut_write)``, or ``None`` for a value the flavour does not define.
    """
    return _SHUTDOWN[flavour].get(how)


def decode_sockaddr_in(raw: bytes) -> tuple[str, int] | int:
    """Decode a guest's ``struct sockaddr_in``.

    Args:
        raw: the ``address_length`` bytes the guest passed (at least 8).

    Returns:
        ``(dotted IPv4 host, port)``, or a Python :mod:`errno` value:
        ``EINVAL`` (too short), ``EAFNOSUPPORT`` (not AF_INET in either flavour).
    """
    if len(raw) < SOCKADDR_IN_MIN:
        return errno.EINVAL
    family = int.from_bytes(raw[0:2], "little")
    if family not in AF_INET.values():
        return errno.EAFNOSUPPORT
    (port,) = struct.unpack_from(">H", raw, 2)
    host = str(ipaddress.IPv4Address(bytes(raw[4:8])))
    return host, port


def encode_sockaddr_in(flavour: Flavour, host: str, port: int) -> bytes:
    """Encode ``(host, port)`` as a 16-byte ``struct sockaddr_in`` for the guest.

    Args:
        flavour: decides ``sin_family`` (1 for wasi-libc, 2 for Linux values).
        host: dotted IPv4 address; anything else (``""``) encodes as 0.0.0.0.
        port: 0..65535, written in network byte order.
    """
    try:
        packed = ipaddress.IPv4Address(host).packed
    except ValueError:
        packed = bytes(4)
    return struct.pack("<H", AF_INET[flavour]) + struct.pack(">H", port) + packed + bytes(8)


#: ``sizeof(__wasi_subscription_t)`` and ``sizeof(__wasi_event_t)`` (wasi/api.h), in bytes.
SUBSCRIPTION_SIZE = 48
EVENT_SIZE = 32
_EVENTTYPE_CLOCK = 0
_SUBCLOCKFLAGS_ABSTIME = 1


def clock_subscriptions(raw: bytes) -> list[tuple[int, int]]:
    """Read ``poll_oneoff`` subscriptions that a host serves: relative clocks (``sleep()``).

    Args:
        raw: ``count`` subscriptions of :data:`SUBSCRIPTION_SIZE` bytes each.

    Returns:
        ``(timeout in ns, userdata)`` per subscription, in order.

    Raises:
        OSError: ``ENOTSUP`` for another kind (an fd, an absolute clock);
            ``EINVAL`` when there are none.
    """
    clocks = []
    for base in range(0, len(raw) - SUBSCRIPTION_SIZE + 1, SUBSCRIPTION_SIZE):
        userdata, tag = struct.unpack_from("<QB", raw, base)
        timeout, _, flags = struct.unpack_from("<QQH", raw, base + 24)
        if tag != _EVENTTYPE_CLOCK or flags & _SUBCLOCKFLAGS_ABSTIME:
            raise OSError(errno.ENOTSUP, "only relative clock subscriptions are supported")
        clocks.append((timeout, userdata))
    if not clocks:
        raise OSError(errno.EINVAL, "no subscriptions")
    return clocks


def clock_events(userdata: list[int]) -> bytes:
    """Encode the events of fired clock subscriptions (:data:`EVENT_SIZE` bytes each).

    Args:
        userdata: each fired subscription's ``userdata``.
    """
    return b"".join(
        struct.pack("<QHB", value, 0, _EVENTTYPE_CLOCK).ljust(EVENT_SIZE, b"\0")
        for value in userdata
    )


# Python's (Linux's) errno values -> WASI preview 1's ``__wasi_errno_t``, which
# wasi-libc's errno.h uses (its strerror/perror print the usual messages).
_WASI_ERRNO = {
    errno.E2BIG: 1,
    errno.EACCES: 2,
    errno.EADDRINUSE: 3,
    errno.EADDRNOTAVAIL: 4,
    errno.EAFNOSUPPORT: 5,
    errno.EAGAIN: 6,
    errno.EALREADY: 7,
    errno.EBADF: 8,
    errno.EBADMSG: 9,
    errno.EBUSY: 10,
    errno.ECANCELED: 11,
    errno.ECONNABORTED: 13,
    errno.ECONNREFUSED: 14,
    errno.ECONNRESET: 15,
    errno.EDESTADDRREQ: 17,
    errno.EEXIST: 20,
    errno.EFAULT: 21,
    errno.EHOSTUNREACH: 23,
    errno.EINPROGRESS: 26,
    errno.EINTR: 27,
    errno.EINVAL: 28,
    errno.EIO: 29,
    errno.EISCONN: 30,
    errno.EMFILE: 33,
    errno.EMSGSIZE: 35,
    errno.ENETDOWN: 38,
    errno.ENETRESET: 39,
    errno.ENETUNREACH: 40,
    errno.ENOBUFS: 42,
    errno.ENOENT: 44,
    errno.ENOMEM: 48,
    errno.ENOPROTOOPT: 50,
    errno.ENOSYS: 52,
    errno.ENOTCONN: 53,
    errno.ENOTSOCK: 57,
    errno.ENOTSUP: 58,
    errno.EPERM: 63,
    errno.EPIPE: 64,
    errno.EPROTO: 65,
    errno.EPROTONOSUPPORT: 66,
    errno.EPROTOTYPE: 67,
    errno.ETIMEDOUT: 73,
    # Linux-only names without a WASI number of their own:
    errno.ESOCKTNOSUPPORT: 58,  # ENOTSUP
    errno.EHOSTDOWN: 23,  # EHOSTUNREACH
}
#: WASI's ``EIO``, for errors without a better number.
WASI_EIO = 29


def wasi_errno(code: int | None) -> int:
    """Translate a Python (Linux) :mod:`errno` value to WASI preview 1's numbering.

    Args:
        code: ``OSError.errno`` (``None`` for an OSError without one).

    Returns:
        The WASI errno (e.g. ``ECONNREFUSED`` 111 -> 14); ``EIO`` (29) for
        values WASI does not have.
    """
    if code is None:
        return WASI_EIO
    return _WASI_ERRNO.get(code, WASI_EIO)


#: How an import reports failure: ``"errno"``: returns -1 and writes the
#: guest's ``errno`` (POSIX, the original's ABI); ``"wasi"``: returns a WASI
#: errno, 0 on success (WASI preview 1's convention); ``"none"``: cannot fail.
ErrorConvention = Literal["errno", "wasi", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSpec:
    """One function a host serves to a guest: its name, wasm type and behaviour.

    Every parameter and the result are ``i32``.

    Attributes:
        module: the import's module (:data:`IMPORT_MODULE` or :data:`WASI_MODULE`).
        name: the import's name.
        params: the parameters' names, in order (their number is the arity).
        blocks: whether a call may wait (for the network, a peer, a clock):
            the browser page suspends the guest for these (JSPI) and calls
            the others synchronously.
        errors: how a failure is reported (:data:`ErrorConvention`).
        summary: one line on what it does.
    """

    module: str
    name: str
    params: tuple[str, ...]
    blocks: bool
    errors: ErrorConvention
    summary: str


def _spec(
    module: str, name: str, params: str, blocks: bool, summary: str, errors: ErrorConvention
) -> ImportSpec:
    return ImportSpec(
        module=module,
        name=name,
        params=tuple(params.split()),
        blocks=blocks,
        errors=errors,
        summary=summary,
    )


def _env(
    name: str, params: str, blocks: bool, summary: str, errors: ErrorConvention = "errno"
) -> ImportSpec:
    return _spec(IMPORT_MODULE, name, params, blocks, summary, errors)


def _wasi(name: str, params: str, blocks: bool, summary: str) -> ImportSpec:
    return _spec(WASI_MODULE, name, params, blocks, summary, "wasi")


#: The ``env.unisockets_*`` imports (the original's ``unisockets.h``, plus
#: the ``unisockets_errno`` extension for languages that cannot export
#: ``errno``). Add an import here and give each host an implementation.
IMPORTS: tuple[ImportSpec, ...] = (
    _env("unisockets_socket", "domain type protocol", False, "a new socket descriptor"),
    _env("unisockets_bind", "fd address address_length", True, "bind to a sockaddr_in"),
    _env("unisockets_connect", "fd address address_length", True, "connect to a sockaddr_in"),
    _env("unisockets_listen", "fd backlog", True, "listen on a bound socket"),
    _env("unisockets_accept", "fd address address_length_pointer", True, "accept a connection"),
    _env("unisockets_send", "fd buffer length flags", True, "send bytes"),
    _env("unisockets_recv", "fd buffer length flags", True, "receive bytes (0 at EOF)"),
    # Datagram sockets (docs/wasm.md), beside the original's seven.
    _env(
        "unisockets_sendto",
        "fd buffer length flags address address_length",
        True,
        "send one datagram to a sockaddr_in",
    ),
    _env(
        "unisockets_recvfrom",
        "fd buffer length flags address address_length_pointer",
        True,
        "receive one datagram and its sender's sockaddr_in",
    ),
    _env("unisockets_errno", "", False, "the errno of the last failed call", "none"),
)

#: The WASI preview 1 functions a host serves itself because they touch
#: socket descriptors (or wait, where the host must be able to stop them).
WASI_SOCKET_FUNCTIONS: tuple[ImportSpec, ...] = (
    _wasi("fd_close", "fd", False, "close a socket (or a stdio descriptor)"),
    _wasi("sock_shutdown", "fd how", False, "shut down one or both directions of a socket"),
    _wasi("fd_read", "fd iovs iovs_count nread_pointer", True, "recv on a socket, or stdin"),
    _wasi("fd_write", "fd iovs iovs_count nwritten_pointer", True, "send on a socket, or stdio"),
    _wasi("fd_fdstat_get", "fd stat_pointer", False, "a socket is a socket_stream"),
    _wasi("poll_oneoff", "subscriptions events count nevents_pointer", True, "sleep"),
)


def import_table() -> dict[str, object]:
    """The import table as JSON-able data, for hosts outside Python (the browser page).

    Returns:
        ``{"imports": [...], "wasi": [...], "errno": {...}}``: one object per
        :class:`ImportSpec` (``module``, ``name``, ``params``, ``blocks``,
        ``errors``, ``summary``) of :data:`IMPORTS` and
        :data:`WASI_SOCKET_FUNCTIONS`, and WASI's errno numbers by their
        Python :mod:`errno` names (``{"ECANCELED": 11, ...}``).
    """

    def entry(spec: ImportSpec) -> dict[str, object]:
        return {
            "module": spec.module,
            "name": spec.name,
            "params": list(spec.params),
            "blocks": spec.blocks,
            "errors": spec.errors,
            "summary": spec.summary,
        }

    return {
        "imports": [entry(spec) for spec in IMPORTS],
        "wasi": [entry(spec) for spec in WASI_SOCKET_FUNCTIONS],
        "errno": {errno.errorcode[code]: number for code, number in sorted(_WASI_ERRNO.items())},
    }
