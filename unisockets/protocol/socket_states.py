"""The Berkeley socket state machine behind both socket objects, as data.

:class:`unisockets.net.Socket` (trio) and :class:`unisockets.browser.Socket`
(asyncio on Pyodide) drive one :class:`SocketStateMachine` each and never
decide on their own which call is legal or which errno an illegal one gets.
Two rules, as in h11's ``_state.py``:

1. Every state change of a socket object is a pair of :data:`TRANSITIONS`;
   every other ``(state, call)`` pair is a :data:`REFUSALS` entry naming the
   errno (from :mod:`errno`) and the message of the :class:`OSError` it
   raises. The two tables together cover every pair of a state and a call exactly once.
2. The tables know no streams, listeners or event loops: the drivers do the
   I/O and report how it ended (``bind done``, ``connect failed``, ...).

The rules, each from POSIX.1-2017 (the System Interfaces volume):

- A closed socket refuses every call with ``EBADF`` (close(2), and each
  call's "*socket* is not a valid file descriptor"), except ``close``, which
  is idempotent as in :mod:`socket`.
- ``getsockname``, ``setsockopt`` and ``getsockopt`` work in every open state
  (which options exist and their values: :mod:`.socket_options`).
- ``bind`` only on a fresh socket; else ``EINVAL`` (bind(2): "the socket is
  already bound to an address").
- ``listen`` only on a bound socket (a second ``listen`` is allowed and
  changes nothing); else ``EINVAL`` (listen(2): "the socket is already
  connected", or not bound where the protocol cannot listen unbound).
- ``accept`` only on a listening socket; else ``EINVAL`` (accept(2): "the
  socket is not accepting connections").
- ``connect`` only on a fresh socket: ``EISCONN`` on a connected or
  connecting one (connect(2): "the specified socket is connection-mode and
  is already connected"; a second connect while one is in progress gets the
  same, as the calls here are blocking), ``EINVAL`` on a bound or listening
  one (these sockets are unisockets aliases that cannot also connect).
- ``getpeername``, ``send``, ``recv`` and ``shutdown`` only on a connected
  socket; else ``ENOTCONN`` (getpeername(2), send(2), recv(2), shutdown(2):
  "the socket is not connected").
- After ``shutdown(SHUT_WR)`` ``send`` raises ``EPIPE`` (send(2): "the socket
  is shut down for writing"); after ``shutdown(SHUT_RD)`` ``recv`` returns
  end of stream (shutdown(2): "further receptions shall be disallowed").
  A ``how`` other than ``SHUT_RD``, ``SHUT_WR``, ``SHUT_RDWR`` is ``EINVAL``
  (shutdown(2)), as are a ``recv`` size below one and a non-integer backlog.

:data:`SOCKET_MACHINE` is the table in the form
:func:`unisockets.protocol.server_states.render_mermaid` draws for the docs.
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from .errors import LocalProtocolError
from .server_states import StateMachine

__all__ = [
    "CALLS",
    "OUTCOMES",
    "REFUSALS",
    "SHUT_RD",
    "SHUT_RDWR",
    "SHUT_WR",
    "SOCKET_MACHINE",
    "TRANSITIONS",
    "Refusal",
    "SocketInput",
    "SocketState",
    "SocketStateMachine",
    "innermost_reason",
    "check_backlog",
    "check_bufsize",
    "check_local_host",
    "oserror",
]

#: ``shutdown`` modes: the values of :data:`socket.SHUT_RD`, ``SHUT_WR`` and
#: ``SHUT_RDWR`` on every platform CPython and Pyodide run on (0, 1, 2); this
#: module cannot import :mod:`socket` (sans-IO), a test checks they agree.
SHUT_RD: Final = 0
SHUT_WR: Final = 1
SHUT_RDWR: Final = 2


class SocketState(enum.Enum):
    """The state of one stream socket object."""

    #: Created, neither bound nor connected.
    FRESH = "fresh"
    #: ``bind`` is waiting for the node (overlay: for the signaling server).
    BINDING = "binding"
    #: Bound to an address of this node, not listening.
    BOUND = "bound"
    #: Listening: ``accept`` may be called.
    LISTENING = "listening"
    #: ``connect`` is in progress.
    CONNECTING = "connecting"
    #: Connected (by ``connect``, or returned by ``accept``); see the shutdown flags.
    CONNECTED = "connected"
    #: Closed: every call but ``close`` raises ``EBADF``.
    CLOSED = "closed"


class SocketInput(enum.Enum):
    """What can happen to a socket: a call of its user, or how a driver's I/O ended."""

    BIND = "bind"
    LISTEN = "listen"
    ACCEPT = "accept"
    CONNECT = "connect"
    GETSOCKNAME = "getsockname"
    GETPEERNAME = "getpeername"
    #: ``setsockopt`` / ``getsockopt`` (the values: :mod:`.socket_options`).
    OPTION = "setsockopt/getsockopt"
    SEND = "send"
    RECV = "recv"
    SHUTDOWN = "shutdown"
    CLOSE = "close"
    #: The node bound the address (reported by the driver after ``bind``).
    BIND_DONE = "bind done"
    #: Binding failed (``EADDRINUSE``, cancelled, ...); the socket is fresh again.
    BIND_FAILED = "bind failed"
    #: The connection is established.
    CONNECT_DONE = "connect done"
    #: Connecting failed (``ECONNREFUSED``, cancelled, ...); the socket is fresh again.
    CONNECT_FAILED = "connect failed"


_S = SocketState
_I = SocketInput

#: The inputs a user calls; each is either a transition or a refusal in every state.
CALLS: Final = frozenset(
    {_I.BIND, _I.LISTEN, _I.ACCEPT, _I.CONNECT, _I.GETSOCKNAME, _I.GETPEERNAME, _I.OPTION}
    | {_I.SEND, _I.RECV, _I.SHUTDOWN, _I.CLOSE}
)
#: The inputs a driver reports; one outside its table pair is a driver bug
#: (:class:`~unisockets.protocol.errors.LocalProtocolError`), except in ``CLOSED``.
OUTCOMES: Final = frozenset(set(_I) - CALLS)

_OPEN = tuple(state for state in _S if state is not _S.CLOSED)

#: ``(state, input) -> next state``: every legal pair.
TRANSITIONS: Final[Mapping[tuple[SocketState, SocketInput], SocketState]] = MappingProxyType(
    {
        (_S.FRESH, _I.BIND): _S.BINDING,
        (_S.BINDING, _I.BIND_DONE): _S.BOUND,
        (_S.BINDING, _I.BIND_FAILED): _S.FRESH,
        (_S.BOUND, _I.LISTEN): _S.LISTENING,
        (_S.LISTENING, _I.LISTEN): _S.LISTENING,
        (_S.LISTENING, _I.ACCEPT): _S.LISTENING,
        (_S.FRESH, _I.CONNECT): _S.CONNECTING,
        (_S.CONNECTING, _I.CONNECT_DONE): _S.CONNECTED,
        (_S.CONNECTING, _I.CONNECT_FAILED): _S.FRESH,
        **{
            (_S.CONNECTED, call): _S.CONNECTED
            for call in (_I.GETPEERNAME, _I.SEND, _I.RECV, _I.SHUTDOWN)
        },
        **{(state, call): state for state in _OPEN for call in (_I.GETSOCKNAME, _I.OPTION)},
        **{(state, _I.CLOSE): _S.CLOSED for state in _S},
        # I/O that ends after the socket was closed changes nothing.
        (_S.CLOSED, _I.BIND_FAILED): _S.CLOSED,
        (_S.CLOSED, _I.CONNECT_FAILED): _S.CLOSED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why a call is illegal in a state: the :class:`OSError` it raises.

    Attributes:
        errno: an :mod:`errno` value, e.g. ``errno.EINVAL``.
        detail: appended to the system's message for ``errno``, or ``None``.
    """

    errno: int
    detail: str | None = None

    def error(self) -> OSError:
        """Build the error (not raised): see :func:`oserror`."""
        return oserror(self.errno, self.detail)


_EBADF = Refusal(errno=errno.EBADF)
_ENOTCONN = Refusal(errno=errno.ENOTCONN)
_BIND_AGAIN = Refusal(errno=errno.EINVAL, detail="socket already bound or connected")
_LISTEN_UNBOUND = Refusal(errno=errno.EINVAL, detail="listen needs a bound, unconnected socket")
_NOT_LISTENING = Refusal(errno=errno.EINVAL, detail="accept needs a listening socket")
_CONNECT_BOUND = Refusal(errno=errno.EINVAL, detail="connect on a bound or listening socket")


def _refusal(state: SocketState, call: SocketInput) -> Refusal:
    if state is _S.CLOSED:
        return _EBADF
    if call is _I.BIND:
        return _BIND_AGAIN
    if call is _I.LISTEN:
        return _LISTEN_UNBOUND
    if call is _I.ACCEPT:
        return _NOT_LISTENING
    if call is _I.CONNECT:
        connected = state in (_S.CONNECTING, _S.CONNECTED)
        return Refusal(errno=errno.EISCONN) if connected else _CONNECT_BOUND
    return _ENOTCONN  # getpeername, send, recv, shutdown


#: ``(state, call) -> refusal``: every pair of a user call that :data:`TRANSITIONS` lacks.
REFUSALS: Final[Mapping[tuple[SocketState, SocketInput], Refusal]] = MappingProxyType(
    {
        (state, call): _refusal(state, call)
        for state in _S
        for call in _I
        if call in CALLS and (state, call) not in TRANSITIONS
    }
    | {(_S.CLOSED, _I.BIND_DONE): _EBADF, (_S.CLOSED, _I.CONNECT_DONE): _EBADF}
)

_FAILURES: Final = {_I.BIND: _I.BIND_FAILED, _I.CONNECT: _I.CONNECT_FAILED}

#: The table as the docs draw it: a socket starts ``FRESH`` (``accept`` makes ``CONNECTED`` ones).
SOCKET_MACHINE: Final = StateMachine(
    name="Socket object (unisockets.net.Socket, unisockets.browser.Socket)",
    transitions=TRANSITIONS,
    initial=SocketState.FRESH,
    start_input=None,
    final=frozenset({SocketState.CLOSED}),
)


def oserror(code: int, detail: str | None = None) -> OSError:
    """Build an :class:`OSError` with a real errno and the system's message for it.

    ``OSError(errno.EPIPE, ...)`` is a :class:`BrokenPipeError`, and so on, as
    the OS's sockets raise them.

    Args:
        code: an :mod:`errno` value.
        detail: appended to the system message after ``": "``, or ``None``.

    Returns:
        The error (not raised).
    """
    return OSError(code, f"{os.strerror(code)}: {detail}" if detail else os.strerror(code))


def innermost_reason(error: BaseException) -> str:
    """The text of the deepest error in ``error``'s ``__cause__`` chain.

    A failed connect is reported as an :class:`OSError` whose message ends
    with the reason the link failed (for example why ICE could not connect),
    however many layers wrapped it.

    Args:
        error: the error caught.

    Returns:
        ``str()`` of the last error of the cause chain that has a message
        (``error``'s own if none has).
    """
    reason = str(error)
    seen = {id(error)}
    cause = error.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if str(cause):
            reason = str(cause)
        cause = cause.__cause__
    return reason


def check_backlog(backlog: object) -> int:
    """Validate ``listen``'s backlog (listen(2)).

    Args:
        backlog: what the user passed.

    Returns:
        ``backlog``, an ``int`` (any value: a driver clamps it as it needs).

    Raises:
        OSError: ``EINVAL`` when it is not an ``int`` (``bool`` neither).
    """
    if type(backlog) is not int:
        raise oserror(errno.EINVAL, f"bad backlog {backlog!r}")
    return backlog


def check_bufsize(bufsize: object) -> int:
    """Validate ``recv``'s size (recv(2)).

    Args:
        bufsize: the most bytes the user wants.

    Returns:
        ``bufsize``, an ``int`` of at least 1.

    Raises:
        OSError: ``EINVAL`` when it is not an ``int`` of at least 1.
    """
    if type(bufsize) is not int or bufsize < 1:
        raise oserror(errno.EINVAL, f"bad bufsize {bufsize!r}")
    return bufsize


def check_local_host(host: str, own_address: str) -> None:
    """Check that ``bind`` names this node (bind(2): ``EADDRNOTAVAIL``).

    Args:
        host: the host of the address to bind, already validated as a dotted
            IPv4 address, ``""`` or ``"localhost"``.
        own_address: the node's own address, e.g. ``"10.0.0.2"``.

    Raises:
        OSError: ``EADDRNOTAVAIL`` unless ``host`` is ``""``, ``"0.0.0.0"``,
            ``"localhost"`` or ``own_address``.
    """
    if host not in ("", "0.0.0.0", "localhost", own_address):
        raise oserror(errno.EADDRNOTAVAIL, f"{host} is not this node's address")


class SocketStateMachine:
    """The state of one socket object, changed only by :data:`TRANSITIONS`.

    A driver calls :meth:`check` before any I/O a call needs, :meth:`handle`
    when the state changes, and reports how the I/O ended with
    :meth:`handle` (``BIND_DONE``, ``CONNECT_FAILED``, ...).

    Args:
        connected: start ``CONNECTED`` (a socket returned by ``accept``)
            instead of ``FRESH``.
    """

    __slots__ = ("_read_shut", "_state", "_write_shut")

    def __init__(self, *, connected: bool = False) -> None:
        self._state = SocketState.CONNECTED if connected else SocketState.FRESH
        self._read_shut = False
        self._write_shut = False

    @property
    def state(self) -> SocketState:
        """The current state."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether the socket is ``CLOSED``."""
        return self._state is SocketState.CLOSED

    @property
    def read_shut(self) -> bool:
        """Whether ``shutdown(SHUT_RD or SHUT_RDWR)`` was called: ``recv`` returns EOF."""
        return self._read_shut

    @property
    def write_shut(self) -> bool:
        """Whether ``shutdown(SHUT_WR or SHUT_RDWR)`` was called: ``send`` raises ``EPIPE``."""
        return self._write_shut

    def check(self, call: SocketInput) -> SocketState:
        """Whether ``call`` is legal now, without changing anything.

        Args:
            call: the input.

        Returns:
            The state :meth:`handle` would move to.

        Raises:
            OSError: the pair's :class:`Refusal` (``EBADF``, ``EINVAL``,
                ``EISCONN``, ``ENOTCONN``), or ``EPIPE`` for ``SEND`` after
                ``shutdown(SHUT_WR)``.
            LocalProtocolError: an outcome the driver cannot have seen in this
                state (a bug in the driver, not the user's fault).
        """
        target = TRANSITIONS.get((self._state, call))
        if target is None:
            refusal = REFUSALS.get((self._state, call))
            if refusal is None:
                raise LocalProtocolError(f"{call.value!r} reported in state {self._state.value}")
            raise refusal.error()
        if call is SocketInput.SEND and self._write_shut:
            raise oserror(errno.EPIPE)
        return target

    def handle(self, call: SocketInput) -> SocketState:
        """Apply ``call``: move to the next state, or raise and change nothing.

        Args:
            call: the input.

        Returns:
            The new state.

        Raises:
            OSError: as :meth:`check`.
            LocalProtocolError: as :meth:`check`.
        """
        self._state = self.check(call)
        return self._state

    @contextmanager
    def attempt(self, call: SocketInput) -> Iterator[None]:
        """Around the I/O of a ``bind`` or ``connect``: the pending state and its failure.

        On entry, :meth:`handle` ``call`` (``FRESH`` becomes ``BINDING`` or
        ``CONNECTING``). If the block raises anything (an :class:`OSError`
        such as ``EADDRINUSE`` or ``ECONNREFUSED``, a cancellation), the
        socket is ``FRESH`` again (or stays ``CLOSED``) and the exception
        propagates unchanged. After the block the driver reports success with
        :meth:`handle` ``BIND_DONE`` / ``CONNECT_DONE``, which raises
        ``EBADF`` if the socket was closed meanwhile (the driver then releases
        what the I/O gave it).

        Args:
            call: ``SocketInput.BIND`` or ``SocketInput.CONNECT``.

        Yields:
            Nothing.

        Raises:
            OSError: the refusal of ``call`` in the current state, on entry.
            ValueError: ``call`` is neither ``BIND`` nor ``CONNECT``.
        """
        failed = _FAILURES.get(call)
        if failed is None:
            raise ValueError(f"only bind and connect have an outcome, not {call.value}")
        self.handle(call)
        try:
            yield
        except BaseException:
            self.handle(failed)
            raise

    def shutdown(self, how: object) -> bool:
        """Shut down one or both directions (shutdown(2)).

        Args:
            how: ``SHUT_RD``, ``SHUT_WR`` or ``SHUT_RDWR``.

        Returns:
            Whether the driver must now send end of stream to the peer: true
            the first time the writing side is shut down, false after.

        Raises:
            OSError: ``EBADF`` (closed), ``ENOTCONN`` (not connected),
                ``EINVAL`` (bad ``how``), checked in that order.
        """
        self.check(SocketInput.SHUTDOWN)
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise oserror(errno.EINVAL, f"bad shutdown mode {how!r}")
        if how in (SHUT_RD, SHUT_RDWR):
            self._read_shut = True
        if how in (SHUT_WR, SHUT_RDWR) and not self._write_shut:
            self._write_shut = True
            return True
        return False

    def close(self) -> bool:
        """Close the socket (close(2)); idempotent.

        Returns:
            Whether this call closed it (false when it was closed already).
        """
        was_open = not self.closed
        self.handle(SocketInput.CLOSE)
        return was_open

    def __repr__(self) -> str:
        return f"<SocketStateMachine {self._state.value}>"
