"""What the signaling session core says: its tickets and outputs, as data.

The vocabulary of :class:`~unisockets.protocol.session.SignalingSession`
(docs/sans-io.md): a :class:`Ticket` per request, the :class:`Failure` or
:class:`Connection` it settles with, and the outputs its inputs return, in
the order a driver carries them out: :class:`Send` messages on the current
WebSocket, wake a :class:`Settled` ticket's caller, :class:`Publish` an event
to the node, :class:`Deliver` a connection to an alias's accept queue, fail
the accepts of an :class:`AliasLost`, end a join (:class:`SessionJoined`,
:class:`JoinRefused`), connect again after a :class:`Retry`'s delay or
:class:`Stop`, and :class:`Log` a line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .events import Event, Request, RequestKind
from .messages import Message

__all__ = [
    "AliasLost",
    "Connection",
    "Deliver",
    "Failure",
    "FailureKind",
    "JoinRefused",
    "Log",
    "Output",
    "Publish",
    "Retry",
    "Send",
    "SessionJoined",
    "Settled",
    "Stop",
    "Ticket",
]


class FailureKind(enum.Enum):
    """How a request failed; each driver raises its own exception for each kind."""

    OS = "os"  #: the server refused, or a bad argument: an ``OSError`` with ``errno``
    TIMEOUT = "timeout"  #: no answer by the deadline: a ``TimeoutError``
    SIGNALING = "signaling"  #: the session ended or the client closed: a ``SignalingError``


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a request failed.

    Attributes:
        kind: a :class:`FailureKind`.
        text: a human-readable reason.
        errno: the :mod:`errno` value for ``FailureKind.OS`` (else 0).
    """

    kind: FailureKind
    text: str
    errno: int = 0


@dataclass(frozen=True, slots=True)
class Connection:
    """What a successful connect returns (docs/protocol.md, "Connect").

    Attributes:
        local_alias: our connection alias (ours to shut down when done).
        remote_alias: the alias we connected to.
        remote_id: the id of the node holding ``remote_alias``.
        session: the session the connection alias belongs to.
    """

    local_alias: str
    remote_alias: str
    remote_id: str
    session: int


class Ticket:
    """One bind, connect or shutdown call, from the request to its settlement.

    Attributes:
        kind: the request's :class:`~unisockets.protocol.events.RequestKind`.
        target: the alias to bind or shut down, or the remote alias to connect to.
        deadline: when :meth:`SignalingSession.expire` fails it, seconds.
        handle: whatever the driver wakes its caller with (set by the driver).
        request: the protocol request, once sent (None while it waits for a session).
        session: the session it was sent in, once sent.
        result: a :class:`Connection` for a settled connect, else None.
        error: a :class:`Failure` once it failed, else None.
    """

    __slots__ = (
        "_done",
        "deadline",
        "error",
        "handle",
        "internal",
        "kind",
        "release",
        "request",
        "result",
        "session",
        "target",
    )

    def __init__(
        self, kind: RequestKind, target: str, deadline: float, *, internal: bool = False
    ) -> None:
        self.kind = kind
        self.target = target
        self.deadline = deadline
        self.internal = internal  # a rebind after a reconnection: nobody waits for it
        self.release = False  # a bind shut down before it was sent: undo its success
        self.handle: object = None
        self.request: Request | None = None
        self.session: int | None = None
        self.result: Connection | None = None
        self.error: Failure | None = None
        self._done = False

    @property
    def done(self) -> bool:
        """Whether it is settled (a result, or an error)."""
        return self._done

    def __repr__(self) -> str:
        state = "error" if self.error else "done" if self._done else "waiting"
        return f"<Ticket {self.kind.value} {self.target} {state}>"


@dataclass(frozen=True, slots=True)
class Send:
    """Messages to send, in order, on the current WebSocket.

    Attributes:
        messages: the messages.
        ticket: the request they carry, if any: a driver that reports writes
            (``SignalingSession(deadline_from_write=True)``) calls
            :meth:`~unisockets.protocol.session.SignalingSession.written` with
            it once the last message is written. Not compared.
    """

    messages: tuple[Message, ...]
    ticket: Ticket | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Settled:
    """``ticket`` is settled (its ``result`` or ``error`` is set): wake its caller."""

    ticket: Ticket


@dataclass(frozen=True, slots=True)
class Publish:
    """An event for the node (one of :data:`TRANSPORT_EVENTS`)."""

    event: Event


@dataclass(frozen=True, slots=True)
class Deliver:
    """A connection to our bound ``alias`` from ``client_alias``: queue it for ``accept``."""

    alias: str
    client_alias: str


@dataclass(frozen=True, slots=True)
class AliasLost:
    """We no longer hold ``alias``: its waiting accepts fail with ``reason``."""

    alias: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionJoined:
    """The server acknowledged us as ``id``: the join is over."""

    id: str


@dataclass(frozen=True, slots=True)
class JoinRefused:
    """The server rejected the join: ``subnet`` is full."""

    subnet: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Connect again in ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Do not connect again: the client is closed (``reason``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Log:
    """A line for the driver's logger, at a :mod:`logging` ``level``."""

    level: int
    text: str


Output = (
    Send
    | Settled
    | Publish
    | Deliver
    | AliasLost
    | SessionJoined
    | JoinRefused
    | Retry
    | Stop
    | Log
)
