"""The signaling client's state machines, as data (docs/protocol.md, "State machines").

The rules of :mod:`unisockets.protocol.server_states` hold here too: every
state change :class:`~unisockets.protocol.client.SignalingClientProtocol`
makes is a lookup in one of the two tables below, and a missing pair means
"not allowed" (a :class:`~unisockets.protocol.errors.LocalProtocolError` when
we asked for it, a :class:`~unisockets.protocol.errors.RemoteProtocolError`
when the server's message caused it; either way nothing changes).

**Join** (one per client object, :data:`JOIN_TRANSITIONS`): ``IDLE`` until we
send ``knock``, ``KNOCKING`` until ``acknowledged``, then ``JOINED`` or, when
the subnet is full, ``REJECTED``. Losing the WebSocket returns to ``IDLE``
from any state, so a driver can knock again on a new one. Server messages
other than ``acknowledged`` are only allowed while ``JOINED``.

**Requests** (one per bind, connect or shutdown, :data:`REQUEST_TRANSITIONS`):
``PENDING`` once sent. A bind or shutdown gets one answer (``positive
answer`` or ``negative answer``); a connect succeeds after two ``set:true``
aliases (``first of two aliases`` then ``positive answer``) or is refused by
one ``set:false``. A cancelled request stays until its answer arrives, so
that the answer is not mistaken for anything else (and a late success can be
undone), then ends ``ABANDONED``. Losing the WebSocket fails every request
still waiting. A request in a state of :data:`TERMINAL_REQUEST_STATES` is
forgotten.

:func:`render_mermaid` draws both tables for the docs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from .server_states import StateMachine
from .server_states import render_mermaid as render_machine

__all__ = [
    "JOIN_MACHINE",
    "JOIN_TRANSITIONS",
    "REQUEST_MACHINE",
    "REQUEST_TRANSITIONS",
    "TERMINAL_REQUEST_STATES",
    "JoinInput",
    "JoinState",
    "RequestInput",
    "RequestState",
    "render_mermaid",
]


class JoinState(enum.Enum):
    """The state of the client's session with the server (one WebSocket)."""

    #: No session: initially, and after the WebSocket closed.
    IDLE = "IDLE"
    #: ``knock`` sent, waiting for ``acknowledged``.
    KNOCKING = "KNOCKING"
    #: The server gave us an id.
    JOINED = "JOINED"
    #: The server rejected the knock: the subnet is full.
    REJECTED = "REJECTED"


class JoinInput(enum.Enum):
    """What moves the join state."""

    KNOCK = "knock"
    ACKNOWLEDGED = "acknowledged"
    ACKNOWLEDGED_REJECTED = "acknowledged (rejected)"
    #: Any other server message: greeting, offer, answer, candidate, alias, accept, goodbye.
    SERVER_MESSAGE = "server message"
    CONNECTION_LOST = "connection lost"


class RequestState(enum.Enum):
    """The state of one bind, connect or shutdown request."""

    #: Sent; no answer yet.
    PENDING = "PENDING"
    #: A connect saw one of its two ``set:true`` aliases.
    HALF_CONNECTED = "HALF_CONNECTED"
    #: Cancelled; its answer will be absorbed (and a success undone).
    CANCELLED = "CANCELLED"
    #: A half-connected connect, cancelled.
    CANCELLED_HALF = "CANCELLED_HALF"
    SUCCEEDED = "SUCCEEDED"
    REJECTED = "REJECTED"
    #: The WebSocket closed before the answer came.
    FAILED = "FAILED"
    #: Cancelled, and its answer came (or never will).
    ABANDONED = "ABANDONED"


class RequestInput(enum.Enum):
    """What moves a request's state."""

    PARTIAL = "first of two aliases"
    ACCEPTED = "positive answer"
    REFUSED = "negative answer"
    CANCEL = "cancel"
    CONNECTION_LOST = "connection lost"


_J, _JI = JoinState, JoinInput

#: ``(join state, input) -> next join state``; a missing pair is not allowed.
JOIN_TRANSITIONS: Final[Mapping[tuple[JoinState, JoinInput], JoinState]] = MappingProxyType(
    {
        (_J.IDLE, _JI.KNOCK): _J.KNOCKING,
        (_J.KNOCKING, _JI.ACKNOWLEDGED): _J.JOINED,
        (_J.KNOCKING, _JI.ACKNOWLEDGED_REJECTED): _J.REJECTED,
        (_J.JOINED, _JI.SERVER_MESSAGE): _J.JOINED,
        **{(state, _JI.CONNECTION_LOST): _J.IDLE for state in JoinState},
    }
)

_R, _RI = RequestState, RequestInput

#: ``(request state, input) -> next request state``; a missing pair is not allowed.
REQUEST_TRANSITIONS: Final[Mapping[tuple[RequestState, RequestInput], RequestState]] = (
    MappingProxyType(
        {
            (_R.PENDING, _RI.PARTIAL): _R.HALF_CONNECTED,
            (_R.PENDING, _RI.ACCEPTED): _R.SUCCEEDED,
            (_R.PENDING, _RI.REFUSED): _R.REJECTED,
            (_R.PENDING, _RI.CANCEL): _R.CANCELLED,
            (_R.PENDING, _RI.CONNECTION_LOST): _R.FAILED,
            (_R.HALF_CONNECTED, _RI.ACCEPTED): _R.SUCCEEDED,
            (_R.HALF_CONNECTED, _RI.CANCEL): _R.CANCELLED_HALF,
            (_R.HALF_CONNECTED, _RI.CONNECTION_LOST): _R.FAILED,
            (_R.CANCELLED, _RI.PARTIAL): _R.CANCELLED_HALF,
            (_R.CANCELLED, _RI.ACCEPTED): _R.ABANDONED,
            (_R.CANCELLED, _RI.REFUSED): _R.ABANDONED,
            (_R.CANCELLED, _RI.CANCEL): _R.CANCELLED,
            (_R.CANCELLED, _RI.CONNECTION_LOST): _R.ABANDONED,
            (_R.CANCELLED_HALF, _RI.ACCEPTED): _R.ABANDONED,
            (_R.CANCELLED_HALF, _RI.CANCEL): _R.CANCELLED_HALF,
            (_R.CANCELLED_HALF, _RI.CONNECTION_LOST): _R.ABANDONED,
        }
    )
)

#: Request states that end a request; the client then forgets it.
TERMINAL_REQUEST_STATES: Final = frozenset({_R.SUCCEEDED, _R.REJECTED, _R.FAILED, _R.ABANDONED})

#: The join table with its start and (no) end states, for :func:`render_mermaid`.
JOIN_MACHINE: Final = StateMachine(
    name="Signaling client: session",
    transitions=JOIN_TRANSITIONS,
    initial=JoinState.IDLE,
    start_input=None,
    final=frozenset[JoinState](),
)

#: The request table; a request starts ``PENDING`` when sent and is forgotten when it ends.
REQUEST_MACHINE: Final = StateMachine(
    name="Signaling client: request (bind, connect, shutdown)",
    transitions=REQUEST_TRANSITIONS,
    initial=RequestState.PENDING,
    start_input=None,
    final=TERMINAL_REQUEST_STATES,
)

del _J, _JI, _R, _RI


def render_mermaid() -> str:
    """Draw the client's two tables as Mermaid state diagrams, for the docs.

    Uses :func:`unisockets.protocol.server_states.render_mermaid`, so the
    client's diagrams look like the server's.

    Returns:
        Two ``stateDiagram-v2`` sources (each with a ``---`` title block),
        :data:`JOIN_MACHINE` then :data:`REQUEST_MACHINE`, separated by a
        blank line; ends with a newline.
    """
    return render_machine(JOIN_MACHINE) + "\n" + render_machine(REQUEST_MACHINE)
