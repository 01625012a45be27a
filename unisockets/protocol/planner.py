"""How a node plans its connections, sans-IO: addresses, ports, labels, backlogs, releases.

Both node drivers, :mod:`unisockets.net.node` (trio) and
:mod:`unisockets.driver.node` (asyncio: browser tabs, native asyncio), do the I/O of a
connection (signaling requests, peer links, data channels) and ask a
:class:`ConnectionPlanner` for every decision around it, so that they decide
alike (docs/protocol.md, "Connect"; docs/concepts.md, "Nodes").

Decisions this module owns:

- **Addresses.** Which user-given ``(host, port)`` pairs are valid
  (``EINVAL`` otherwise, :func:`check_address`), and which hosts mean "this
  node": ``""``, ``"0.0.0.0"`` and ``"localhost"`` (:data:`ANY_HOSTS`,
  :func:`local_host`). Any other dotted IPv4 host is an overlay address as
  it is: ``127.0.0.1`` is not loopback on the overlay, as in the original.
- **Ephemeral ports.** ``bind`` to port 0 tries up to ``ephemeral_tries``
  ports drawn by the injected :class:`random.Random` from
  :data:`EPHEMERAL_PORTS` (IANA's dynamic range, RFC 6335), the next one
  after each ``EADDRINUSE`` (:meth:`ConnectionPlanner.plan_bind`,
  :meth:`BindPlan.retry`).
- **Labels and loopback.** A connection's data channel is labelled
  ``"<client alias>><bound alias>"`` on both sides (:func:`connection_label`);
  a connection whose peer is this node itself goes over an in-process pipe
  pair instead of WebRTC (:attr:`Route.loopback`).
- **Legacy peers** (docs/protocol.md, "Legacy peers"): an original node has
  one byte channel per pair of nodes, so one connection per legacy peer at a
  time: a second ``connect`` is refused (``ECONNREFUSED``), a second incoming
  connection is dropped.
- **Backlog admission.** A listener keeps up to ``backlog`` established
  connections waiting for ``accept``, like a kernel's accept queue; one that
  arrives while it is full (or closed) is refused: the driver closes it so
  that its client sees the stream end (:class:`AcceptQueue`).
- **Releases.** Which alias to release with signaling's ``shutdown``, and
  when: a bound alias when its listener or binding closes; a connection alias
  when its stream closes, but only within the signaling session that made it
  (after that session the server forgot it, and the same alias may belong to
  a newer connection); nothing once the node is closed. A ``bind`` of an alias
  whose release is under way waits for that release first, so closing and
  binding again at once works as with an OS socket.

It reads no clock and does no I/O; randomness comes from the caller's
:class:`random.Random`.
"""

from __future__ import annotations

import enum
import errno
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from .addresses import format_alias, is_id, parse_alias
from .socket_states import oserror

__all__ = [
    "ANY_HOSTS",
    "DEFAULT_BACKLOG",
    "EPHEMERAL_PORTS",
    "AcceptQueue",
    "BindPlan",
    "ConnectionPlanner",
    "Route",
    "Take",
    "check_address",
    "check_backlog",
    "check_port",
    "connection_label",
    "link_failure",
    "local_host",
]

#: Ports picked for ``bind`` to port 0 (IANA's dynamic range, RFC 6335).
EPHEMERAL_PORTS: Final = range(49152, 65536)
#: Default listen backlog (established connections waiting for ``accept``).
DEFAULT_BACKLOG: Final = 128
#: Hosts that name no particular address: this node's own.
ANY_HOSTS: Final = ("", "0.0.0.0", "localhost")

S = TypeVar("S")
L = TypeVar("L")
H = TypeVar("H")


def check_port(port: object) -> int:
    """Validate a user-given port.

    Returns:
        ``port``, an int in 0..65535.

    Raises:
        OSError: ``EINVAL`` for anything else (``bool`` included).
    """
    if type(port) is int and 0 <= port <= 65535:
        return port
    raise oserror(errno.EINVAL, f"bad port {port!r}")


def check_address(address: object) -> tuple[str, int]:
    """Validate a user-given socket address, like :mod:`socket`'s ``AF_INET`` pairs.

    Args:
        address: a ``(host, port)`` tuple (a list of two also works).

    Returns:
        The address as a ``(str, int)`` tuple.

    Raises:
        OSError: ``EINVAL`` unless a (dotted IPv4 host or one of
            :data:`ANY_HOSTS`, port 0..65535) pair.
    """
    if isinstance(address, tuple | list) and len(address) == 2:
        host, port = address
        if (
            type(port) is int
            and 0 <= port <= 65535
            and isinstance(host, str)
            and (host in ANY_HOSTS or is_id(host))
        ):
            return host, port
    raise oserror(errno.EINVAL, f"not an IPv4 (host, port) address: {address!r}")


def check_backlog(backlog: object) -> int:
    """Validate a ``listen`` backlog and return the queue length to use (at least 1).

    Raises:
        OSError: ``EINVAL`` unless an int >= 0.
    """
    if type(backlog) is not int or backlog < 0:
        raise oserror(errno.EINVAL, f"bad backlog {backlog!r}")
    return max(backlog, 1)


def local_host(host: str, own_address: str) -> str:
    """The overlay address ``host`` names: ``own_address`` for :data:`ANY_HOSTS`, else ``host``."""
    return own_address if host in ANY_HOSTS else host


def connection_label(client_alias: str, bound_alias: str) -> str:
    """The data channel label of one connection: ``"<client alias>><bound alias>"``.

    Both sides compute it: the connecting side from its connection alias and
    the alias it connected to, the accepting side from signaling's ``accept``
    (docs/protocol.md, "Connect").
    """
    return f"{client_alias}>{bound_alias}"


def link_failure(peer_id: str, reason: str, *, timed_out: bool) -> OSError:
    """The error of a ``connect`` whose peer link or data channel failed.

    Args:
        peer_id: the peer's id.
        reason: why (the innermost error's text, e.g. the ICE state).
        timed_out: the link or channel did not open in time (``ETIMEDOUT``);
            otherwise it broke (``ECONNRESET``).

    Returns:
        The error to raise, ``"link to <peer>: <reason>"``.
    """
    code = errno.ETIMEDOUT if timed_out else errno.ECONNRESET
    return oserror(code, f"link to {peer_id}: {reason}")


@dataclass(frozen=True, slots=True)
class Route:
    """Where one connection's data channel goes.

    Attributes:
        label: the data channel label (:func:`connection_label`).
        peer_id: the node at the other end.
        loopback: the peer is this node: use an in-process pipe pair.
    """

    label: str
    peer_id: str
    loopback: bool


@dataclass(frozen=True, slots=True)
class BindPlan(Generic[H]):
    """How to bind: the address and the ports to try in order.

    Attributes:
        host: the overlay address to bind on.
        ports: the ports to try, in order (one unless port 0 was asked for).
        wait_for: the handle of a release of the same alias under way (see
            :meth:`ConnectionPlanner.release`): wait for it first; or None.
    """

    host: str
    ports: tuple[int, ...]
    wait_for: H | None

    def retry(self, code: int | None) -> bool:
        """Whether a bind that failed with errno ``code`` goes on with the next port.

        Only ``EADDRINUSE`` of an ephemeral port does; any other failure is the
        caller's.
        """
        return code == errno.EADDRINUSE and len(self.ports) > 1

    def attempt(self) -> _Attempt:
        """A context manager around one port's bind: it swallows an error to retry.

        Use ``for port in plan.ports: with plan.attempt(): ...bind..., return``
        then ``raise plan.exhausted()``; an :class:`OSError` for which
        :meth:`retry` is true goes on with the next port, any other error
        propagates.
        """
        return _Attempt(self.retry)

    def exhausted(self) -> OSError:
        """The error when every port was taken: ``EADDRINUSE``."""
        return oserror(errno.EADDRINUSE, "no free ephemeral port found")


class _Attempt:
    """What :meth:`BindPlan.attempt` returns."""

    __slots__ = ("_retry",)

    def __init__(self, retry: Callable[[int | None], bool]) -> None:
        self._retry = retry

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> bool:
        return isinstance(error, OSError) and self._retry(error.errno)


class ConnectionPlanner(Generic[L, H]):
    """The decisions of one node about its connections (see the module docstring).

    ``L`` is the driver's legacy connection object and ``H`` its handle to
    wake the binds waiting for a release (a ``trio.Event``, an
    ``asyncio.Event``); the planner only keeps and hands them back.

    Args:
        rng: where ephemeral ports come from (inject a seeded one in tests).
        ephemeral_tries: how many ports a ``bind`` to port 0 tries, >= 1.

    Raises:
        ValueError: ``ephemeral_tries`` < 1 or larger than the range.
    """

    def __init__(self, rng: random.Random, *, ephemeral_tries: int = 64) -> None:
        if not 1 <= ephemeral_tries <= len(EPHEMERAL_PORTS):
            raise ValueError(f"bad ephemeral_tries {ephemeral_tries!r}")
        self._rng = rng
        self._tries = ephemeral_tries
        #: alias -> [the handle of its release under way, how many are under way]
        self._releasing: dict[str, tuple[H, int]] = {}
        self._legacy: dict[str, L] = {}
        self.closed = False

    # --- bind ------------------------------------------------------------------------------

    def plan_bind(self, port: object, host: str, own_address: str) -> BindPlan[H]:
        """Plan a ``bind`` of ``(host, port)`` on this node.

        Args:
            port: the user's port (0: any free one).
            host: the user's host, already checked (:func:`check_address`).
            own_address: this node's id.

        Returns:
            The plan; try ``plan.ports`` in order, after waiting for
            ``plan.wait_for`` if any.

        Raises:
            OSError: ``EINVAL`` for a bad port.
        """
        address = local_host(host, own_address)
        number = check_port(port)
        if number:
            under_way = self._releasing.get(format_alias(address, number))
            return BindPlan(address, (number,), None if under_way is None else under_way[0])
        ports = tuple(self._rng.sample(EPHEMERAL_PORTS, self._tries))
        return BindPlan(address, ports, None)

    # --- connect ---------------------------------------------------------------------------

    def plan_connect(self, address: object, own_address: str) -> str:
        """Check a ``connect`` and return the alias to ask signaling for.

        Raises:
            OSError: ``EINVAL`` for a bad address; ``ECONNREFUSED`` when it
                is on a legacy peer that has a connection with us already.
        """
        host, port = check_address(address)
        target = local_host(host, own_address)
        self.check_legacy_free(target)
        return format_alias(target, port)

    def outgoing(
        self, local_alias: str, remote_alias: str, peer_id: str, own_address: str
    ) -> Route:
        """The route of a connection we made (signaling's ``connect`` answer)."""
        label = connection_label(local_alias, remote_alias)
        return Route(label, peer_id, peer_id == own_address)

    def incoming(self, client_alias: str, bound_alias: str, own_address: str) -> Route:
        """The route of a connection signaling announced to our listener on ``bound_alias``."""
        peer_id = parse_alias(client_alias)[0]
        return Route(connection_label(client_alias, bound_alias), peer_id, peer_id == own_address)

    # --- legacy peers ----------------------------------------------------------------------

    def check_legacy_free(self, peer_id: str) -> None:
        """Refuse a second connection with a legacy peer (their bytes would mix).

        Raises:
            ConnectionRefusedError: ``ECONNREFUSED``: ``peer_id`` is a legacy
                node with a connection to this node already.
        """
        if peer_id in self._legacy:
            raise ConnectionRefusedError(
                errno.ECONNREFUSED,
                f"{peer_id} is a legacy unisockets node with a connection to this node "
                "already: it has one byte channel per peer, a second connection would "
                "mix their bytes",
            )

    def legacy_opened(self, peer_id: str, connection: L) -> bool:
        """Record a connection over a legacy peer's channel.

        Returns:
            False when the peer has one already: drop the new one (an incoming
            one; signaling told the peer it is connected, nothing on its wire
            can say otherwise).
        """
        if peer_id in self._legacy:
            return False
        self._legacy[peer_id] = connection
        return True

    def legacy_closed(self, peer_id: str, connection: L) -> None:
        """Forget a legacy connection that closed (a newer one of the peer stays)."""
        if peer_id in self._legacy and self._legacy[peer_id] is connection:
            del self._legacy[peer_id]

    def legacy_connection(self, peer_id: str) -> L | None:
        """The open connection with legacy peer ``peer_id``, or None."""
        return self._legacy.get(peer_id)

    # --- releases --------------------------------------------------------------------------

    def release(
        self, alias: str, handle: H, *, session: int | None, current_session: int
    ) -> H | None:
        """Decide whether to send ``shutdown`` for an alias we stopped using.

        Args:
            alias: the alias.
            handle: what wakes the waiters of this release, if it is the
                first one of ``alias`` under way.
            session: for a connection alias, the signaling session that made
                it; None for a bound alias.
            current_session: the signaling session now.

        Returns:
            The handle to wait on (``handle``, or that of a release of the
            alias already under way): send the shutdown, then call
            :meth:`released`; a ``bind`` of the alias waits until then. None:
            nothing to send (the node is closed, or the connection alias
            ended with its session).
        """
        if self.closed or (session is not None and session != current_session):
            return None
        first, count = self._releasing.get(alias, (handle, 0))
        self._releasing[alias] = (first, count + 1)
        return first

    def released(self, alias: str) -> H | None:
        """A shutdown of ``alias`` is done (or failed, or was not sent).

        Returns:
            The handle to wake when it was the last release of ``alias``
            under way (binds of it may go ahead), else None.
        """
        under_way = self._releasing.get(alias)
        if under_way is None:
            return None
        handle, count = under_way
        if count > 1:
            self._releasing[alias] = (handle, count - 1)
            return None
        del self._releasing[alias]
        return handle

    def releasing(self, alias: str) -> bool:
        """Whether a release of ``alias`` is under way."""
        return alias in self._releasing

    def close(self) -> list[H]:
        """The node closes: nothing more is released.

        Returns:
            The handles of the releases under way: wake them (the binds
            waiting for them fail on the closed node).
        """
        self.closed = True
        pending = [handle for handle, _ in self._releasing.values()]
        self._releasing.clear()
        return pending


class Take(enum.Enum):
    """What :meth:`AcceptQueue.take` gives instead of a connection."""

    WAIT = "wait"  # nothing queued: wait for :meth:`AcceptQueue.offer` or the end
    CLOSED = "closed"  # the listener was closed
    FAILED = "failed"  # listening failed: raise :attr:`AcceptQueue.failure`


class AcceptQueue(Generic[S]):
    """A listener's queue of established connections waiting for ``accept``.

    Like a kernel's accept queue: a connection that arrives while nobody is in
    ``accept`` waits (the original unisockets lost it), up to ``backlog`` of
    them; one more is refused (the driver closes it, so that its client sees
    the stream end instead of waiting forever).

    Args:
        backlog: connections that may wait, >= 1.

    Raises:
        ValueError: ``backlog`` < 1.
    """

    def __init__(self, backlog: int) -> None:
        if type(backlog) is not int or backlog < 1:
            raise ValueError(f"bad backlog {backlog!r}")
        self.backlog = backlog
        self._ready: deque[S] = deque()
        self.closed = False
        self.failure: BaseException | None = None

    def __len__(self) -> int:
        return len(self._ready)

    def offer(self, connection: S) -> bool:
        """Queue an established connection.

        Returns:
            False when the queue is full or closed: close ``connection``.
        """
        if self.closed or len(self._ready) >= self.backlog:
            return False
        self._ready.append(connection)
        return True

    def take(self) -> S | Take:
        """The next connection for ``accept``, or why there is none.

        A closed queue gives :attr:`Take.CLOSED`; a failed one gives its queued
        connections first, then :attr:`Take.FAILED`.
        """
        if self.closed:
            return Take.CLOSED
        if self._ready:
            return self._ready.popleft()
        return Take.WAIT if self.failure is None else Take.FAILED

    def fail(self, error: BaseException) -> None:
        """No more connections can arrive (the alias was lost); the first error stays."""
        if self.failure is None:
            self.failure = error

    def close(self) -> list[S]:
        """Close the queue (idempotent).

        Returns:
            The connections never accepted: close them.
        """
        self.closed = True
        left = list(self._ready)
        self._ready.clear()
        return left
