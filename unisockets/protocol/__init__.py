"""The sans-IO core of unisockets: no I/O, no clock, no async, standard library only.

Everything here takes inputs (decoded messages, "a client connected", bytes of
a data channel) and returns outputs (messages to send, events). Any runtime can
drive it: the trio drivers in :mod:`unisockets.signaling` and
:mod:`unisockets.net`, plain asyncio, Pyodide in a browser, a test.
"""

from . import addresses, events, messages
from .addresses import *  # noqa: F403 - addresses.__all__
from .client import SignalingClientProtocol
from .client_states import render_mermaid as render_client_mermaid
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import *  # noqa: F403 - events.__all__
from .messages import *  # noqa: F403 - messages.__all__
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
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "decode",
    "encode",
]
# Each of these modules lists its public names once, in its own __all__.
__all__ += addresses.__all__
__all__ += events.__all__
__all__ += messages.__all__
