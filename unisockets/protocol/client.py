"""One node's side of the signaling protocol, sans I/O (docs/protocol.md, "Flows").

:class:`SignalingClientProtocol` does no I/O, reads no clock and draws no
random numbers (except a UUID v4 in :meth:`~SignalingClientProtocol.connect`
when the caller passes none). A driver feeds it the server's messages and
sends what it returns.

Its two kinds of state, the *join state* of the WebSocket session and one
*request state* per bind, connect and shutdown in flight, change only by
lookups in the tables of :mod:`unisockets.protocol.client_states`
(``JOIN_TRANSITIONS``, ``REQUEST_TRANSITIONS``), which its
``render_mermaid()`` draws for the docs.

The wire reuses ``alias`` for every answer; this module tells them apart:

- An ``alias`` carrying the ``clientConnectionId`` of one of our connects
  answers that connect: ``set:false`` refuses it; it succeeds after *two*
  ``set:true`` aliases, our local one flagged ``isConnectionAlias`` (in
  either order).
- An ``alias`` for *our* id answers our oldest bind or shutdown of that alias
  still waiting for an answer (the server answers each of them exactly once,
  in order): ``set:true`` means bound / shutdown rejected, ``set:false``
  means bind rejected / shut down.
- Anything else updates the alias table (:class:`AliasAdded`,
  :class:`AliasRemoved`). Removals of aliases we never saw added are
  ignored, which makes ``goodbye`` before or after the owner's alias
  removals equivalent.

Errors: calling a method in the wrong state raises
:class:`~unisockets.protocol.errors.LocalProtocolError`; a message that makes
no sense (a client opcode, a message before the join, an answer to nothing,
an offer for another node) raises
:class:`~unisockets.protocol.errors.RemoteProtocolError` and changes nothing.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from .addresses import is_subnet, parse_alias, split_id
from .client_states import (
    JOIN_TRANSITIONS,
    REQUEST_TRANSITIONS,
    TERMINAL_REQUEST_STATES,
    JoinInput,
    JoinState,
    RequestInput,
    RequestState,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    AliasAdded,
    AliasRemoved,
    AnswerReceived,
    BindRejected,
    BindSucceeded,
    CancelledRequestSucceeded,
    CandidateReceived,
    ConnectRefused,
    ConnectSucceeded,
    Disconnected,
    Event,
    IdChanged,
    IncomingConnection,
    Joined,
    JoinRejected,
    OfferReceived,
    PeerGreeted,
    PeerLeft,
    Reconnected,
    Request,
    RequestFailed,
    RequestKind,
    ShutdownRejected,
    ShutdownSucceeded,
)
from .messages import (
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
from .wire import decode

__all__ = ["SignalingClientProtocol"]


_S = TypeVar("_S", JoinState, RequestState)
_In = TypeVar("_In", JoinInput, RequestInput)


def _step(
    table: Mapping[tuple[_S, _In], _S],
    state: _S,
    event: _In,
    error: Callable[[str], Exception],
) -> _S:
    """Look up the next state, raising ``error(...)`` when the pair is not in ``table``."""
    try:
        return table[state, event]
    except KeyError:
        raise error(f"{event.value!r} is not allowed in state {state.value!r}") from None


@dataclass(slots=True, eq=False)
class _Record:
    """The mutable bookkeeping of one request in flight."""

    request: Request
    state: RequestState = RequestState.PENDING
    internal: bool = False  #: a shutdown we made to undo a cancelled request
    local_alias: str | None = None  #: connects: our connection alias, once seen
    remote_seen: bool = False  #: connects: the remote alias was confirmed
    remote_id: str | None = None  #: connects: the id of the remote alias's holder, once seen
    #: binds: an earlier, cancelled bind of the alias succeeded late and left it to this one.
    adopted: bool = False


class SignalingClientProtocol:
    """The signaling protocol as one node sees it: a state machine without I/O.

    Usage by a driver: on each new WebSocket, send :meth:`knock`; feed every
    text frame to :meth:`receive_data` and act on the events; send whatever
    the request methods return; call :meth:`connection_lost` when the
    WebSocket closes, then :meth:`knock` again on the next one.

    Args:
        subnet: the subnet to join, three octets such as ``"10.0.0"``.
        token: this node's rejoin secret (1..128 characters), sent with every
            knock so that a server of ours gives the node its previous id
            back, also while it still holds the node's old connection
            (docs/protocol.md, "Stable addresses"); ``None`` to send none.
        stable_id: ask for our previous id when we knock again (the knock's
            ``id``); false knocks as original nodes do.
        lazy_links: say in the knock that we set peer links up on demand
            (``lazyLinks``, docs/protocol.md, "Lazy peer links"): a server of
            ours then sends no ``greeting`` between us and another such node.

    Raises:
        LocalProtocolError: ``subnet`` is not a canonical three-octet subnet,
            or ``token`` is not 1..128 characters.
    """

    def __init__(
        self,
        *,
        subnet: str = "10.0.0",
        token: str | None = None,
        stable_id: bool = True,
        lazy_links: bool = False,
    ) -> None:
        if not is_subnet(subnet):
            raise LocalProtocolError(f"not a subnet (three octets): {subnet!r:.80}")
        Knock(subnet=subnet, token=token)  # validates the token
        self._subnet = subnet
        self._token = token
        self._stable_id = stable_id
        self._lazy_links = lazy_links
        self._join_state = JoinState.IDLE
        self._id: str | None = None
        self._previous_id: str | None = None  # our id before the last connection loss
        self._numbers = itertools.count(1)
        self._records: dict[Request, _Record] = {}
        self._alias_queues: dict[str, deque[_Record]] = {}  # binds and shutdowns, by alias
        self._connects: dict[str, _Record] = {}  # by clientConnectionId
        self._aliases: dict[str, str] = {}  # every alias we know -> its owner's id
        self._bound: set[str] = set()
        self._connection_aliases: set[str] = set()
        self._accepting: set[str] = set()
        self._peers: set[str] = set()
        # Connection aliases of connects to ourselves whose listener copy is still to come.
        self._echoes: set[str] = set()

    # --- read-only views ------------------------------------------------------------------

    @property
    def subnet(self) -> str:
        """The subnet this client joins, e.g. ``"10.0.0"``."""
        return self._subnet

    @property
    def id(self) -> str | None:
        """Our id (e.g. ``"10.0.0.1"``) while joined, else ``None``."""
        return self._id

    @property
    def join_state(self) -> JoinState:
        """The state of the current session."""
        return self._join_state

    @property
    def aliases(self) -> Mapping[str, str]:
        """A snapshot of every alias we know of (ours included), mapped to its owner's id."""
        return MappingProxyType(dict(self._aliases))

    @property
    def bound_aliases(self) -> frozenset[str]:
        """Our aliases from binds (including a cancelled bind's until it is undone)."""
        return frozenset(self._bound)

    @property
    def connection_aliases(self) -> frozenset[str]:
        """Our connection aliases: the local ends of our successful connects."""
        return frozenset(self._connection_aliases)

    @property
    def accepting_aliases(self) -> frozenset[str]:
        """Bound aliases we sent ``accepting`` for and that got no ``accept`` since."""
        return frozenset(self._accepting)

    @property
    def peers(self) -> frozenset[str]:
        """Ids of the nodes we were introduced to (greeting or offer) that did not leave."""
        return frozenset(self._peers)

    @property
    def pending_requests(self) -> tuple[Request, ...]:
        """The requests waiting for an answer that were not cancelled, oldest first."""
        return tuple(
            r.request
            for r in self._records.values()
            if r.state in (RequestState.PENDING, RequestState.HALF_CONNECTED) and not r.internal
        )

    # --- the session ----------------------------------------------------------------------

    def knock(self) -> Knock:
        """Start a session: the message to send first on a new WebSocket.

        Returns:
            ``knock{subnet, token}``, with ``id``: our previous id, once we
            had one (docs/protocol.md, "Stable addresses"; original servers
            read only ``subnet``).

        Raises:
            LocalProtocolError: not idle (call :meth:`connection_lost` after a
                previous session).
        """
        self._join_state = _step(
            JOIN_TRANSITIONS, self._join_state, JoinInput.KNOCK, LocalProtocolError
        )
        previous = self._previous_id if self._stable_id else None
        lazy = True if self._lazy_links else None
        return Knock(subnet=self._subnet, id=previous, token=self._token, lazy_links=lazy)

    def connection_lost(
        self, reason: str = "connection to the signaling server lost"
    ) -> list[Event]:
        """The WebSocket closed: end the session and fail every request in flight.

        Idempotent. The server forgets our id and aliases when we leave, so
        this client forgets them too; the next session starts with :meth:`knock`.

        Args:
            reason: a human-readable reason, copied into the events.

        Returns:
            :class:`Disconnected` if we were joined, then one
            :class:`RequestFailed` per request that was waiting for an answer
            (cancelled requests end silently).
        """
        events: list[Event] = []
        if self._join_state is JoinState.JOINED:
            assert self._id is not None
            events.append(Disconnected(id=self._id, reason=reason))
            self._previous_id = self._id
        for record in self._records.values():
            state = _step(
                REQUEST_TRANSITIONS, record.state, RequestInput.CONNECTION_LOST, AssertionError
            )
            if state is RequestState.FAILED and not record.internal:
                events.append(RequestFailed(request=record.request, reason=reason))
        self._join_state = _step(
            JOIN_TRANSITIONS, self._join_state, JoinInput.CONNECTION_LOST, AssertionError
        )
        self._id = None
        for table in (self._records, self._alias_queues, self._connects, self._aliases):
            table.clear()
        for aliases in (self._bound, self._connection_aliases, self._accepting, self._peers):
            aliases.clear()
        self._echoes.clear()
        return events

    # --- requests -------------------------------------------------------------------------

    def bind(self, alias: str) -> tuple[Request, list[Message]]:
        """Ask to bind ``alias`` (docs/protocol.md, "Bind and listen").

        Args:
            alias: ``"<our id>:<port>"``, or a port of an address that is no
                other node's id (``"127.0.0.1:1234"``: the server refuses
                another node's address, docs/protocol.md, "Bind and listen").

        Returns:
            The request (answered by :class:`BindSucceeded` or
            :class:`BindRejected`) and the messages to send.

        Raises:
            LocalProtocolError: not joined, ``alias`` is not a valid alias,
                or it is on the id of a node we know.
        """
        return self._alias_request(RequestKind.BIND, alias, Bind)

    def shutdown(self, alias: str) -> tuple[Request, list[Message]]:
        """Ask to release our ``alias``, bound or a connection's (docs/protocol.md, "Shutdown").

        Like closing a socket, a shutdown takes effect even if it is
        cancelled later: the late answer then yields :class:`AliasRemoved`
        for our id (or nothing if the shutdown was rejected).

        Args:
            alias: an alias we hold: ``"<our id>:<port>"``, or one we bound
                on another address.

        Returns:
            The request (answered by :class:`ShutdownSucceeded` or
            :class:`ShutdownRejected`) and the messages to send.

        Raises:
            LocalProtocolError: not joined, ``alias`` is not a valid alias,
                or it is on another address than our id that we neither hold
                nor asked for in this session (e.g. an alias of our previous
                id: the server would take it for spoofing).
        """
        node_id = self._joined_id()
        if (
            parse_alias(alias)[0] != node_id
            and alias not in self._bound
            and alias not in self._alias_queues
        ):
            raise LocalProtocolError(f"{alias!r:.80} is not an alias we hold ({node_id})")
        return self._alias_request(RequestKind.SHUTDOWN, alias, Shutdown)

    def accept(self, alias: str) -> list[Message]:
        """Tell the server we accept connections on our bound ``alias``.

        No answer comes back; each connection arrives as an
        :class:`IncomingConnection`. Send it again after each one to keep
        accepting (docs/protocol.md, "Bind and listen").

        Args:
            alias: one of :attr:`bound_aliases`.

        Returns:
            The messages to send (one ``accepting``).

        Raises:
            LocalProtocolError: not joined, or ``alias`` is not bound by us.
        """
        node_id = self._joined_id()
        if alias not in self._bound:
            raise LocalProtocolError(f"cannot accept on {alias!r:.80}: not bound by us")
        self._accepting.add(alias)
        return [Accepting(id=node_id, alias=alias)]

    def connect(
        self, remote_alias: str, connection_id: str | None = None
    ) -> tuple[Request, list[Message]]:
        """Ask to connect to ``remote_alias`` (docs/protocol.md, "Connect").

        Args:
            remote_alias: the ``"<id>:<port>"`` to connect to.
            connection_id: the ``clientConnectionId``; a new UUID v4 string
                when ``None``.

        Returns:
            The request (answered by :class:`ConnectSucceeded` or
            :class:`ConnectRefused`) and the messages to send.

        Raises:
            LocalProtocolError: not joined, an invalid alias, or a
                ``connection_id`` already in use.
        """
        node_id = self._joined_id()
        if connection_id is None:
            connection_id = str(uuid.uuid4())
        if connection_id in self._connects:
            raise LocalProtocolError(f"connection id {connection_id!r:.80} is already in use")
        message = Connect(id=node_id, client_connection_id=connection_id, remote_alias=remote_alias)
        request = Request(
            kind=RequestKind.CONNECT,
            alias=remote_alias,
            number=next(self._numbers),
            connection_id=connection_id,
        )
        record = _Record(request)
        self._records[request] = self._connects[connection_id] = record
        return request, [message]

    def cancel(self, request: Request) -> list[Message]:
        """Forget a request still waiting for its answer.

        Its answer, when it comes, is absorbed. If that answer is a success
        that leaves us holding an alias, a :class:`CancelledRequestSucceeded`
        event carries the shutdown that undoes it; if the success is already
        known (a connect that saw its local alias), the undo is returned here
        instead. No undo is made when a later request of ours releases the
        alias anyway (a shutdown of it) or takes it over (a later bind of the
        same alias, which then succeeds). A cancelled shutdown takes effect
        anyway. Idempotent.

        Args:
            request: a request returned by this object and not yet answered.

        Returns:
            The messages to send (empty, or one ``shutdown``).

        Raises:
            LocalProtocolError: the request is unknown or already answered.
        """
        record = self._records.get(request)
        if record is None or record.internal:
            raise LocalProtocolError(f"not a request waiting for an answer: {request!r:.120}")
        record.state = _step(
            REQUEST_TRANSITIONS, record.state, RequestInput.CANCEL, LocalProtocolError
        )
        if record.local_alias is not None and record.state is RequestState.CANCELLED_HALF:
            alias, record.local_alias = record.local_alias, None
            undo = self._hand_over(alias, adopt=False)
            return [] if undo is None else [undo]
        return []

    # --- messages to peers ----------------------------------------------------------------

    def offer(self, answerer_id: str, sdp: str) -> Offer:
        """Build our SDP offer for ``answerer_id`` (after a :class:`PeerGreeted`).

        Raises:
            LocalProtocolError: not joined, ``answerer_id`` is us or invalid, or bad SDP.
        """
        return Offer(offerer_id=self._joined_id(), answerer_id=self._peer(answerer_id), offer=sdp)

    def answer(self, offerer_id: str, sdp: str) -> Answer:
        """Build our SDP answer to ``offerer_id``'s offer (after an :class:`OfferReceived`).

        Raises:
            LocalProtocolError: not joined, ``offerer_id`` is us or invalid, or bad SDP.
        """
        return Answer(offerer_id=self._peer(offerer_id), answerer_id=self._joined_id(), answer=sdp)

    def candidate(self, remote_id: str, candidate: str) -> Candidate:
        """Build a message trickling our ICE ``candidate`` (a JSON string) to ``remote_id``.

        Raises:
            LocalProtocolError: not joined, ``remote_id`` is us or invalid, or a bad candidate.
        """
        return Candidate(
            offerer_id=self._joined_id(), answerer_id=self._peer(remote_id), candidate=candidate
        )

    # --- input ----------------------------------------------------------------------------

    def receive_data(self, data: str | bytes) -> list[Event]:
        """Decode one WebSocket text frame and :meth:`receive` it.

        Raises:
            RemoteProtocolError: the frame is not a valid message, or the
                message makes no sense now (nothing changed).
        """
        return self.receive(decode(data))

    def receive(self, message: Message) -> list[Event]:
        """Process one message from the server.

        Args:
            message: a decoded signaling message.

        Returns:
            The events it caused, in order (often one, sometimes none).

        Raises:
            RemoteProtocolError: the message makes no sense in this state
                (nothing changed; the caller may ignore it or drop the server).
        """
        if isinstance(message, Acknowledged):
            return self._on_acknowledged(message)
        if (self._join_state, JoinInput.SERVER_MESSAGE) not in JOIN_TRANSITIONS:
            raise RemoteProtocolError(
                f"{message.OPCODE!r} in state {self._join_state.value!r}: not joined"
            )
        node_id = self._id
        if isinstance(message, Alias):
            return self._on_alias(message)
        if isinstance(message, Greeting):
            peer = self._remote_peer(message.answerer_id, message.offerer_id == node_id)
            self._peers.add(peer)
            return [PeerGreeted(peer_id=peer)]
        if isinstance(message, Offer):
            peer = self._remote_peer(message.offerer_id, message.answerer_id == node_id)
            self._peers.add(peer)
            return [OfferReceived(peer_id=peer, sdp=message.offer)]
        if isinstance(message, Answer):
            peer = self._remote_peer(message.answerer_id, message.offerer_id == node_id)
            return [AnswerReceived(peer_id=peer, sdp=message.answer)]
        if isinstance(message, Candidate):
            peer = self._remote_peer(message.offerer_id, message.answerer_id == node_id)
            return [CandidateReceived(peer_id=peer, candidate=message.candidate)]
        if isinstance(message, Accept):
            if message.bound_alias not in self._bound:
                raise RemoteProtocolError(f"accept for {message.bound_alias!r}: not bound by us")
            self._accepting.discard(message.bound_alias)
            return [
                IncomingConnection(
                    bound_alias=message.bound_alias, client_alias=message.client_alias
                )
            ]
        if isinstance(message, Goodbye):
            return self._on_goodbye(message)
        raise RemoteProtocolError(f"{message.OPCODE!r} is sent by nodes, not by the server")

    # --- internals ------------------------------------------------------------------------

    def _joined_id(self) -> str:
        if self._id is None:
            raise LocalProtocolError(f"not joined (state {self._join_state.value!r})")
        return self._id

    def _peer(self, peer_id: str) -> str:
        if peer_id == self._joined_id():
            raise LocalProtocolError("a node does not signal to itself")
        return peer_id

    def _remote_peer(self, peer_id: str, addressed_to_us: bool) -> str:
        """Check a peer id the server named; RemoteProtocolError if the message is not for us."""
        if not addressed_to_us:
            raise RemoteProtocolError("the server relayed a message meant for another node")
        if peer_id == self._id or split_id(peer_id)[0] != self._subnet:
            raise RemoteProtocolError(f"{peer_id!r} is not another node of {self._subnet!r}")
        return peer_id

    def _alias_request(
        self, kind: RequestKind, alias: str, message_type: type[Bind] | type[Shutdown]
    ) -> tuple[Request, list[Message]]:
        node_id = self._joined_id()
        address = parse_alias(alias)[0]
        if address in self._peers:  # the server would refuse it (and close us for a shutdown)
            raise LocalProtocolError(f"{alias!r:.80} is on the address of node {address}")
        request = Request(kind=kind, alias=alias, number=next(self._numbers))
        self._add_alias_record(_Record(request))
        return request, [message_type(id=node_id, alias=alias)]

    def _add_alias_record(self, record: _Record) -> None:
        self._records[record.request] = record
        self._alias_queues.setdefault(record.request.alias, deque()).append(record)

    def _undo(self, alias: str) -> Shutdown:
        """Register an internal shutdown of our ``alias`` and return its message."""
        node_id = self._joined_id()
        request = Request(kind=RequestKind.SHUTDOWN, alias=alias, number=next(self._numbers))
        self._add_alias_record(_Record(request, internal=True))
        return Shutdown(id=node_id, alias=alias)

    def _hand_over(self, alias: str, *, adopt: bool) -> Shutdown | None:
        """A cancelled request left us holding our ``alias``: who releases it?

        The server has already seen every request we sent after the
        cancelled one, and those waiting in ``alias``'s queue were all sent
        after it. If one of them is a shutdown, it releases the alias (binds
        before it are refused: we hold the alias). Otherwise, when ``adopt``
        (the holder is a bind, not a connection), the first later bind, which
        the server refuses because we hold the alias, *adopts* it: its refusal
        counts as a success. Otherwise we must release the alias ourselves.

        Returns:
            The undo's message (a shutdown registered as an internal request),
            or ``None`` when a later request takes the alias over.
        """
        queue = self._alias_queues.get(alias, deque())
        if any(later.request.kind is RequestKind.SHUTDOWN for later in queue):
            return None
        if adopt and queue:
            queue[0].adopted = True
            return None
        return self._undo(alias)

    def _finish(self, record: _Record, state: RequestState) -> None:
        record.state = state
        if state in TERMINAL_REQUEST_STATES:
            del self._records[record.request]
            if record.request.connection_id is not None:
                del self._connects[record.request.connection_id]

    def _own(self, alias: str, *, connection: bool = False) -> None:
        assert self._id is not None
        self._aliases[alias] = self._id
        (self._connection_aliases if connection else self._bound).add(alias)

    def _forget(self, alias: str) -> None:
        self._aliases.pop(alias, None)
        for aliases in (self._bound, self._connection_aliases, self._accepting, self._echoes):
            aliases.discard(alias)

    def _on_acknowledged(self, message: Acknowledged) -> list[Event]:
        event = JoinInput.ACKNOWLEDGED_REJECTED if message.rejected else JoinInput.ACKNOWLEDGED
        state = _step(JOIN_TRANSITIONS, self._join_state, event, RemoteProtocolError)
        if message.rejected:
            self._join_state = state
            return [JoinRejected(subnet=self._subnet)]
        if split_id(message.id)[0] != self._subnet:
            raise RemoteProtocolError(f"id {message.id!r} is not in subnet {self._subnet!r}")
        self._join_state = state
        self._id = message.id
        events: list[Event] = [Joined(id=message.id)]
        previous, self._previous_id = self._previous_id, None
        if previous is not None:
            if previous != message.id:
                events.append(IdChanged(old_id=previous, new_id=message.id))
            events.append(Reconnected(id=message.id))
        return events

    def _on_goodbye(self, message: Goodbye) -> list[Event]:
        if message.id == self._id:
            raise RemoteProtocolError("the server said goodbye to us on our own connection")
        owned = sorted(alias for alias, owner in self._aliases.items() if owner == message.id)
        for alias in owned:
            del self._aliases[alias]
        self._peers.discard(message.id)
        events: list[Event] = [AliasRemoved(owner_id=message.id, alias=a) for a in owned]
        events.append(PeerLeft(peer_id=message.id))
        return events

    def _on_alias(self, message: Alias) -> list[Event]:
        if message.client_connection_id is not None:
            return self._on_connection_alias(message, message.client_connection_id)
        if message.id == self._id and message.set and message.alias in self._echoes:
            # The listener's copy of our own connection alias, when we connected to ourselves:
            # not an answer to a bind or shutdown of that alias, whatever is pending.
            self._echoes.discard(message.alias)
            return []
        queue = self._alias_queues.get(message.alias) if message.id == self._id else None
        if queue:
            record = queue.popleft()
            if not queue:
                del self._alias_queues[message.alias]
            return self._on_alias_answer(record, message.set, message.is_member_address is True)
        known = self._aliases.get(message.alias)
        if message.set:
            if known == message.id:
                return []  # e.g. the listener's copy of our own connection alias
            events: list[Event] = []
            if known is not None:
                self._forget(message.alias)
                events.append(AliasRemoved(owner_id=known, alias=message.alias))
            if message.id == self._id:
                self._own(message.alias)
            else:
                self._aliases[message.alias] = message.id
            events.append(AliasAdded(owner_id=message.id, alias=message.alias))
            return events
        if known != message.id:
            return []  # never seen, or already removed by its owner's goodbye
        self._forget(message.alias)
        return [AliasRemoved(owner_id=message.id, alias=message.alias)]

    def _on_alias_answer(
        self, record: _Record, set_: bool, member_address: bool = False
    ) -> list[Event]:
        """An alias for our id answering our oldest bind/shutdown of that alias.

        ``member_address``: the server said a refused bind is on another
        member's id (``isMemberAddress``, ours).
        """
        request = record.request
        alias = request.alias
        ours = self._aliases.get(alias) == self._id
        # An adopted bind is refused because we hold the alias already: that is a success.
        bind = request.kind is RequestKind.BIND
        positive = (set_ or (record.adopted and ours)) if bind else not set_
        was_cancelled = record.state is RequestState.CANCELLED
        state = _step(
            REQUEST_TRANSITIONS,
            record.state,
            RequestInput.ACCEPTED if positive else RequestInput.REFUSED,
            AssertionError,
        )
        self._finish(record, state)
        released = request.kind is RequestKind.SHUTDOWN and ours
        if request.kind is RequestKind.BIND and positive:
            self._own(alias)
        elif released:
            self._forget(alias)  # released, or the server says it was never ours
        if record.internal:
            return []
        if request.kind is RequestKind.BIND:
            if was_cancelled:
                undo = self._hand_over(alias, adopt=True) if positive else None
                if undo is None:
                    return []
                return [CancelledRequestSucceeded(request=request, alias=alias, undo=undo)]
            if positive:
                return [BindSucceeded(request=request, alias=alias)]
            return [BindRejected(request=request, alias=alias, member_address=member_address)]
        if was_cancelled:  # a shutdown takes effect even when cancelled: say so
            assert self._id is not None
            return [AliasRemoved(owner_id=self._id, alias=alias)] if positive and released else []
        if positive:
            return [ShutdownSucceeded(request=request, alias=alias)]
        return [ShutdownRejected(request=request, alias=alias)]

    def _on_connection_alias(self, message: Alias, connection_id: str) -> list[Event]:
        """An alias carrying a clientConnectionId: an answer to one of our connects."""
        record = self._connects.get(connection_id)
        if record is None:
            raise RemoteProtocolError(f"alias for unknown clientConnectionId {connection_id!r}")
        request = record.request
        if not message.set:
            if message.id != self._id:
                raise RemoteProtocolError("a connect refusal must name our id")
            was_pending = record.state is RequestState.PENDING
            state = _step(
                REQUEST_TRANSITIONS, record.state, RequestInput.REFUSED, RemoteProtocolError
            )
            self._finish(record, state)
            return (
                [ConnectRefused(request=request, remote_alias=request.alias)] if was_pending else []
            )
        if message.is_connection_alias:
            if (
                message.id != self._id
                or parse_alias(message.alias)[0] != self._id
                or record.local_alias is not None
                or message.alias in self._aliases
            ):
                raise RemoteProtocolError(f"unexpected connection alias {message.alias!r}")
        elif record.remote_seen or message.alias != request.alias:
            raise RemoteProtocolError(f"unexpected remote alias {message.alias!r} for a connect")
        cancelled = record.state in (RequestState.CANCELLED, RequestState.CANCELLED_HALF)
        first = record.state in (RequestState.PENDING, RequestState.CANCELLED)
        state = _step(
            REQUEST_TRANSITIONS,
            record.state,
            RequestInput.PARTIAL if first else RequestInput.ACCEPTED,
            AssertionError,
        )
        events: list[Event] = []
        if message.is_connection_alias:
            self._own(message.alias, connection=True)
            if parse_alias(request.alias)[0] == self._id or request.alias in self._bound:
                self._echoes.add(message.alias)  # the server sends the listener (us) a copy
            if cancelled:
                undo = self._hand_over(message.alias, adopt=False)
                if undo is not None:
                    events.append(
                        CancelledRequestSucceeded(request=request, alias=message.alias, undo=undo)
                    )
            else:
                record.local_alias = message.alias
        else:
            record.remote_seen = True
            record.remote_id = message.id
            if message.alias not in self._aliases:
                self._aliases[message.alias] = message.id
                events.append(AliasAdded(owner_id=message.id, alias=message.alias))
        if state is RequestState.SUCCEEDED:
            assert record.local_alias is not None and record.remote_id is not None
            events.append(
                ConnectSucceeded(
                    request=request,
                    local_alias=record.local_alias,
                    remote_alias=request.alias,
                    remote_id=record.remote_id,
                )
            )
        self._finish(record, state)
        return events
