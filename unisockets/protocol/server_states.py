"""The signaling server's state machines, as data (docs/protocol.md, "State machines").

Two rules, as in h11's ``_state.py``:

1. Every transition the signaling server makes is listed in one of the two
   tables below. :mod:`unisockets.protocol.server` looks transitions up
   here and never decides a next state on its own.
2. The tables know nothing of messages, keys or I/O: they map
   ``(state, input)`` to the next state, and a missing pair means "not
   allowed". What happens on a missing pair is written once per input below.

**Clients** (one per WebSocket connection, :data:`CLIENT_TRANSITIONS`). A
client is ``CONNECTED`` when its connection opens, becomes ``JOINED`` by a
``knock`` that gets an id, and is ``CLOSED`` when its connection closes. The
inputs are the opcodes a client may send, plus events: ``open``,
``close``, ``knock (subnet full)``, the rejected knock that leaves the
client ``CONNECTED`` (it may knock again), ``knock (grace)``, a knock that
waits in ``HELD`` for the end of the rejoin grace (``grace over``), and
``replaced``, a member whose node knocked again on a newer connection with
its id and token (docs/protocol.md, "Stable addresses"). A pair missing from the table is a
protocol violation: the server raises
:class:`~unisockets.protocol.errors.RemoteProtocolError` and changes nothing.
This covers a message before the knock, a second knock, and every
server → node opcode (``acknowledged``, ``greeting``, ``alias``, ``accept``,
``goodbye``) sent by a client.

**Aliases** (one per ``(member, port)``, and one per alias a member holds on
a claimed address, :data:`ALIAS_TRANSITIONS`; which addresses a member may
bind is :mod:`unisockets.protocol.server`'s rule). A port of
a member is ``FREE`` until a ``bind`` makes it ``BOUND``; ``accepting`` makes a
bound alias ``ACCEPTING`` and it stays so (a connection accepted on it does
not clear it, as in the original server) until ``shutdown`` or the owner's
``leave`` frees it. A ``connect`` allocates the connecting member's lowest
``FREE`` port as a ``CONNECTION`` alias, freed the same ways. A pair missing
from this table is not a violation but a refusal, answered as the original
server answers it:

- ``bind`` of a port the member holds (or of a claimed alias anybody holds):
  ``alias{set:false}`` to the binder.
- ``accepting`` on a port that is free or a connection alias: ignored, no
  reply. (The original server also marked a connection alias accepting;
  nodes never ask for that, and nobody can connect to the client end of a
  connection.)
- ``accept`` (a ``connect`` naming the alias) when it is not accepting: the
  connection is refused, ``alias{set:false, clientConnectionId}`` to the
  connecting member.
- ``shutdown`` of a port the member does not hold: ``alias{set:true}`` to the
  requester only.

:func:`render_mermaid` draws either table as a Mermaid state diagram for the
docs.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

__all__ = [
    "ALIAS_MACHINE",
    "ALIAS_TRANSITIONS",
    "CLIENT_MACHINE",
    "CLIENT_TRANSITIONS",
    "AliasInput",
    "AliasState",
    "ClientInput",
    "ClientState",
    "StateMachine",
    "render_mermaid",
]


class ClientState(enum.Enum):
    """The state of one client connection of the signaling server."""

    #: The WebSocket is open; the client has not joined (or its knock was rejected).
    CONNECTED = "CONNECTED"
    #: The client knocked while the server holds ids back for returning nodes
    #: (the rejoin grace after a start); it gets its id when the grace ends.
    HELD = "HELD"
    #: The client knocked and holds an id in a subnet: it is a *member*.
    JOINED = "JOINED"
    #: The WebSocket closed; the server forgot the client.
    CLOSED = "CLOSED"


class ClientInput(enum.Enum):
    """What can happen to a client: the opcodes it may send and five events."""

    OPEN = "open"
    KNOCK = "knock"
    KNOCK_REJECTED = "knock (subnet full)"
    #: A knock that must wait for the end of the rejoin grace.
    KNOCK_HELD = "knock (grace)"
    #: The rejoin grace ended: a held knock is answered.
    GRACE_OVER = "grace over"
    #: A newer connection of the same node (same id, same token) took its place.
    REPLACED = "replaced"
    OFFER = "offer"
    ANSWER = "answer"
    CANDIDATE = "candidate"
    BIND = "bind"
    ACCEPTING = "accepting"
    CONNECT = "connect"
    SHUTDOWN = "shutdown"
    CLOSE = "close"


class AliasState(enum.Enum):
    """The state of one port of one member."""

    #: Nobody holds the alias.
    FREE = "FREE"
    #: Bound by its owner (``bind``), not accepting connections.
    BOUND = "BOUND"
    #: Bound and accepting connections (``accepting``).
    ACCEPTING = "ACCEPTING"
    #: The local end of a connection, allocated by the server on ``connect``.
    CONNECTION = "CONNECTION"


class AliasInput(enum.Enum):
    """What can happen to an alias."""

    #: Its owner sent ``bind``.
    BIND = "bind"
    #: Its owner sent ``accepting``.
    ACCEPTING = "accepting"
    #: Someone sent ``connect`` naming it as ``remoteAlias``.
    ACCEPT = "accept"
    #: Its owner sent ``connect`` and the server picked this port for the connection.
    CONNECT = "connect"
    #: Its owner sent ``shutdown``.
    SHUTDOWN = "shutdown"
    #: Its owner left (its WebSocket closed).
    LEAVE = "leave"


_C = ClientState
_CI = ClientInput
_A = AliasState
_AI = AliasInput

#: ``(client state, input) -> next client state``; a missing pair is a protocol violation.
CLIENT_TRANSITIONS: Final[Mapping[tuple[ClientState, ClientInput], ClientState]] = MappingProxyType(
    {
        (_C.CONNECTED, _CI.KNOCK): _C.JOINED,
        (_C.CONNECTED, _CI.KNOCK_REJECTED): _C.CONNECTED,
        (_C.CONNECTED, _CI.KNOCK_HELD): _C.HELD,
        (_C.CONNECTED, _CI.CLOSE): _C.CLOSED,
        (_C.HELD, _CI.GRACE_OVER): _C.JOINED,
        (_C.HELD, _CI.KNOCK_REJECTED): _C.CONNECTED,
        (_C.HELD, _CI.CLOSE): _C.CLOSED,
        **{
            (_C.JOINED, opcode): _C.JOINED
            for opcode in (
                _CI.OFFER,
                _CI.ANSWER,
                _CI.CANDIDATE,
                _CI.BIND,
                _CI.ACCEPTING,
                _CI.CONNECT,
                _CI.SHUTDOWN,
            )
        },
        (_C.JOINED, _CI.CLOSE): _C.CLOSED,
        (_C.JOINED, _CI.REPLACED): _C.CLOSED,
    }
)

#: ``(alias state, input) -> next alias state``; a missing pair is a refusal (see above).
ALIAS_TRANSITIONS: Final[Mapping[tuple[AliasState, AliasInput], AliasState]] = MappingProxyType(
    {
        (_A.FREE, _AI.BIND): _A.BOUND,
        (_A.FREE, _AI.CONNECT): _A.CONNECTION,
        (_A.BOUND, _AI.ACCEPTING): _A.ACCEPTING,
        (_A.ACCEPTING, _AI.ACCEPTING): _A.ACCEPTING,
        (_A.ACCEPTING, _AI.ACCEPT): _A.ACCEPTING,
        (_A.BOUND, _AI.SHUTDOWN): _A.FREE,
        (_A.ACCEPTING, _AI.SHUTDOWN): _A.FREE,
        (_A.CONNECTION, _AI.SHUTDOWN): _A.FREE,
        (_A.BOUND, _AI.LEAVE): _A.FREE,
        (_A.ACCEPTING, _AI.LEAVE): _A.FREE,
        (_A.CONNECTION, _AI.LEAVE): _A.FREE,
    }
)

S = TypeVar("S", bound=enum.Enum)
I = TypeVar("I", bound=enum.Enum)  # noqa: E741 - "I" for input, as S for state


@dataclass(frozen=True, slots=True, kw_only=True)
class StateMachine(Generic[S, I]):
    """A transition table with what a diagram needs besides the table.

    Attributes:
        name: a title for the diagram, e.g. ``"signaling server: client"``.
        transitions: ``(state, input) -> next state``.
        initial: the state a new instance starts in.
        start_input: the input that creates an instance (the edge from the
            diagram's start point), or ``None`` to draw an unlabelled edge.
        final: the states in which an instance is forgotten (edges to the end point).
    """

    name: str
    transitions: Mapping[tuple[S, I], S]
    initial: S
    start_input: I | None
    final: frozenset[S]


#: The client table with its start (``open`` → ``CONNECTED``) and end (``CLOSED``).
CLIENT_MACHINE: Final = StateMachine(
    name="Signaling server: client connection",
    transitions=CLIENT_TRANSITIONS,
    initial=ClientState.CONNECTED,
    start_input=ClientInput.OPEN,
    final=frozenset({ClientState.CLOSED}),
)

#: The alias table; every port starts ``FREE`` and a freed alias is forgotten.
ALIAS_MACHINE: Final = StateMachine(
    name="Signaling server: alias (one port of one member)",
    transitions=ALIAS_TRANSITIONS,
    initial=AliasState.FREE,
    start_input=None,
    final=frozenset(),
)


def render_mermaid(machine: StateMachine[Any, Any] | None = None) -> str:
    """Render a state machine as a Mermaid ``stateDiagram-v2``, for the docs.

    Every ``(state, input) -> next`` pair of the table becomes one labelled
    edge; inputs that lead from the same state to the same next state share
    one edge, their labels joined by ``", "`` in table order. States are named
    by their enum value.

    Args:
        machine: the table to draw (any :class:`StateMachine`, also the
            client's in :mod:`unisockets.protocol.client_states`); ``None``
            draws the server's two: :data:`CLIENT_MACHINE`, a blank line, then
            :data:`ALIAS_MACHINE`.

    Returns:
        The diagram source: newline-separated lines, ending with a newline,
        starting with a ``---`` front-matter block holding the quoted title,
        then ``stateDiagram-v2``.
    """
    if machine is None:
        return render_mermaid(CLIENT_MACHINE) + "\n" + render_mermaid(ALIAS_MACHINE)
    edges: dict[tuple[str, str], list[str]] = {}
    for (state, event), target in machine.transitions.items():
        edges.setdefault((str(state.value), str(target.value)), []).append(str(event.value))
    lines = ["---", f"title: {json.dumps(machine.name)}", "---", "stateDiagram-v2"]
    start = f"    [*] --> {machine.initial.value}"
    if machine.start_input is not None:
        start += f": {machine.start_input.value}"
    lines.append(start)
    for (source_name, target_name), labels in edges.items():
        lines.append(f"    {source_name} --> {target_name}: {', '.join(labels)}")
    lines.extend(f"    {end.value} --> [*]" for end in sorted(machine.final, key=_by_value))
    return "\n".join(lines) + "\n"


def _by_value(state: enum.Enum) -> str:
    return str(state.value)
