"""The signaling server, sans-IO (docs/protocol.md, "Flows").

:class:`SignalingServerProtocol` is the whole signaling server without the
network: a driver (:mod:`unisockets.signaling`) tells it that a client
connected, hands it every message the client sends and tells it when the
client's WebSocket closed; each call returns the messages to send, as
``(recipient key, message)`` pairs in the order they must be sent. The key is
whatever the driver identifies a connection by (a WebSocket object, a
number); the server only hashes and compares it.

Behaviour is the original TypeScript server's
(``pkg/web/signaling/services/signaling-server.ts`` of pojntfx/unisockets,
checked against a recorded session of original nodes and that server:
docs/comparison.md, "Wire compatibility"), with its known
weaknesses fixed without changing the wire:

- Every input is validated before anything changes. A violation raises
  :class:`~unisockets.protocol.errors.RemoteProtocolError` and leaves the
  server exactly as it was: other clients are never affected. Violations are
  a pair missing from :data:`~unisockets.protocol.server_states.CLIENT_TRANSITIONS`
  (a message before ``knock``, a second ``knock``, a server → node opcode),
  spoofing (an ``id``, ``offererId`` of ``offer``/``candidate``,
  ``answererId`` of ``answer``, or the address of a ``bind``/``accepting``/
  ``shutdown`` alias that is not the sender's own id) and a relay to oneself.
- A relay (``offer``, ``answer``, ``candidate``) to an id that is not a
  member of the sender's subnet is dropped, not a violation: a member that
  just left races with what its peers were sending it (counted in
  :attr:`SignalingServerProtocol.dropped_relays`).
- Subnets are independent: members of different subnets never see each
  other's greetings, aliases or goodbyes, and cannot connect to each other.
- Suffixes come from a configurable range (ours: 1..254; original: 0..255).
- Binding a port the member already holds is refused (``alias{set:false}``),
  never an error; the original server's handler failed on a held connection
  alias.

Alias bookkeeping follows :data:`~unisockets.protocol.server_states.ALIAS_TRANSITIONS`.
Relays are O(1) dict lookups; a join, bind, shutdown or leave sends one
message per member of the subnet; allocating a connection alias scans only
the connecting member's own ports. Broadcasts reuse one message object for
every recipient, so a driver may encode it once.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeAlias, TypeVar

from .addresses import MAX_PORT, is_subnet
from .errors import LocalProtocolError, RemoteProtocolError
from .messages import (
    REJECTED_ID,
    Accept,
    Accepting,
    Acknowledged,
    Alias,
    Answer,
    Bind,
    Candidate,
    Connect,
    Goodbye,
    Greeting,
    Knock,
    Message,
    Offer,
    Shutdown,
)
from .server_states import (
    ALIAS_TRANSITIONS,
    CLIENT_TRANSITIONS,
    AliasInput,
    AliasState,
    ClientInput,
    ClientState,
)
from .wire import decode

__all__ = ["DEFAULT_SUFFIXES", "AliasInfo", "Outgoing", "SignalingServerProtocol"]

K = TypeVar("K", bound=Hashable)

#: One message to send: ``(recipient key, message)``.
Outgoing: TypeAlias = tuple[K, Message]

#: The suffixes ours hands out by default: 1..254 (0 and 255 are network and broadcast).
DEFAULT_SUFFIXES: Final = range(1, 255)

#: The client input of every message class a node may send.
_CLIENT_INPUTS: Final[dict[type[Message], ClientInput]] = {
    cls: ClientInput(cls.OPCODE)
    for cls in (Knock, Offer, Answer, Candidate, Bind, Accepting, Connect, Shutdown)
}
#: The message classes only the server sends: no client state accepts them.
_SERVER_MESSAGES: Final[frozenset[type[Message]]] = frozenset(
    {Acknowledged, Greeting, Alias, Accept, Goodbye}
)


@dataclass(frozen=True, slots=True)
class AliasInfo:
    """What the server knows of one held alias (a read-only copy).

    Attributes:
        owner: the id of the member holding it, e.g. ``"10.0.0.3"``.
        state: ``BOUND``, ``ACCEPTING`` or ``CONNECTION`` (never ``FREE``).
    """

    owner: str
    state: AliasState

    @property
    def accepting(self) -> bool:
        """Whether a ``connect`` to this alias is accepted."""
        return self.state is AliasState.ACCEPTING


class _Member(Generic[K]):
    """A joined client: its key, id, subnet and the ports it holds."""

    __slots__ = ("id", "key", "ports", "subnet", "suffix")

    def __init__(self, key: K, subnet: str, suffix: int) -> None:
        self.key = key
        self.subnet = subnet
        self.suffix = suffix
        self.id = f"{subnet}.{suffix}"
        #: port -> state of every held port (never FREE), in the order they were taken.
        self.ports: dict[int, AliasState] = {}


class SignalingServerProtocol(Generic[K]):
    """The signaling server's state: clients, subnets, members and aliases.

    Every method returns the messages to send as ``(recipient key, message)``
    pairs, in sending order; the driver sends each to the connection of that
    key. Nothing here does I/O or keeps time (the 30 s ping of
    docs/protocol.md, "Liveness", belongs to the driver).

    Args:
        suffixes: the last octets handed out as ids in every subnet, lowest
            free first; a subset of 0..255. The original server uses
            ``range(0, 256)``.

    Attributes:
        dropped_relays: how many ``offer``/``answer``/``candidate`` messages
            were dropped because they named no member of the sender's subnet
            (usually one that just left).

    Raises:
        LocalProtocolError: ``suffixes`` is not a non-empty ``range`` inside 0..255.
    """

    def __init__(self, *, suffixes: range = DEFAULT_SUFFIXES) -> None:
        if (
            not isinstance(suffixes, range)
            or len(suffixes) == 0
            or min(suffixes) < 0
            or max(suffixes) > 255
        ):
            raise LocalProtocolError(f"suffixes must be a non-empty range in 0..255: {suffixes!r}")
        self._suffixes = suffixes
        #: every open connection: its member once joined, None before.
        self._clients: dict[K, _Member[K] | None] = {}
        #: subnet -> {id -> member}, in join order; a subnet exists while it has members.
        self._subnets: dict[str, dict[str, _Member[K]]] = {}
        #: every member by id (ids include their subnet, so they are unique).
        self._by_id: dict[str, _Member[K]] = {}
        #: relays dropped because they named no member of the sender's subnet.
        self.dropped_relays = 0

    # -- the driver's inputs ------------------------------------------------

    def client_connected(self, key: K) -> list[Outgoing[K]]:
        """Register a new client connection (``CONNECTED``, not yet joined).

        Args:
            key: the driver's key for the connection; hashable, not in use.

        Returns:
            ``[]``: the server says nothing until the client knocks.

        Raises:
            LocalProtocolError: ``key`` is already registered.
        """
        if key in self._clients:
            raise LocalProtocolError(f"client {key!r:.80} is already connected")
        self._clients[key] = None
        return []

    def receive_data(self, key: K, data: str | bytes) -> list[Outgoing[K]]:
        """Decode one WebSocket text frame of a client and :meth:`receive` it.

        Args:
            key: the key of a registered client.
            data: the frame's payload, ``str`` or UTF-8 ``bytes``.

        Returns:
            The messages to send, see :meth:`receive`.

        Raises:
            LocalProtocolError: ``key`` is not registered.
            RemoteProtocolError: ``data`` is not a valid message
                (:func:`~unisockets.protocol.wire.decode`) or the message is a
                violation; nothing changed.
        """
        if key not in self._clients:
            raise LocalProtocolError(f"unknown client {key!r:.80}")
        return self.receive(key, decode(data))

    def receive(self, key: K, message: Message) -> list[Outgoing[K]]:
        """Handle one message a client sent.

        Args:
            key: the key of a registered client.
            message: the decoded message.

        Returns:
            The messages to send, in order, as docs/protocol.md, "Flows" prescribes:
            for ``knock``, ``acknowledged`` to the sender, then a ``greeting``
            to every other member of the subnet in join order; for a relay,
            the message itself to the named member; for ``bind``/``shutdown``,
            ``alias`` to every member of the subnet or a refusal to the
            sender; for ``connect``, the four messages of an accepted
            connection or one refusal; for ``accepting``, nothing.

        Raises:
            LocalProtocolError: ``key`` is not registered or ``message`` is
                not a signaling message.
            RemoteProtocolError: the message is a protocol violation (see the
                module docstring); nothing changed.
        """
        try:
            member = self._clients[key]
        except KeyError:
            raise LocalProtocolError(f"unknown client {key!r:.80}") from None
        event = _CLIENT_INPUTS.get(type(message))
        if event is None:
            if type(message) in _SERVER_MESSAGES:
                raise RemoteProtocolError(f"{message.OPCODE} is sent by servers, never by nodes")
            raise LocalProtocolError(f"not a signaling message: {message!r:.80}")
        opcode = message.OPCODE
        state = ClientState.CONNECTED if member is None else ClientState.JOINED
        if (state, event) not in CLIENT_TRANSITIONS:
            if member is None:
                raise RemoteProtocolError(f"{opcode} before knock: a client must knock first")
            raise RemoteProtocolError(f"{opcode} from {member.id}: already joined")
        if member is None:
            assert isinstance(message, Knock)
            return self._knock(key, message)
        match message:
            case Offer():
                _check_sender(member, message.offerer_id, "offererId", opcode)
                return self._relay(member, message.answerer_id, opcode, message)
            case Answer():
                _check_sender(member, message.answerer_id, "answererId", opcode)
                return self._relay(member, message.offerer_id, opcode, message)
            case Candidate():
                _check_sender(member, message.offerer_id, "offererId", opcode)
                return self._relay(member, message.answerer_id, opcode, message)
            case Bind():
                return self._bind(member, message)
            case Accepting():
                return self._accepting(member, message)
            case Connect():
                return self._connect(member, message)
            case Shutdown():
                return self._shutdown(member, message)
        raise AssertionError(f"no handler for {opcode}")  # pragma: no cover

    def client_disconnected(self, key: K) -> list[Outgoing[K]]:
        """Forget a client whose connection closed; a member leaves its subnet.

        The member's id and every alias it held are freed. The remaining
        members of its subnet are told, in join order, first
        ``goodbye{id}``, then for each alias it held (in the order it took
        them) ``alias{id, alias, set:false}``: the order the original server
        sent them in the recorded session.

        Args:
            key: the key of the connection that closed.

        Returns:
            The messages to send; ``[]`` for a client that never joined and
            for an unknown key.
        """
        if key not in self._clients:
            return []
        member = self._clients[key]
        state = ClientState.CONNECTED if member is None else ClientState.JOINED
        assert CLIENT_TRANSITIONS[(state, ClientInput.CLOSE)] is ClientState.CLOSED
        del self._clients[key]
        if member is None:
            return []
        subnet = self._subnets[member.subnet]
        del subnet[member.id]
        del self._by_id[member.id]
        if not subnet:
            del self._subnets[member.subnet]
        keys = [other.key for other in subnet.values()]
        goodbye = Goodbye(id=member.id)
        out: list[Outgoing[K]] = [(k, goodbye) for k in keys]
        for port, port_state in member.ports.items():
            assert ALIAS_TRANSITIONS[(port_state, AliasInput.LEAVE)] is AliasState.FREE
            removed = Alias(id=member.id, alias=f"{member.id}:{port}", set=False)
            out.extend((k, removed) for k in keys)
        member.ports.clear()
        return out

    # -- read-only introspection ---------------------------------------------

    def member_id(self, key: K) -> str | None:
        """Return the id of the client ``key``, or ``None`` if it has not joined (or is unknown)."""
        member = self._clients.get(key)
        return None if member is None else member.id

    def client_state(self, key: K) -> ClientState:
        """Return the state of client ``key``: ``CLOSED`` for a key not registered."""
        if key not in self._clients:
            return ClientState.CLOSED
        return ClientState.CONNECTED if self._clients[key] is None else ClientState.JOINED

    @property
    def clients(self) -> Mapping[K, ClientState]:
        """A copy of every registered client's state, by key, in connection order."""
        return {
            key: ClientState.CONNECTED if member is None else ClientState.JOINED
            for key, member in self._clients.items()
        }

    @property
    def members(self) -> Mapping[K, str]:
        """A copy of the id of every joined client, by key."""
        return {key: member.id for key, member in self._clients.items() if member is not None}

    @property
    def aliases(self) -> Mapping[str, AliasInfo]:
        """A copy of every held alias (``"<id>:<port>"``) with its owner and state."""
        return {
            f"{member.id}:{port}": AliasInfo(member.id, state)
            for member in self._by_id.values()
            for port, state in member.ports.items()
        }

    @property
    def subnets(self) -> Mapping[str, tuple[str, ...]]:
        """A copy of every subnet that has members: the member ids in join order."""
        return {subnet: tuple(members) for subnet, members in self._subnets.items()}

    def subnet_members(self, subnet: str) -> tuple[str, ...]:
        """Return the ids of the members of ``subnet`` in join order (``()`` if none)."""
        return tuple(self._subnets.get(subnet, ()))

    # -- handlers: validate everything, then change state ---------------------

    def _knock(self, key: K, message: Knock) -> list[Outgoing[K]]:
        subnet = self._subnets.get(message.subnet, {})
        taken = {member.suffix for member in subnet.values()}
        suffix = next((s for s in self._suffixes if s not in taken), None)
        if suffix is None:
            next_state = CLIENT_TRANSITIONS[(ClientState.CONNECTED, ClientInput.KNOCK_REJECTED)]
            assert next_state is ClientState.CONNECTED
            return [(key, Acknowledged(id=REJECTED_ID, rejected=True))]
        assert is_subnet(message.subnet)
        next_state = CLIENT_TRANSITIONS[(ClientState.CONNECTED, ClientInput.KNOCK)]
        assert next_state is ClientState.JOINED
        member = _Member(key, message.subnet, suffix)
        out: list[Outgoing[K]] = [(key, Acknowledged(id=member.id, rejected=False))]
        out.extend(
            (other.key, Greeting(offerer_id=other.id, answerer_id=member.id))
            for other in subnet.values()
        )
        self._subnets[message.subnet] = subnet
        subnet[member.id] = member
        self._by_id[member.id] = member
        self._clients[key] = member
        return out

    def _relay(
        self, member: _Member[K], peer_id: str, opcode: str, message: Message
    ) -> list[Outgoing[K]]:
        """``message`` for the other member of ``member``'s subnet it names.

        A relay to an id that is not a member of the sender's subnet (any
        more) is dropped: a peer that just left races with the offers and
        candidates its peers were sending it, and punishing the sender would
        cut an innocent node off. The drop is counted in
        :attr:`dropped_relays`. A relay to oneself is never a race: a
        violation.
        """
        if peer_id == member.id:
            raise RemoteProtocolError(f"{opcode} from {member.id} to itself")
        peer = self._by_id.get(peer_id)
        if peer is None or peer.subnet != member.subnet:
            self.dropped_relays += 1
            return []
        return [(peer.key, message)]

    def _broadcast(self, member: _Member[K], message: Message) -> list[Outgoing[K]]:
        """``message`` to every member of ``member``'s subnet, ``member`` included."""
        return [(other.key, message) for other in self._subnets[member.subnet].values()]

    def _bind(self, member: _Member[K], message: Bind) -> list[Outgoing[K]]:
        _check_sender(member, message.id, "id", "bind")
        port = _own_port(member, message.alias, "bind")
        state = member.ports.get(port, AliasState.FREE)
        next_state = ALIAS_TRANSITIONS.get((state, AliasInput.BIND))
        if next_state is None:
            return [(member.key, Alias(id=member.id, alias=message.alias, set=False))]
        member.ports[port] = next_state
        return self._broadcast(member, Alias(id=member.id, alias=message.alias, set=True))

    def _accepting(self, member: _Member[K], message: Accepting) -> list[Outgoing[K]]:
        _check_sender(member, message.id, "id", "accepting")
        port = _own_port(member, message.alias, "accepting")
        state = member.ports.get(port, AliasState.FREE)
        next_state = ALIAS_TRANSITIONS.get((state, AliasInput.ACCEPTING))
        if next_state is not None:
            member.ports[port] = next_state
        return []

    def _connect(self, member: _Member[K], message: Connect) -> list[Outgoing[K]]:
        _check_sender(member, message.id, "id", "connect")
        port = 0
        while port in member.ports:
            port += 1
        if port > MAX_PORT:
            raise RemoteProtocolError(f"connect from {member.id}: every port is taken")
        client_alias = f"{member.id}:{port}"
        connection_state = ALIAS_TRANSITIONS[(AliasState.FREE, AliasInput.CONNECT)]
        listener_id, _, remote_port_text = message.remote_alias.rpartition(":")
        remote_port = int(remote_port_text)
        listener = self._by_id.get(listener_id)
        remote_state = AliasState.FREE
        if listener is not None and listener.subnet == member.subnet:
            remote_state = listener.ports.get(remote_port, AliasState.FREE)
        next_remote_state = ALIAS_TRANSITIONS.get((remote_state, AliasInput.ACCEPT))
        cid = message.client_connection_id
        if listener is None or next_remote_state is None:
            refused = Alias(id=member.id, alias=client_alias, set=False, client_connection_id=cid)
            return [(member.key, refused)]
        member.ports[port] = connection_state
        listener.ports[remote_port] = next_remote_state
        return [
            (
                member.key,
                Alias(
                    id=member.id,
                    alias=client_alias,
                    set=True,
                    client_connection_id=cid,
                    is_connection_alias=True,
                ),
            ),
            (listener.key, Alias(id=member.id, alias=client_alias, set=True)),
            (listener.key, Accept(bound_alias=message.remote_alias, client_alias=client_alias)),
            (
                member.key,
                Alias(
                    id=listener.id,
                    alias=message.remote_alias,
                    set=True,
                    client_connection_id=cid,
                ),
            ),
        ]

    def _shutdown(self, member: _Member[K], message: Shutdown) -> list[Outgoing[K]]:
        _check_sender(member, message.id, "id", "shutdown")
        port = _own_port(member, message.alias, "shutdown")
        state = member.ports.get(port, AliasState.FREE)
        next_state = ALIAS_TRANSITIONS.get((state, AliasInput.SHUTDOWN))
        if next_state is None:
            return [(member.key, Alias(id=member.id, alias=message.alias, set=True))]
        assert next_state is AliasState.FREE
        del member.ports[port]
        return self._broadcast(member, Alias(id=member.id, alias=message.alias, set=False))


def _check_sender(member: _Member[Any], claimed: str, field: str, opcode: str) -> None:
    """Raise unless a message's sender field names the sending member itself."""
    if claimed != member.id:
        raise RemoteProtocolError(f"{opcode} from {member.id} claims {field} {claimed} (spoofed)")


def _own_port(member: _Member[Any], alias: str, opcode: str) -> int:
    """The port of ``alias`` if its address is the sender's id, else a violation."""
    address, _, port = alias.rpartition(":")
    if address != member.id:
        raise RemoteProtocolError(f"{opcode} from {member.id} of {alias}: not its own address")
    return int(port)
