"""The sans-IO core of unisockets: no I/O, no clock, no async, standard library only.

Everything here takes inputs (decoded messages, "a client connected", bytes of
a data channel) and returns outputs (messages to send, events). Any runtime can
drive it: the trio drivers in :mod:`unisockets.signaling` and
:mod:`unisockets.net`, plain asyncio, Pyodide in a browser, a test.
"""

from .addresses import (
    format_alias,
    is_alias,
    is_id,
    is_subnet,
    make_id,
    parse_alias,
    split_id,
)
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
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
from .wire import MAX_MESSAGE_LENGTH, decode, encode

__all__ = [
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
