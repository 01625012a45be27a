"""The sans-IO core of unisockets: no I/O, no clock, no async, standard library only.

Everything here takes inputs (decoded messages, "a client connected", bytes of
a data channel) and returns outputs (messages to send, events). Any runtime can
drive it: the trio drivers in :mod:`unisockets.signaling` and
:mod:`unisockets.net`, plain asyncio, Pyodide in a browser, a test.
"""

from . import events
from .addresses import (
    format_alias,
    is_alias,
    is_id,
    is_subnet,
    make_id,
    parse_alias,
    split_id,
)
from .client import SignalingClientProtocol
from .client_states import render_mermaid as render_client_mermaid
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import *  # noqa: F403 - every event is public here: events.__all__
from .messages import (
    MESSAGE_TYPES,
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
from .server import DEFAULT_SUFFIXES, AliasInfo, Outgoing, SignalingServerProtocol
from .server_states import (
    ALIAS_MACHINE,
    CLIENT_MACHINE,
    AliasState,
    ClientState,
    StateMachine,
)
from .server_states import render_mermaid as render_server_mermaid
from .socket_states import (
    SOCKET_MACHINE,
    Refusal,
    SocketInput,
    SocketState,
    SocketStateMachine,
)
from .stream import (
    DEFAULT_WINDOW,
    CreditGranted,
    DataReceived,
    EofReceived,
    FrameType,
    ResetReceived,
    StreamConnection,
    StreamEvent,
    StreamState,
)
from .stream import render_mermaid as render_stream_mermaid
from .wire import MAX_MESSAGE_LENGTH, decode, encode

__all__ = [
    "render_client_mermaid",
    "DEFAULT_WINDOW",
    "CreditGranted",
    "DataReceived",
    "EofReceived",
    "FrameType",
    "ResetReceived",
    "StreamConnection",
    "StreamEvent",
    "StreamState",
    "SignalingClientProtocol",
    "render_stream_mermaid",
    "ALIAS_MACHINE",
    "CLIENT_MACHINE",
    "DEFAULT_SUFFIXES",
    "AliasInfo",
    "AliasState",
    "ClientState",
    "Outgoing",
    "SignalingServerProtocol",
    "StateMachine",
    "render_server_mermaid",
    "SOCKET_MACHINE",
    "Refusal",
    "SocketInput",
    "SocketState",
    "SocketStateMachine",
    "MAX_MESSAGE_LENGTH",
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
    "LocalProtocolError",
    "Message",
    "Offer",
    "ProtocolError",
    "RemoteProtocolError",
    "Shutdown",
    "decode",
    "encode",
    "format_alias",
    "is_alias",
    "is_id",
    "is_subnet",
    "make_id",
    "parse_alias",
    "split_id",
]
__all__ += events.__all__  # the events, listed once (in events.py)
