"""What the signaling client state machine tells its driver (docs/protocol.md, "Flows").

:class:`~unisockets.protocol.client.SignalingClientProtocol` turns the
server's messages into these events. Every event is a frozen, slotted,
keyword-only dataclass named in the past tense; constructing one validates
its fields (ids are dotted IPv4 strings, aliases ``ip:port``), so an invalid
event cannot exist.

Three groups:

- *Membership and peers*: :class:`Joined`, :class:`JoinRejected`,
  :class:`PeerGreeted`, :class:`OfferReceived`, :class:`AnswerReceived`,
  :class:`CandidateReceived`, :class:`PeerLeft`, and the reconnection events
  :class:`Disconnected`, :class:`IdChanged`, :class:`Reconnected`.
- *Answers to requests*: each names the :class:`Request` it answers.
  Every request ends with exactly one of :class:`BindSucceeded`,
  :class:`BindRejected`, :class:`ConnectSucceeded`, :class:`ConnectRefused`,
  :class:`ShutdownSucceeded`, :class:`ShutdownRejected` or
  :class:`RequestFailed`, unless it was cancelled first; a cancelled request
  that succeeds after all yields :class:`CancelledRequestSucceeded` instead,
  carrying the message that undoes it.
- *The alias table*: :class:`IncomingConnection`, :class:`AliasAdded`,
  :class:`AliasRemoved`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

from .addresses import is_alias, is_id, is_subnet
from .errors import LocalProtocolError
from .messages import MAX_CONNECTION_ID_LENGTH, Shutdown

__all__ = [
    "AliasAdded",
    "AliasRemoved",
    "AnswerReceived",
    "BindRejected",
    "BindSucceeded",
    "CancelledRequestSucceeded",
    "CandidateReceived",
    "ConnectRefused",
    "ConnectSucceeded",
    "Disconnected",
    "Event",
    "IdChanged",
    "IncomingConnection",
    "JoinRejected",
    "Joined",
    "OfferReceived",
    "PeerGreeted",
    "PeerLeft",
    "Reconnected",
    "Request",
    "RequestFailed",
    "RequestKind",
    "ShutdownRejected",
    "ShutdownSucceeded",
]


def _is_text(value: object) -> bool:
    return type(value) is str and len(value) > 0


def _is_reason(value: object) -> bool:
    return type(value) is str


_VALIDATORS: Final[dict[str, Callable[[object], bool]]] = {
    "id": is_id,
    "alias": is_alias,
    "subnet": is_subnet,
    "text": _is_text,
    "reason": _is_reason,
}


#: A field check: ``check(value, field_name)`` raises LocalProtocolError for a bad value.
_Check = Callable[[object, str], None]


def _kind_check(kind: str, is_valid: Callable[[object], bool]) -> _Check:
    """The check of fields of ``kind``: raise :class:`LocalProtocolError` unless ``is_valid``."""

    def check(value: object, name: str) -> None:
        if not is_valid(value):
            raise LocalProtocolError(f"{name} must be a valid {kind}, got {value!r:.80}")

    return check


#: The check of each field kind.
_CHECKS_BY_KIND: Final[dict[str, _Check]] = {
    kind: _kind_check(kind, is_valid) for kind, is_valid in _VALIDATORS.items()
}


def _checked(kind: str) -> Any:
    """A field validated as ``kind`` ("id", "alias", "subnet", "text", "reason")."""
    return dataclasses.field(metadata={"kind": kind})


_T = TypeVar("_T", bound="_Validated")


def _validated(cls: type[_T]) -> type[_T]:
    """Class decorator (above ``@dataclass``): give ``cls`` its table of field checks.

    The table, ``(field name, check)`` for the fields that carry a ``kind``, in
    field order, is built once here, so that constructing an event runs only
    the checks (no :func:`dataclasses.fields` per event).
    """
    cls._CHECKS = tuple(
        (f.name, _CHECKS_BY_KIND[f.metadata["kind"]])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if "kind" in f.metadata
    )
    return cls


class _Validated:
    """Mixin: validates the fields that carry a ``kind`` after construction.

    Every subclass is decorated with :func:`_validated`, which builds ``_CHECKS``.
    """

    __slots__ = ()
    _CHECKS: ClassVar[tuple[tuple[str, _Check], ...]]

    def __post_init__(self) -> None:
        for name, check in self._CHECKS:
            check(getattr(self, name), name)


class RequestKind(enum.Enum):
    """What a :class:`Request` asks the server for."""

    BIND = "bind"
    CONNECT = "connect"
    SHUTDOWN = "shutdown"


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Request(_Validated):
    """A handle on one request to the server, as returned by the client's request methods.

    Requests compare by value; ``number`` makes each one unique within one
    :class:`~unisockets.protocol.client.SignalingClientProtocol`.

    Attributes:
        kind: bind, connect or shutdown.
        alias: the alias bound or shut down, or the remote alias connected to.
        number: a sequence number, 1 for the first request of a client object.
        connection_id: the ``clientConnectionId`` of a connect, else ``None``.
    """

    kind: RequestKind
    alias: str = _checked("alias")
    number: int
    connection_id: str | None = None

    def __post_init__(self) -> None:
        _Validated.__post_init__(self)
        if not isinstance(self.kind, RequestKind):
            raise LocalProtocolError(f"kind must be a RequestKind, got {self.kind!r:.80}")
        if type(self.number) is not int or self.number < 1:
            raise LocalProtocolError(f"number must be a positive int, got {self.number!r:.80}")
        has_id = self.connection_id is not None
        if has_id != (self.kind is RequestKind.CONNECT):
            raise LocalProtocolError("connection_id is required for connects and only for them")
        if has_id and not (
            type(self.connection_id) is str
            and 0 < len(self.connection_id) <= MAX_CONNECTION_ID_LENGTH
        ):
            raise LocalProtocolError(f"invalid connection_id {self.connection_id!r:.80}")


# --- membership and peers -------------------------------------------------------------


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Joined(_Validated):
    """The server acknowledged our knock: we are node ``id`` (e.g. ``"10.0.0.1"``)."""

    id: str = _checked("id")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRejected(_Validated):
    """The server rejected our knock because ``subnet`` is full."""

    subnet: str = _checked("subnet")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class PeerGreeted(_Validated):
    """Node ``peer_id`` joined after us; we are the offerer and should send it an offer."""

    peer_id: str = _checked("id")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class OfferReceived(_Validated):
    """Node ``peer_id`` (the offerer) sent us the SDP offer ``sdp``; we should answer."""

    peer_id: str = _checked("id")
    sdp: str = _checked("text")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerReceived(_Validated):
    """Node ``peer_id`` answered our offer with the SDP ``sdp``."""

    peer_id: str = _checked("id")
    sdp: str = _checked("text")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateReceived(_Validated):
    """Node ``peer_id`` trickled an ICE candidate (a JSON RTCIceCandidateInit string)."""

    peer_id: str = _checked("id")
    candidate: str = _checked("text")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLeft(_Validated):
    """Node ``peer_id`` left the network (``goodbye``); close its peer connection."""

    peer_id: str = _checked("id")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(_Validated):
    """The connection to the server was lost while we were node ``id``.

    Every alias we held is gone on the server; pending requests failed
    (:class:`RequestFailed`). Peer links may survive: they do not go through
    the server.
    """

    id: str = _checked("id")
    reason: str = _checked("reason")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class IdChanged(_Validated):
    """We joined again after a :class:`Disconnected`, but under a new id.

    Aliases of ``old_id`` cannot be bound again; peers know us by ``new_id``
    from now on.
    """

    old_id: str = _checked("id")
    new_id: str = _checked("id")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnected(_Validated):
    """We joined again after a :class:`Disconnected`, as node ``id``.

    Follows :class:`Joined` (and :class:`IdChanged` when the id differs).
    """

    id: str = _checked("id")


# --- answers to requests ----------------------------------------------------------------


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class BindSucceeded(_Validated):
    """``request`` bound ``alias`` for us."""

    request: Request
    alias: str = _checked("alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class BindRejected(_Validated):
    """``request`` could not bind ``alias``: somebody (perhaps we) holds it.

    ``member_address`` is true when the server said the alias is on another
    member's id (``isMemberAddress``, ours: docs/protocol.md, "Bind and
    listen"); false when it said nothing (an original server, or a taken alias).
    """

    request: Request
    alias: str = _checked("alias")
    member_address: bool = False


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectSucceeded(_Validated):
    """``request`` connected our new connection alias ``local_alias`` to ``remote_alias``.

    ``remote_id`` is the id of the node holding ``remote_alias``: the alias's
    own address, or another node's id when the alias is on an address that
    node claimed (docs/protocol.md, "Bind and listen"), such as ``127.0.0.1:1234``.
    """

    request: Request
    local_alias: str = _checked("alias")
    remote_alias: str = _checked("alias")
    remote_id: str = _checked("id")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectRefused(_Validated):
    """``request`` was refused: nobody accepts on ``remote_alias``."""

    request: Request
    remote_alias: str = _checked("alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownSucceeded(_Validated):
    """``request`` released our alias ``alias``."""

    request: Request
    alias: str = _checked("alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownRejected(_Validated):
    """``request`` could not release ``alias``: the server says it is not ours."""

    request: Request
    alias: str = _checked("alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFailed(_Validated):
    """``request`` got no answer and never will (the connection was lost)."""

    request: Request
    reason: str = _checked("reason")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class CancelledRequestSucceeded(_Validated):
    """A request we cancelled succeeded after all and left us holding ``alias``.

    The client has already registered ``undo`` (a :class:`Shutdown` of
    ``alias``) as a request of its own and absorbs its answer; the driver
    only has to send it.
    """

    request: Request
    alias: str = _checked("alias")
    undo: Shutdown


# --- the alias table --------------------------------------------------------------------


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingConnection(_Validated):
    """``client_alias`` connected to our bound alias ``bound_alias`` (``accept``)."""

    bound_alias: str = _checked("alias")
    client_alias: str = _checked("alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class AliasAdded(_Validated):
    """``owner_id`` now holds ``alias`` (a bind, or a connection to us)."""

    owner_id: str = _checked("id")
    alias: str = _checked("alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class AliasRemoved(_Validated):
    """``owner_id`` no longer holds ``alias`` (shutdown, or the owner left)."""

    owner_id: str = _checked("id")
    alias: str = _checked("alias")


#: Any event of the signaling client.
Event = (
    Joined
    | JoinRejected
    | PeerGreeted
    | OfferReceived
    | AnswerReceived
    | CandidateReceived
    | PeerLeft
    | Disconnected
    | IdChanged
    | Reconnected
    | BindSucceeded
    | BindRejected
    | ConnectSucceeded
    | ConnectRefused
    | ShutdownSucceeded
    | ShutdownRejected
    | RequestFailed
    | CancelledRequestSucceeded
    | IncomingConnection
    | AliasAdded
    | AliasRemoved
)
