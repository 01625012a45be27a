"""The 13 signaling messages (docs/protocol.md, "Messages"), as validated value objects.

Every message is a frozen, slotted, keyword-only dataclass whose fields are the
wire fields in snake_case (``offererId`` → ``offerer_id``). Constructing one
validates every field, so an invalid message cannot exist: ids must be
canonical dotted IPv4 strings, subnets three octets, aliases ``ip:port`` with a
port in 0..65535, SDP and candidate strings bounded in size, booleans real
booleans. A bad value raises :class:`~unisockets.protocol.errors.LocalProtocolError`;
:func:`unisockets.protocol.wire.decode` turns that into a
:class:`~unisockets.protocol.errors.RemoteProtocolError` for received input.

The field order of each class is the order in which the original TypeScript
implementation writes the fields, so that :func:`~unisockets.protocol.wire.encode`
reproduces recorded frames byte for byte.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeVar

from .addresses import is_alias, is_id, is_subnet
from .errors import LocalProtocolError

__all__ = [
    "MAX_CANDIDATE_LENGTH",
    "MAX_CONNECTION_ID_LENGTH",
    "MAX_SDP_LENGTH",
    "MAX_TOKEN_LENGTH",
    "MESSAGE_TYPES",
    "REJECTED_ID",
    "Accept",
    "Accepting",
    "Acknowledged",
    "Alias",
    "Answer",
    "Bind",
    "Candidate",
    "Connect",
    "Goodbye",
    "Greeting",
    "Knock",
    "Message",
    "Offer",
    "Shutdown",
]

#: The ``id`` of a rejected ``acknowledged`` (the original server's value).
REJECTED_ID: Final = "-1"
#: Longest SDP offer/answer accepted, in characters (real ones are 0.5 to 5 KB). Chosen so
#: that every valid message encodes to at most ``wire.MAX_MESSAGE_LENGTH`` (64 KiB) even at
#: the worst case of 6 bytes per character (a control character JSON writes as ``\u00XX``).
MAX_SDP_LENGTH: Final = 10 * 1024
#: Longest ICE candidate string (a JSON RTCIceCandidateInit), in characters.
MAX_CANDIDATE_LENGTH: Final = 2 * 1024
#: Longest ``clientConnectionId`` accepted, in characters (originals send a 36-char UUID).
MAX_CONNECTION_ID_LENGTH: Final = 128
#: Longest rejoin ``token`` of a ``knock`` accepted, in characters (ours send 32 hex digits).
MAX_TOKEN_LENGTH: Final = 128

#: A lone UTF-16 surrogate: representable in a Python str, not in UTF-8.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

FieldKind = Literal[
    "id", "subnet", "alias", "bool", "sdp", "candidate", "connection_id", "rejoin_token"
]


def _wire(name: str, kind: FieldKind) -> Any:
    """A required field with its camelCase wire name and value kind."""
    return field(metadata={"wire": name, "kind": kind})


def _optional(name: str, kind: FieldKind) -> Any:
    """An optional field (omitted on the wire when ``None``)."""
    return field(default=None, metadata={"wire": name, "kind": kind, "optional": True})


#: A field check: ``check(value, field_name)`` raises LocalProtocolError for a bad value.
_Check = Callable[[object, str], None]


def _check_id(value: object, name: str) -> None:
    if not is_id(value):
        raise LocalProtocolError(f"{name} must be a dotted IPv4 id, got {value!r:.80}")


def _check_subnet(value: object, name: str) -> None:
    if not is_subnet(value):
        raise LocalProtocolError(f"{name} must be a three-octet subnet, got {value!r:.80}")


def _check_alias(value: object, name: str) -> None:
    if not is_alias(value):
        raise LocalProtocolError(f"{name} must be an ipv4:port alias, got {value!r:.80}")


def _check_bool(value: object, name: str) -> None:
    if type(value) is not bool:
        raise LocalProtocolError(f"{name} must be a boolean, got {value!r:.80}")


def _string_check(limit: int) -> _Check:
    """The check of a free-form string of 1..``limit`` characters (SDP, candidate, ...)."""

    def check(value: object, name: str) -> None:
        if type(value) is not str:
            raise LocalProtocolError(f"{name} must be a string, not {type(value).__name__}")
        if not 0 < len(value) <= limit:
            raise LocalProtocolError(f"{name} must be 1..{limit} characters, got {len(value)}")
        # JSON may escape a lone surrogate ("\ud800"); no UTF-8 frame can carry it. ASCII
        # (what SDP and candidates are) holds none, and isascii() is a flag test in CPython.
        if not value.isascii() and _SURROGATE.search(value) is not None:
            raise LocalProtocolError(f"{name} holds a lone surrogate, which is not valid Unicode")

    return check


#: The check of each field kind.
_CHECKS_BY_KIND: Final[dict[str, _Check]] = {
    "id": _check_id,
    "subnet": _check_subnet,
    "alias": _check_alias,
    "bool": _check_bool,
    "sdp": _string_check(MAX_SDP_LENGTH),
    "candidate": _string_check(MAX_CANDIDATE_LENGTH),
    "connection_id": _string_check(MAX_CONNECTION_ID_LENGTH),
    "rejoin_token": _string_check(MAX_TOKEN_LENGTH),
}


def _unless_none(check: _Check) -> _Check:
    """``check`` for an optional field: ``None`` (absent) passes."""

    def check_optional(value: object, name: str) -> None:
        if value is not None:
            check(value, name)

    return check_optional


_T = TypeVar("_T", bound="_Validated")


def _validated(cls: type[_T]) -> type[_T]:
    """Class decorator (above ``@dataclass``): give ``cls`` its table of field checks.

    The table, ``(field name, check)`` in field order, is built once here from
    the fields' ``kind`` metadata, so that constructing a message runs only the
    checks (no :func:`dataclasses.fields` and no lookup by kind per message).
    """
    cls._CHECKS = tuple(
        (
            f.name,
            _unless_none(_CHECKS_BY_KIND[f.metadata["kind"]])
            if f.metadata.get("optional")
            else _CHECKS_BY_KIND[f.metadata["kind"]],
        )
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
    )
    return cls


class _Validated:
    """Mixin: validates every dataclass field against its ``kind`` after construction.

    Every subclass is decorated with :func:`_validated`, which builds ``_CHECKS``.
    """

    __slots__ = ()
    OPCODE: ClassVar[str]
    _CHECKS: ClassVar[tuple[tuple[str, _Check], ...]]

    def __post_init__(self) -> None:
        for name, check in self._CHECKS:
            check(getattr(self, name), name)


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Knock(_Validated):
    """``knock`` (node → server): ask to join ``subnet``, e.g. ``"10.0.0"``.

    Two optional fields are ours (docs/protocol.md, "Stable addresses"); the
    original servers read only ``subnet`` and ignore them, and an original
    node never sends them:

    - ``id``: the id the node had before it lost its WebSocket, asked for
      again (e.g. ``"10.0.0.3"``).
    - ``token``: a secret the node picked (1..128 characters; ours send 32
      hex digits) and sends with every knock of its life; a knock asking for
      the id of a live member takes that member over only with the same token.
    - ``lazyLinks``: ``true`` when the node sets its peer links up on demand
      (docs/protocol.md, "Lazy peer links"): a server of ours then greets
      nobody for a join between two such nodes.
    """

    OPCODE: ClassVar[str] = "knock"
    subnet: str = _wire("subnet", "subnet")
    id: str | None = _optional("id", "id")
    token: str | None = _optional("token", "rejoin_token")
    lazy_links: bool | None = _optional("lazyLinks", "bool")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledged(_Validated):
    """``acknowledged`` (server → node): the answer to a knock.

    ``id`` is the node's new address, and ``rejected`` is false. When the subnet
    is full, ``rejected`` is true and ``id`` is :data:`REJECTED_ID` (``"-1"``),
    as the original server sends it.
    """

    OPCODE: ClassVar[str] = "acknowledged"
    id: str = _wire("id", "id")
    rejected: bool = _wire("rejected", "bool")

    def __post_init__(self) -> None:
        if self.rejected is True and self.id == REJECTED_ID:
            return
        _Validated.__post_init__(self)


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Greeting(_Validated):
    """``greeting`` (server → existing node): ``answerer_id`` joined, ``offerer_id`` offers."""

    OPCODE: ClassVar[str] = "greeting"
    offerer_id: str = _wire("offererId", "id")
    answerer_id: str = _wire("answererId", "id")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Offer(_Validated):
    """``offer`` (both ways): an SDP offer from ``offerer_id`` for ``answerer_id``."""

    OPCODE: ClassVar[str] = "offer"
    offerer_id: str = _wire("offererId", "id")
    answerer_id: str = _wire("answererId", "id")
    offer: str = _wire("offer", "sdp")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(_Validated):
    """``answer`` (both ways): the SDP answer of ``answerer_id`` to ``offerer_id``'s offer."""

    OPCODE: ClassVar[str] = "answer"
    offerer_id: str = _wire("offererId", "id")
    answerer_id: str = _wire("answererId", "id")
    answer: str = _wire("answer", "sdp")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate(_Validated):
    """``candidate`` (both ways): a trickled ICE candidate.

    ``offerer_id`` is the *sender* (the node the candidate describes) and
    ``answerer_id`` the recipient, whatever their offer/answer roles.
    ``candidate`` is a JSON string of an RTCIceCandidateInit
    (``candidate``, ``sdpMid``, ``sdpMLineIndex``, ``usernameFragment``).
    """

    OPCODE: ClassVar[str] = "candidate"
    offerer_id: str = _wire("offererId", "id")
    answerer_id: str = _wire("answererId", "id")
    candidate: str = _wire("candidate", "candidate")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Bind(_Validated):
    """``bind`` (node → server): node ``id`` claims ``alias``."""

    OPCODE: ClassVar[str] = "bind"
    id: str = _wire("id", "id")
    alias: str = _wire("alias", "alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Alias(_Validated):
    """``alias`` (server → node): ``alias`` owned by ``id`` was set (``set``) or removed.

    Also the answer to bind, connect and shutdown, see docs/protocol.md, "Flows".
    ``client_connection_id`` ties it to a ``connect``; ``is_connection_alias``
    marks the connecting node's own local alias. ``is_member_address`` is ours
    (docs/protocol.md, "Bind and listen"): ``true`` on the ``set:false``
    answer to a bind of an alias on another member's id, which a node of
    ours reports as ``EADDRNOTAVAIL`` (``EADDRINUSE`` for a taken alias);
    original nodes and servers never read or send it.
    """

    OPCODE: ClassVar[str] = "alias"
    id: str = _wire("id", "id")
    alias: str = _wire("alias", "alias")
    set: bool = _wire("set", "bool")
    client_connection_id: str | None = _optional("clientConnectionId", "connection_id")
    is_connection_alias: bool | None = _optional("isConnectionAlias", "bool")
    is_member_address: bool | None = _optional("isMemberAddress", "bool")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Accepting(_Validated):
    """``accepting`` (node → server): node ``id`` accepts connections on ``alias``."""

    OPCODE: ClassVar[str] = "accepting"
    id: str = _wire("id", "id")
    alias: str = _wire("alias", "alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Accept(_Validated):
    """``accept`` (server → listening node): ``client_alias`` connected to ``bound_alias``."""

    OPCODE: ClassVar[str] = "accept"
    bound_alias: str = _wire("boundAlias", "alias")
    client_alias: str = _wire("clientAlias", "alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Connect(_Validated):
    """``connect`` (node → server): node ``id`` connects to ``remote_alias``.

    ``client_connection_id`` is an id the node picks (a UUID v4 string) to match
    the server's answers to this request.
    """

    OPCODE: ClassVar[str] = "connect"
    id: str = _wire("id", "id")
    client_connection_id: str = _wire("clientConnectionId", "connection_id")
    remote_alias: str = _wire("remoteAlias", "alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(_Validated):
    """``shutdown`` (node → server): node ``id`` releases ``alias`` (unbind)."""

    OPCODE: ClassVar[str] = "shutdown"
    id: str = _wire("id", "id")
    alias: str = _wire("alias", "alias")


@_validated
@dataclass(frozen=True, slots=True, kw_only=True)
class Goodbye(_Validated):
    """``goodbye`` (server → node): node ``id`` left the network."""

    OPCODE: ClassVar[str] = "goodbye"
    id: str = _wire("id", "id")


#: Any signaling message.
Message = (
    Knock
    | Acknowledged
    | Greeting
    | Offer
    | Answer
    | Candidate
    | Bind
    | Alias
    | Accepting
    | Accept
    | Connect
    | Shutdown
    | Goodbye
)

#: Every message class by its wire opcode.
MESSAGE_TYPES: Final[dict[str, type[Message]]] = {
    cls.OPCODE: cls
    for cls in (
        Knock,
        Acknowledged,
        Greeting,
        Offer,
        Answer,
        Candidate,
        Bind,
        Alias,
        Accepting,
        Accept,
        Connect,
        Shutdown,
        Goodbye,
    )
}
