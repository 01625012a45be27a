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
  spoofing (an ``id``, ``offererId`` of ``offer``/``candidate`` or
  ``answererId`` of ``answer`` that is not the sender's own id, or an
  ``accepting``/``shutdown`` of an alias on another member's id) and a relay
  to oneself.
- Binding follows the original server, which lets a node bind any alias
  nobody holds (the original's C echo server binds ``127.0.0.1:1234``
  whatever its node's id), except that nobody takes an address that belongs
  to another live member. A member may bind a port of its own id, or of any
  address that is not the id of another member of its subnet (a *claimed*
  address: ``127.0.0.1``, or a free id of the subnet). A bind on another
  member's id, or of an alias somebody holds, is refused with
  ``alias{set:false}`` to the binder, never a violation: unmodified original
  programs do it, and their ``bind()`` must return. An address some member
  holds an alias on is not handed out as an id by ``knock`` until the last
  alias on it is released (the original reserved it the same way), so
  claims never collide with a later member. Each subnet has its own
  addresses: ``127.0.0.1:1234`` in ``10.0.0`` and in ``10.0.1`` are two
  aliases.
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
- A ``bind`` on another member's id is refused with ``alias{set:false,
  isMemberAddress:true}`` (the field is ours, docs/protocol.md, "Bind and
  listen"), so that the binder tells it from a taken alias even when it does
  not know that member (lazy links); original nodes ignore the field.
- Stable addresses (ours, docs/protocol.md, "Stable addresses"): a ``knock``
  may ask for the node's previous ``id`` and carry the node's ``token``. The
  id is given whenever it is free; a live member with that id and the same
  token is *replaced* (its connection is forgotten without a ``goodbye``, its
  aliases are released, the newer connection gets the id), as when a node
  comes back on a new WebSocket while the server still holds its silent old
  one. With a ``rejoin_grace`` the server holds ids back for returning nodes:
  for that long after its start, a knock that does not get the id it asks
  for (a newcomer, an original node) waits (``HELD``) and is answered when
  the grace ends, lowest free id first; and the id of a member with a token
  that leaves is kept for that long for a knock with its token.
- Lazy peer links (ours, docs/protocol.md, "Lazy peer links"): a join
  between two members that both knocked with ``lazyLinks`` greets nobody;
  they set their link up when one connects to the other. Every other pair
  is greeted as by the original (an original node always is).

Alias bookkeeping follows :data:`~unisockets.protocol.server_states.ALIAS_TRANSITIONS`.
Relays are O(1) dict lookups; a join, bind, shutdown or leave sends one
message per member of the subnet; allocating a connection alias scans only
the connecting member's own ports. Broadcasts reuse one message object for
every recipient, so a driver may encode it once.
"""

from __future__ import annotations

import math
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
    """A joined client: its key, id, subnet, rejoin token and the aliases it holds."""

    __slots__ = ("claims", "id", "key", "lazy", "ports", "subnet", "suffix", "token")

    def __init__(
        self, key: K, subnet: str, suffix: int, token: str | None = None, lazy: bool = False
    ) -> None:
        self.key = key
        self.subnet = subnet
        self.suffix = suffix
        self.token = token
        #: It knocked with ``lazyLinks``: it sets peer links up on demand.
        self.lazy = lazy
        self.id = f"{subnet}.{suffix}"
        #: port -> state of every held port (never FREE), in the order they were taken.
        self.ports: dict[int, AliasState] = {}
        #: alias -> state of every alias held on a claimed address, in the order taken.
        self.claims: dict[str, AliasState] = {}


class SignalingServerProtocol(Generic[K]):
    """The signaling server's state: clients, subnets, members and aliases.

    Every method returns the messages to send as ``(recipient key, message)``
    pairs, in sending order; the driver sends each to the connection of that
    key. Nothing here does I/O or keeps time (the 30 s ping of
    docs/protocol.md, "Liveness", belongs to the driver).

    Time is an input, as everything else: the driver calls :meth:`expire`
    at :meth:`next_deadline` (seconds on any monotonic clock), which ends the
    rejoin grace and forgets the ids kept for members that left.

    Args:
        suffixes: the last octets handed out as ids in every subnet, lowest
            free first; a subset of 0..255. The original server uses
            ``range(0, 256)``.
        rejoin_grace: seconds, >= 0 (0: off). For this long after ``now``,
            knocks that do not get the id they ask for wait (``HELD``) so
            that no newcomer takes an id a returning node will ask for; and
            for this long after a member with a token leaves, its id is kept
            for a knock with its token (docs/protocol.md, "Stable addresses").
        now: the time the server starts, seconds on the driver's clock.

    Attributes:
        dropped_relays: how many ``offer``/``answer``/``candidate`` messages
            were dropped because they named no member of the sender's subnet
            (usually one that just left).

    Raises:
        LocalProtocolError: ``suffixes`` is not a non-empty ``range`` inside
            0..255, or ``rejoin_grace`` is not a finite number >= 0.
    """

    def __init__(
        self, *, suffixes: range = DEFAULT_SUFFIXES, rejoin_grace: float = 0.0, now: float = 0.0
    ) -> None:
        if (
            not isinstance(suffixes, range)
            or len(suffixes) == 0
            or min(suffixes) < 0
            or max(suffixes) > 255
        ):
            raise LocalProtocolError(f"suffixes must be a non-empty range in 0..255: {suffixes!r}")
        if not (
            isinstance(rejoin_grace, int | float)
            and math.isfinite(rejoin_grace)
            and rejoin_grace >= 0
        ):
            raise LocalProtocolError(f"rejoin_grace must be >= 0 seconds: {rejoin_grace!r}")
        self._suffixes = suffixes
        self._grace = float(rejoin_grace)
        self._now = float(now)
        #: Whether knocks that do not get the id they ask for wait (the grace after the start).
        self._holding = self._grace > 0
        self._hold_until = self._now + self._grace
        #: key -> knock of every HELD client, in arrival order.
        self._waiting: dict[K, Knock] = {}
        #: id -> (token, until) of members with a token that left less than the grace ago.
        self._kept: dict[str, tuple[str, float]] = {}
        #: keys of connections replaced by a newer one of the same node, for the driver to close.
        self._replaced: list[K] = []
        #: every open connection: its member once joined, None before.
        self._clients: dict[K, _Member[K] | None] = {}
        #: subnet -> {id -> member}, in join order; a subnet exists while it has members.
        self._subnets: dict[str, dict[str, _Member[K]]] = {}
        #: every member by id (ids include their subnet, so they are unique).
        self._by_id: dict[str, _Member[K]] = {}
        #: subnet -> {alias -> holder} of aliases on claimed addresses (no member's id).
        self._claims: dict[str, dict[str, _Member[K]]] = {}
        #: subnet -> {claimed address -> how many aliases are held on it}.
        self._claimed: dict[str, dict[str, int]] = {}
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
        state = self._state(key, member)
        if (state, event) not in CLIENT_TRANSITIONS:
            if state is ClientState.HELD:
                raise RemoteProtocolError(f"{opcode} before the answer to the knock")
            if member is None:
                raise RemoteProtocolError(f"{opcode} before knock: a client must knock first")
            raise RemoteProtocolError(f"{opcode} from {member.id}: already joined")
        if member is None:
            assert isinstance(message, Knock)
            return self._knock(key, message, ClientState.CONNECTED)
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

    def client_disconnected(self, key: K, *, now: float | None = None) -> list[Outgoing[K]]:
        """Forget a client whose connection closed; a member leaves its subnet.

        The member's id and every alias it held are freed. The remaining
        members of its subnet are told, in join order, first
        ``goodbye{id}``, then for each alias it held (in the order it took
        them) ``alias{id, alias, set:false}``: the order the original server
        sent them in the recorded session. With a rejoin grace, the id of a
        member that knocked with a token is kept for that token until
        ``now + rejoin_grace``.

        Args:
            key: the key of the connection that closed (or was replaced).
            now: the current time, seconds; ``None`` for the time of the
                last :meth:`expire` (or the start).

        Returns:
            The messages to send; ``[]`` for a client that never joined, for
            a replaced one and for an unknown key.
        """
        if key not in self._clients:
            return []
        member = self._clients[key]
        state = self._state(key, member)
        assert CLIENT_TRANSITIONS[(state, ClientInput.CLOSE)] is ClientState.CLOSED
        del self._clients[key]
        self._waiting.pop(key, None)
        if member is None:
            return []
        if member.token is not None and self._grace > 0:
            until = (self._now if now is None else now) + self._grace
            self._kept[member.id] = (member.token, until)
        out: list[Outgoing[K]] = []
        self._remove(member, out, goodbye=True)
        return out

    def expire(self, now: float) -> list[Outgoing[K]]:
        """Time passed: end the rejoin grace and forget kept ids whose time is up.

        Args:
            now: the current time, seconds on the driver's clock (never
                earlier than a previous ``now``).

        Returns:
            The answers to the knocks that waited for the end of the grace,
            in arrival order (each as :meth:`receive` answers a knock).
        """
        self._now = max(self._now, now)
        for node_id, (_token, until) in list(self._kept.items()):
            if until <= self._now:
                del self._kept[node_id]
        out: list[Outgoing[K]] = []
        if self._holding and self._now >= self._hold_until:
            self._holding = False
            held, self._waiting = self._waiting, {}
            for key, knock in held.items():
                out.extend(self._knock(key, knock, ClientState.HELD))
        return out

    def next_deadline(self) -> float:
        """When :meth:`expire` has something to do next, seconds (``inf``: never)."""
        deadline = self._hold_until if self._holding else math.inf
        return min([deadline, *(until for _token, until in self._kept.values())])

    def take_replaced(self) -> list[K]:
        """The keys of connections replaced by a newer one of the same node since the last call.

        The server forgot them (their node has its id on the newer
        connection); the driver closes them without telling anyone, and a
        later :meth:`client_disconnected` for them returns ``[]``.
        """
        replaced, self._replaced = self._replaced, []
        return replaced

    def _state(self, key: K, member: _Member[K] | None) -> ClientState:
        if member is not None:
            return ClientState.JOINED
        return ClientState.HELD if key in self._waiting else ClientState.CONNECTED

    def _remove(self, member: _Member[K], out: list[Outgoing[K]], *, goodbye: bool) -> None:
        """Take ``member`` out of its subnet and free its aliases, telling the others."""
        subnet = self._subnets[member.subnet]
        del subnet[member.id]
        del self._by_id[member.id]
        if not subnet:
            del self._subnets[member.subnet]
        keys = [other.key for other in subnet.values()]
        if goodbye:
            message = Goodbye(id=member.id)
            out.extend((k, message) for k in keys)
        for port, port_state in member.ports.items():
            assert ALIAS_TRANSITIONS[(port_state, AliasInput.LEAVE)] is AliasState.FREE
            removed = Alias(id=member.id, alias=f"{member.id}:{port}", set=False)
            out.extend((k, removed) for k in keys)
        member.ports.clear()
        for alias, alias_state in list(member.claims.items()):
            assert ALIAS_TRANSITIONS[(alias_state, AliasInput.LEAVE)] is AliasState.FREE
            self._release_claim(member, alias)
            removed = Alias(id=member.id, alias=alias, set=False)
            out.extend((k, removed) for k in keys)

    # -- read-only introspection ---------------------------------------------

    def member_id(self, key: K) -> str | None:
        """Return the id of the client ``key``, or ``None`` if it has not joined (or is unknown)."""
        member = self._clients.get(key)
        return None if member is None else member.id

    def client_state(self, key: K) -> ClientState:
        """Return the state of client ``key``: ``CLOSED`` for a key not registered."""
        if key not in self._clients:
            return ClientState.CLOSED
        return self._state(key, self._clients[key])

    @property
    def clients(self) -> Mapping[K, ClientState]:
        """A copy of every registered client's state, by key, in connection order."""
        return {key: self._state(key, member) for key, member in self._clients.items()}

    @property
    def holding(self) -> bool:
        """Whether the rejoin grace after the start is on (knocks may wait, ``HELD``)."""
        return self._holding

    @property
    def kept_ids(self) -> Mapping[str, float]:
        """A copy of the ids kept for members that left: id -> until when (seconds)."""
        return {node_id: until for node_id, (_token, until) in self._kept.items()}

    @property
    def members(self) -> Mapping[K, str]:
        """A copy of the id of every joined client, by key."""
        return {key: member.id for key, member in self._clients.items() if member is not None}

    @property
    def aliases(self) -> Mapping[str, AliasInfo]:
        """A copy of every held alias on a member's own id (``"<id>:<port>"``), with its state.

        Aliases on claimed addresses are in :attr:`claimed_aliases`.
        """
        return {
            f"{member.id}:{port}": AliasInfo(member.id, state)
            for member in self._by_id.values()
            for port, state in member.ports.items()
        }

    @property
    def claimed_aliases(self) -> Mapping[str, Mapping[str, AliasInfo]]:
        """A copy of every held alias on a claimed address: subnet -> {alias -> info}.

        A claimed address is one that is no member's id (``127.0.0.1`` in
        subnet ``10.0.0``, or a free id of the subnet); see the module
        docstring. Subnets without claims are left out.
        """
        return {
            subnet: {
                alias: AliasInfo(holder.id, holder.claims[alias]) for alias, holder in held.items()
            }
            for subnet, held in self._claims.items()
        }

    def claimed_addresses(self, subnet: str) -> frozenset[str]:
        """The addresses of ``subnet`` some member holds an alias on without being its id."""
        return frozenset(self._claimed.get(subnet, ()))

    @property
    def subnets(self) -> Mapping[str, tuple[str, ...]]:
        """A copy of every subnet that has members: the member ids in join order."""
        return {subnet: tuple(members) for subnet, members in self._subnets.items()}

    def subnet_members(self, subnet: str) -> tuple[str, ...]:
        """Return the ids of the members of ``subnet`` in join order (``()`` if none)."""
        return tuple(self._subnets.get(subnet, ()))

    # -- handlers: validate everything, then change state ---------------------

    def _knock(self, key: K, message: Knock, state: ClientState) -> list[Outgoing[K]]:
        """Answer the knock of client ``key`` in ``state`` (``CONNECTED``; ``HELD``: grace over)."""
        joined = ClientInput.KNOCK if state is ClientState.CONNECTED else ClientInput.GRACE_OVER
        subnet = self._subnets.get(message.subnet, {})
        claimed = self._claimed.get(message.subnet, {})
        out: list[Outgoing[K]] = []
        asked = message.id
        suffix: int | None = None
        if asked is not None and asked.rpartition(".")[0] == message.subnet:
            current = subnet.get(asked)
            wanted = int(asked.rpartition(".")[2])
            kept = self._kept.get(asked)
            if current is not None:
                if message.token is not None and current.token == message.token:
                    self._replace(current, out)  # the same node on a newer connection
                    suffix = wanted
            elif (
                wanted in self._suffixes
                and asked not in claimed
                and (kept is None or kept[0] == message.token)
            ):
                suffix = wanted
        if suffix is None and self._holding:
            next_state = CLIENT_TRANSITIONS[(state, ClientInput.KNOCK_HELD)]
            assert next_state is ClientState.HELD
            self._waiting[key] = message
            return []
        if suffix is None:
            taken = {member.suffix for member in subnet.values()}
            prefix = message.subnet + "."
            suffix = next(
                (
                    s
                    for s in self._suffixes
                    if s not in taken
                    and (not claimed or f"{prefix}{s}" not in claimed)
                    and (not self._kept or f"{prefix}{s}" not in self._kept)
                ),
                None,
            )
        if suffix is None:
            next_state = CLIENT_TRANSITIONS[(state, ClientInput.KNOCK_REJECTED)]
            assert next_state is ClientState.CONNECTED
            return [(key, Acknowledged(id=REJECTED_ID, rejected=True))]
        assert is_subnet(message.subnet)
        next_state = CLIENT_TRANSITIONS[(state, joined)]
        assert next_state is ClientState.JOINED
        member = _Member(key, message.subnet, suffix, message.token, message.lazy_links is True)
        self._kept.pop(member.id, None)
        subnet = self._subnets.get(message.subnet, {})  # a replace may have emptied it
        out.append((key, Acknowledged(id=member.id, rejected=False)))
        out.extend(
            (other.key, Greeting(offerer_id=other.id, answerer_id=member.id))
            for other in subnet.values()
            if not (member.lazy and other.lazy)  # both set links up on demand
        )
        self._subnets[message.subnet] = subnet
        subnet[member.id] = member
        self._by_id[member.id] = member
        self._clients[key] = member
        return out

    def _replace(self, member: _Member[K], out: list[Outgoing[K]]) -> None:
        """A newer connection of ``member``'s node knocked: forget the old one, no goodbye.

        Its aliases are released as on a leave (the node binds them again on
        its new connection); its peers are not told it left, because it did
        not: their peer links to it stay.
        """
        next_state = CLIENT_TRANSITIONS[(ClientState.JOINED, ClientInput.REPLACED)]
        assert next_state is ClientState.CLOSED
        del self._clients[member.key]
        self._replaced.append(member.key)
        self._remove(member, out, goodbye=False)

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
        alias = message.alias
        refused: list[Outgoing[K]] = [(member.key, Alias(id=member.id, alias=alias, set=False))]
        address, port = _split_alias(alias)
        if address == member.id:
            state = member.ports.get(port, AliasState.FREE)
            next_state = ALIAS_TRANSITIONS.get((state, AliasInput.BIND))
            if next_state is None:
                return refused
            member.ports[port] = next_state
        elif address in self._subnets[member.subnet]:
            # Another live member's address: never taken from it. Say why (ours), so that
            # a node that does not know that member (lazy links) reports EADDRNOTAVAIL.
            why = Alias(id=member.id, alias=alias, set=False, is_member_address=True)
            return [(member.key, why)]
        else:
            holder = self._claims.get(member.subnet, {}).get(alias)
            state = AliasState.FREE if holder is None else holder.claims[alias]
            next_state = ALIAS_TRANSITIONS.get((state, AliasInput.BIND))
            if next_state is None:
                return refused
            member.claims[alias] = next_state
            self._claims.setdefault(member.subnet, {})[alias] = member
            claimed = self._claimed.setdefault(member.subnet, {})
            claimed[address] = claimed.get(address, 0) + 1
        return self._broadcast(member, Alias(id=member.id, alias=alias, set=True))

    def _held(self, member: _Member[K], alias: str, opcode: str) -> AliasState:
        """The state of ``alias`` as held by ``member`` (``FREE`` if it holds it not).

        Raises:
            RemoteProtocolError: the alias is on another member's id (spoofing).
        """
        address, port = _split_alias(alias)
        if address == member.id:
            return member.ports.get(port, AliasState.FREE)
        if address in self._subnets[member.subnet]:
            raise RemoteProtocolError(
                f"{opcode} from {member.id} of {alias}: another member's address"
            )
        return member.claims.get(alias, AliasState.FREE)

    def _set_held(self, member: _Member[K], alias: str, state: AliasState) -> None:
        """Record the new state of an alias ``member`` holds (see :meth:`_held`)."""
        address, port = _split_alias(alias)
        if address == member.id:
            member.ports[port] = state
        else:
            member.claims[alias] = state

    def _release_claim(self, member: _Member[K], alias: str) -> None:
        """Forget ``member``'s alias on a claimed address (freeing the address with its last)."""
        del member.claims[alias]
        held = self._claims[member.subnet]
        del held[alias]
        if not held:
            del self._claims[member.subnet]
        address = _split_alias(alias)[0]
        claimed = self._claimed[member.subnet]
        claimed[address] -= 1
        if claimed[address] == 0:
            del claimed[address]
            if not claimed:
                del self._claimed[member.subnet]

    def _accepting(self, member: _Member[K], message: Accepting) -> list[Outgoing[K]]:
        _check_sender(member, message.id, "id", "accepting")
        state = self._held(member, message.alias, "accepting")
        next_state = ALIAS_TRANSITIONS.get((state, AliasInput.ACCEPTING))
        if next_state is not None:
            self._set_held(member, message.alias, next_state)
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
        remote_alias = message.remote_alias
        listener_id, remote_port = _split_alias(remote_alias)
        listener = self._subnets[member.subnet].get(listener_id)
        if listener is None:  # a claimed address, or nobody
            listener = self._claims.get(member.subnet, {}).get(remote_alias)
            remote_state = AliasState.FREE if listener is None else listener.claims[remote_alias]
        else:
            remote_state = listener.ports.get(remote_port, AliasState.FREE)
        next_remote_state = ALIAS_TRANSITIONS.get((remote_state, AliasInput.ACCEPT))
        cid = message.client_connection_id
        if listener is None or next_remote_state is None:
            refused = Alias(id=member.id, alias=client_alias, set=False, client_connection_id=cid)
            return [(member.key, refused)]
        member.ports[port] = connection_state
        self._set_held(listener, remote_alias, next_remote_state)
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
        alias = message.alias
        state = self._held(member, alias, "shutdown")
        next_state = ALIAS_TRANSITIONS.get((state, AliasInput.SHUTDOWN))
        if next_state is None:
            return [(member.key, Alias(id=member.id, alias=alias, set=True))]
        assert next_state is AliasState.FREE
        address, port = _split_alias(alias)
        if address == member.id:
            del member.ports[port]
        else:
            self._release_claim(member, alias)
        return self._broadcast(member, Alias(id=member.id, alias=alias, set=False))


def _check_sender(member: _Member[Any], claimed: str, field: str, opcode: str) -> None:
    """Raise unless a message's sender field names the sending member itself."""
    if claimed != member.id:
        raise RemoteProtocolError(f"{opcode} from {member.id} claims {field} {claimed} (spoofed)")


def _split_alias(alias: str) -> tuple[str, int]:
    """``"10.0.0.3:80"`` -> ``("10.0.0.3", 80)`` for an alias the wire already validated."""
    address, _, port = alias.rpartition(":")
    return address, int(port)
