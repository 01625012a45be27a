"""Socket options, timeouts and ``recv_into`` sizes of both socket objects, as data.

:class:`unisockets.net.Socket` (trio) and :class:`unisockets.browser.Socket`
(asyncio on Pyodide) keep one :class:`SocketOptions` each and take every
decision from here: which ``(level, optname)`` pairs exist, which values are
valid, what ``getsockopt`` returns, and the errors (``ENOPROTOOPT``,
``EINVAL``, :class:`TypeError`, ...). The drivers only do what needs a
runtime: waiting with a timeout, and, on the native fallback, passing the
options on to the OS socket.

Options (:data:`OPTIONS`), with Linux's semantics where they carry over
(setsockopt(2), socket(7), tcp(7)):

- A flag (``SO_REUSEADDR``, ``SO_KEEPALIVE``, ``TCP_NODELAY``) is on for any
  non-zero value and ``getsockopt`` returns ``0`` or ``1``, as Linux does.
- A size (``SO_RCVBUF``, ``SO_SNDBUF``) is stored as given (Linux doubles it
  for its bookkeeping, which has nothing to account for here); a negative
  size is ``EINVAL``. Before any ``setsockopt`` both read the stream window,
  :data:`~unisockets.protocol.stream.DEFAULT_WINDOW` bytes.
- ``SO_TYPE`` and ``SO_ERROR`` can only be read (``SOCK_STREAM``, and ``0``:
  a failed call raises at once, no error is left pending); setting them is
  ``ENOPROTOOPT``, as on Linux.
- Any other ``(level, optname)`` is ``ENOPROTOOPT`` ("Protocol not available").

What each one does over a data channel is :attr:`SocketOption.effect`, the
text docs/concepts.md shows ("Socket options"). Option numbers differ between
platforms (``SOL_SOCKET`` is 1 on Linux, 0xffff on macOS): a
:class:`SocketOptions` takes them from the runtime's :mod:`socket` module,
falling back to Linux's for a name that module lacks.

Timeouts follow :meth:`socket.socket.settimeout`: ``None`` blocks, ``0`` makes
a call that would wait raise :class:`BlockingIOError` (``EAGAIN``), a positive
number of seconds makes it raise :class:`TimeoutError` (``socket.timeout``)
when it expires (:func:`check_timeout`, :func:`timeout_error`).
"""

from __future__ import annotations

import errno
import io
import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from .socket_states import oserror
from .stream import DEFAULT_WINDOW

__all__ = [
    "OPTIONS",
    "BlockingMode",
    "SocketOption",
    "SocketOptions",
    "check_recv_into",
    "check_timeout",
    "no_descriptor_error",
    "timeout_error",
]

_INT = struct.Struct("i")  # a C int in native byte order, as setsockopt(2) takes it


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketOption:
    """One socket option a socket object accepts.

    Attributes:
        name: the :mod:`socket` constant, e.g. ``"SO_REUSEADDR"``.
        level: the :mod:`socket` constant of its level, ``"SOL_SOCKET"`` or ``"IPPROTO_TCP"``.
        linux_level: ``level``'s value on Linux (used when the socket module lacks it).
        linux_number: ``name``'s value on Linux (likewise).
        kind: ``"flag"`` (0 or 1), ``"size"`` (bytes, >= 0) or ``"read-only"``.
        default: what ``getsockopt`` returns before any ``setsockopt``
            (``-1`` for ``SO_TYPE``: the socket module's ``SOCK_STREAM``).
        effect: what the option does on an overlay socket (Markdown, for the docs).
        native: what it does on the native fallback (``open_node(None)``).
    """

    name: str
    level: Literal["SOL_SOCKET", "IPPROTO_TCP"]
    linux_level: int
    linux_number: int
    kind: Literal["flag", "size", "read-only"]
    default: int
    effect: str
    native: str


_APPLIED = "set on the OS socket (before `bind`/`connect` when given before them); "
_READ = "`getsockopt` reads the OS socket once there is one"

#: Every option, by name: see the module docstring for the rules.
OPTIONS: Final[Mapping[str, SocketOption]] = MappingProxyType(
    {
        option.name: option
        for option in (
            SocketOption(
                name="SO_REUSEADDR",
                level="SOL_SOCKET",
                linux_level=1,
                linux_number=2,
                kind="flag",
                default=0,
                effect="Stored only: closing a socket releases its address at once "
                "(no `TIME_WAIT`), and a `bind` of an address whose release is "
                "still on its way to the signaling server waits for it.",
                native=_APPLIED + _READ + " (the node sets it to 1 unless told otherwise).",
            ),
            SocketOption(
                name="SO_KEEPALIVE",
                level="SOL_SOCKET",
                linux_level=1,
                linux_number=9,
                kind="flag",
                default=0,
                effect="Stored only: the peer link checks itself (ICE consent "
                "freshness, SCTP heartbeats) whatever the value, and a dead link "
                "breaks the connection (`ECONNRESET`).",
                native=_APPLIED + _READ + ".",
            ),
            SocketOption(
                name="SO_RCVBUF",
                level="SOL_SOCKET",
                linux_level=1,
                linux_number=8,
                kind="size",
                default=DEFAULT_WINDOW,
                effect="Stored only: a connection buffers at most its receive "
                "window (256 KiB), which both ends must agree on, so one side "
                "cannot change it.",
                native=_APPLIED + _READ + " (Linux reports twice the value set).",
            ),
            SocketOption(
                name="SO_SNDBUF",
                level="SOL_SOCKET",
                linux_level=1,
                linux_number=7,
                kind="size",
                default=DEFAULT_WINDOW,
                effect="Stored only: `send` waits for the peer's credit, at most "
                "one window (256 KiB) in flight, whatever the value.",
                native=_APPLIED + _READ + " (Linux reports twice the value set).",
            ),
            SocketOption(
                name="TCP_NODELAY",
                level="IPPROTO_TCP",
                linux_level=6,
                linux_number=1,
                kind="flag",
                default=0,
                effect="Stored only: every `send` goes out at once, in data "
                "channel messages; nothing delays small writes (there is no Nagle "
                "algorithm to turn off).",
                native=_APPLIED + _READ + ".",
            ),
            SocketOption(
                name="SO_TYPE",
                level="SOL_SOCKET",
                linux_level=1,
                linux_number=3,
                kind="read-only",
                default=-1,
                effect="Read-only: `SOCK_STREAM`.",
                native="Read from the OS socket once there is one.",
            ),
            SocketOption(
                name="SO_ERROR",
                level="SOL_SOCKET",
                linux_level=1,
                linux_number=4,
                kind="read-only",
                default=0,
                effect="Read-only: `0`; a call that fails raises its error at "
                "once, none is left pending.",
                native="Read from the OS socket once there is one.",
            ),
        )
    }
)

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class SocketOptions:
    """The option values of one socket object, validated and normalised.

    Args:
        constants: the runtime's :mod:`socket` module (or any object with its
            constants as attributes); names it lacks get Linux's values.
            ``None``: Linux's values throughout.
    """

    __slots__ = ("_by_key", "_sock_stream", "_values")

    def __init__(self, constants: object = None) -> None:
        self._by_key: dict[tuple[int, int], SocketOption] = {}
        for option in OPTIONS.values():
            level = getattr(constants, option.level, option.linux_level)
            number = getattr(constants, option.name, option.linux_number)
            self._by_key[int(level), int(number)] = option
        self._sock_stream = int(getattr(constants, "SOCK_STREAM", 1))
        self._values: dict[SocketOption, int] = {}

    def option(self, level: int, optname: int) -> SocketOption:
        """The option ``(level, optname)`` names.

        Raises:
            OSError: ``ENOPROTOOPT`` when it is not in :data:`OPTIONS`.
        """
        option = self._by_key.get((level, optname))
        if option is None:
            raise oserror(
                errno.ENOPROTOOPT,
                f"option {optname} at level {level} is not supported "
                f"(supported: {', '.join(OPTIONS)})",
            )
        return option

    def set(self, level: int, optname: int, value: object) -> tuple[SocketOption, int]:
        """Validate and store a ``setsockopt`` (setsockopt(2)).

        Args:
            level: e.g. ``socket.SOL_SOCKET``.
            optname: e.g. ``socket.SO_REUSEADDR``.
            value: an ``int``, or a bytes-like object holding a C ``int``
                (at least 4 bytes, native byte order), as :mod:`socket` takes.

        Returns:
            ``(option, stored value)``: flags are stored as 0 or 1.

        Raises:
            OSError: ``ENOPROTOOPT`` (unknown or read-only option), ``EINVAL``
                (a buffer shorter than an ``int``, a negative size).
            TypeError: ``value`` is neither an ``int`` nor bytes-like.
            OverflowError: ``value`` does not fit a C ``int``.
        """
        option = self.option(level, optname)
        if option.kind == "read-only":
            raise oserror(errno.ENOPROTOOPT, f"{option.name} can only be read")
        number = _decode(value)
        if option.kind == "flag":
            number = int(number != 0)
        elif number < 0:
            raise oserror(errno.EINVAL, f"{option.name} must not be negative, got {number}")
        self._values[option] = number
        return option, number

    def get(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """Answer a ``getsockopt`` from the stored values (getsockopt(2)).

        Args:
            level: e.g. ``socket.SOL_SOCKET``.
            optname: e.g. ``socket.SO_RCVBUF``.
            buflen: ``None`` or ``0`` for an ``int``; 1..1024 for the value
                as bytes (a native C ``int``, cut to ``buflen`` as Linux does).

        Returns:
            The value set, else the option's default.

        Raises:
            OSError: ``ENOPROTOOPT`` (unknown option), ``EINVAL`` (``buflen``
                out of range).
        """
        option = self.option(level, optname)
        value = self._values.get(option, option.default)
        if option.name == "SO_TYPE":
            value = self._sock_stream
        return encode(value, buflen)

    def copy(self) -> SocketOptions:
        """A new :class:`SocketOptions` with the same values.

        ``accept`` gives each connected socket a copy of the listening
        socket's options, as Linux's accepted sockets inherit them.
        """
        clone = SocketOptions.__new__(SocketOptions)
        clone._by_key = self._by_key
        clone._sock_stream = self._sock_stream
        clone._values = dict(self._values)
        return clone

    def explicit(self) -> list[tuple[int, int, int]]:
        """The options ``setsockopt`` stored, as ``(level, optname, value)``, in setting order.

        A native socket sets them on each OS socket it creates.
        """
        keys = {option: key for key, option in self._by_key.items()}
        return [(*keys[option], value) for option, value in self._values.items()]


def encode(value: int, buflen: int | None) -> int | bytes:
    """Return ``value`` as ``getsockopt(level, optname, buflen)`` does.

    Args:
        value: the option's value.
        buflen: ``None``/``0``: return the ``int``; 1..1024: the value as a
            native C ``int`` in bytes, cut to ``buflen`` bytes (Linux copies
            at most ``sizeof(int)``).

    Returns:
        ``value``, or its bytes.

    Raises:
        OSError: ``EINVAL`` when ``buflen`` is negative or above 1024 (the
            limit :meth:`socket.socket.getsockopt` enforces).
        TypeError: ``buflen`` is not an ``int``.
    """
    if buflen is None or buflen == 0:
        return value
    if type(buflen) is not int:
        raise TypeError(f"buflen must be an int, not {type(buflen).__name__}")
    if not 0 < buflen <= 1024:
        raise oserror(errno.EINVAL, f"getsockopt buflen out of range: {buflen}")
    return _INT.pack(value)[:buflen]


def _decode(value: object) -> int:
    if isinstance(value, int):  # bool too, as socket.setsockopt takes it
        if not _INT_MIN <= value <= _INT_MAX:
            raise OverflowError(f"socket option value {value} does not fit a C int")
        return int(value)
    try:
        data = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"a socket option value is an int or bytes-like, not {type(value).__name__}"
        ) from None
    raw = data.tobytes()
    if len(raw) < _INT.size:
        raise oserror(errno.EINVAL, f"option value of {len(raw)} bytes, shorter than an int")
    number: int = _INT.unpack_from(raw)[0]
    return number


def check_timeout(timeout: object) -> float | None:
    """Validate a :meth:`socket.socket.settimeout` value.

    Args:
        timeout: ``None`` (blocking), or a non-negative number of seconds
            (``0``: non-blocking).

    Returns:
        ``None`` or the timeout as a ``float``.

    Raises:
        TypeError: neither ``None`` nor an ``int``/``float``
            ("Timeout value must be int, float or None", as :mod:`socket`).
        ValueError: negative or NaN ("Timeout value out of range").
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError("Timeout value must be int, float or None")
    seconds = float(timeout)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("Timeout value out of range")
    return seconds


def timeout_error(timeout: float, call: str) -> OSError:
    """The error of a call that ran out of time (what :mod:`socket` raises).

    Args:
        timeout: the socket's timeout, in seconds (not ``None``).
        call: the call's name, e.g. ``"recv"``, for the message.

    Returns:
        :class:`BlockingIOError` (``EAGAIN``) for a timeout of ``0`` (the
        call would have had to wait), else :class:`TimeoutError`
        (``socket.timeout``) with the message ``"timed out"``.
    """
    if timeout == 0:
        return BlockingIOError(
            errno.EAGAIN, f"{os.strerror(errno.EAGAIN)}: {call} would wait (timeout 0)"
        )
    return TimeoutError(f"timed out ({call}, timeout {timeout:g} s)")


def check_recv_into(buffer: object, nbytes: object) -> tuple[memoryview, int]:
    """Validate ``recv_into(buffer, nbytes)`` (:meth:`socket.socket.recv_into`).

    Args:
        buffer: a writable bytes-like object.
        nbytes: the most bytes to receive; ``0``: ``len(buffer)``.

    Returns:
        ``(view, n)``: a writable byte view of ``buffer`` and the size to receive.

    Raises:
        TypeError: ``buffer`` is not a writable bytes-like object, or
            ``nbytes`` is not an ``int``.
        ValueError: ``nbytes`` is negative or larger than the buffer
            (the messages of :mod:`socket`).
    """
    try:
        view = memoryview(buffer)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"recv_into needs a writable buffer, not {type(buffer).__name__}") from None
    if view.readonly:
        raise TypeError("recv_into needs a writable buffer, this one is read-only")
    view = view.cast("B")
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError(f"nbytes must be an int, not {type(nbytes).__name__}")
    if nbytes < 0:
        raise ValueError("negative buffersize in recv_into")
    if nbytes > len(view):
        raise ValueError("buffer too small for requested bytes")
    return view, nbytes or len(view)


class BlockingMode:
    """``settimeout``, ``gettimeout``, ``setblocking``, ``getblocking`` and ``fileno``.

    The part of :class:`socket.socket` both socket objects share word for
    word; each driver applies :attr:`_timeout` to its waits.
    """

    _timeout: float | None = None

    def settimeout(self, timeout: float | None) -> None:
        """Set the timeout of the calls that wait (:meth:`socket.socket.settimeout`).

        ``connect``, ``accept``, ``send``, ``sendall``, ``recv`` and
        ``recv_into`` honour it (``bind`` has the node's request timeout);
        docs/concepts.md ("Socket options and timeouts") says how.

        Args:
            timeout: ``None``: wait as long as needed (the default); ``0``:
                non-blocking, a call that would have to wait raises
                :class:`BlockingIOError` (``EAGAIN``), what can be done at once
                is done; seconds > 0: a call raises :class:`TimeoutError`
                (``socket.timeout``) when they pass.

        Raises:
            TypeError: not ``None``, an ``int`` or a ``float``.
            ValueError: negative or NaN.
        """
        self._timeout = check_timeout(timeout)

    def gettimeout(self) -> float | None:
        """The timeout :meth:`settimeout` set: ``None`` (blocking), ``0.0`` or seconds."""
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """``setblocking(False)`` is ``settimeout(0)``, ``True`` is ``settimeout(None)``."""
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        """Whether the socket is blocking: its timeout is not ``0``."""
        return self._timeout != 0

    def fileno(self) -> int:
        """There is no OS file descriptor to give: always raises.

        Raises:
            io.UnsupportedOperation: :func:`no_descriptor_error`; also on the
                native fallback, whose OS sockets belong to the node.
        """
        raise no_descriptor_error()


def no_descriptor_error() -> io.UnsupportedOperation:
    """What ``fileno()`` raises: a socket object has no OS file descriptor.

    :class:`io.UnsupportedOperation` is both an :class:`OSError` and a
    :class:`ValueError`, what :meth:`io.IOBase.fileno` raises for a stream
    without one, so ``except OSError`` and ``except ValueError`` both catch it.

    Returns:
        The error (not raised).
    """
    return io.UnsupportedOperation(
        "a unisockets socket has no OS file descriptor: its bytes travel over a "
        "WebRTC data channel (or a socket the node owns); use its async calls, "
        "not select() or os.read()"
    )
