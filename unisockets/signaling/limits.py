"""The limits a public signaling server enforces on its clients, and their defaults.

:class:`ServerLimits` gathers every knob that protects the signaling server
from its clients, passed as one object:
``open_signaling_server(limits=ServerLimits(max_clients=100))``
(:func:`~unisockets.signaling.server.open_signaling_server`); :class:`TokenBucket` (from
:mod:`unisockets.protocol.pacing`, shared with the clients that pace
themselves under these limits) is the per-client rate limiter. Both are plain
values: no I/O, no clock (the caller passes the time in), so they are tested
without sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from unisockets.protocol.pacing import TokenBucket

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_MAX_HANDSHAKES",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_MESSAGES_PER_SECOND",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_REJOIN_GRACE",
    "DEFAULT_SEND_QUEUE_BYTES",
    "ServerLimits",
    "TokenBucket",
]

#: Seconds between two WebSocket pings to a client (the original server's 30 s).
DEFAULT_PING_INTERVAL = 30.0
#: Largest message a client may send: 64 KiB, in characters of a text frame.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
#: Messages a client may send per second, sustained. Each connection costs a
#: node about two messages (``connect`` and the ``shutdown`` that frees its
#: connection alias; the listening side re-sends ``accepting``), so this allows
#: 250 new connections a second per node.
DEFAULT_MAX_MESSAGES_PER_SECOND = 500.0
#: Messages a client may send at once: a node opening 1,000 connections at once,
#: or joining a subnet of 254 members (it answers 253 offers and trickles a few
#: candidates to each).
DEFAULT_BURST = 2500
#: Clients connected at once, members or not.
DEFAULT_MAX_CLIENTS = 1024
#: TCP connections at once that have not finished the WebSocket upgrade (TLS, HTTP).
DEFAULT_MAX_HANDSHAKES = 256
#: Outgoing bytes waiting for one client (beyond what the kernel buffers) before it
#: counts as a slow consumer: 1 MiB, about 250 SDP offers.
DEFAULT_SEND_QUEUE_BYTES = 1024 * 1024
#: Seconds from the TCP connection until the client has joined (TLS, HTTP upgrade, knock).
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: Seconds allowed for a closing client to take its last messages and the close frame.
DEFAULT_CLOSE_TIMEOUT = 5.0
#: Seconds the server holds ids back for returning nodes after it starts (0: off).
DEFAULT_REJOIN_GRACE = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """What the signaling server allows each client; every field has a public-server default.

    Attributes:
        ping_interval: seconds between WebSocket pings; a client that has not
            answered a ping when the next one is due is dropped (close 1011).
        max_message_size: largest incoming message, in characters of a text
            frame (bytes of a binary one); larger ones close the client with 1009.
        max_messages_per_second: sustained rate of incoming messages per
            client; exceeding the bucket closes the client with 1008.
        burst: size of the token bucket (messages a client may send at once).
        max_clients: WebSocket clients at once; one more gets close 1013.
        max_handshakes: TCP connections at once that have not finished the
            WebSocket upgrade (TLS and the HTTP request); one more is closed
            at once, without a response. Bounds what idle or slow connections
            (slowloris) can hold: sockets, memory and a task each, for up to
            ``handshake_timeout``.
        send_queue_bytes: outgoing bytes (whole WebSocket frames) queued
            for one client; a message that would go over it closes the
            client with 1008 ("slow consumer"). The queue fills only once
            the kernel's socket buffer is full, i.e. when the client does not
            read at the rate others send to it.
        handshake_timeout: seconds from the TCP connection until the client
            must have joined: TLS, the HTTP upgrade and a ``knock`` that got
            an id. Otherwise it is dropped (close 1008 if the WebSocket is
            open, else the TCP connection is closed).
        close_timeout: seconds a closing client gets to take its remaining
            messages and finish the close handshake before the TCP connection
            is cut.
        rejoin_grace: seconds, >= 0 (0, the default: off). For this long
            after the server starts, a ``knock`` that does not get the id it
            asks for (a newcomer, an original node) waits for its answer, so
            that returning nodes get their ids back after a restart; and the
            id of a node that leaves is kept this long for its return
            (docs/protocol.md, "Stable addresses"). Keep it below the nodes'
            request timeout (10 s by default), or a newcomer's first join
            may time out while it waits; the join deadline of a waiting
            client is ``rejoin_grace + handshake_timeout``.

    Raises:
        ValueError: a field is out of range (not positive, or not finite where
            a duration or a rate is expected).
    """

    ping_interval: float = DEFAULT_PING_INTERVAL
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_messages_per_second: float = DEFAULT_MAX_MESSAGES_PER_SECOND
    burst: int = DEFAULT_BURST
    max_clients: int = DEFAULT_MAX_CLIENTS
    max_handshakes: int = DEFAULT_MAX_HANDSHAKES
    send_queue_bytes: int = DEFAULT_SEND_QUEUE_BYTES
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    rejoin_grace: float = DEFAULT_REJOIN_GRACE

    def __post_init__(self) -> None:
        for name in ("ping_interval", "max_messages_per_second", "handshake_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("close_timeout", "rejoin_grace"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
        for name in (
            "max_message_size",
            "burst",
            "max_clients",
            "max_handshakes",
            "send_queue_bytes",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


#: The limits of a server started without ``limits=``: every field at its default.
DEFAULT_LIMITS: Final = ServerLimits()
