"""The error vocabulary of the sans-IO protocol layer.

Modelled on h11: every error says who is at fault.

- :class:`LocalProtocolError`: *we* asked for something illegal (built an
  invalid message, made a request in the wrong state). A bug in the caller.
- :class:`RemoteProtocolError`: the *peer* sent something illegal (bad JSON,
  wrong field types, an unknown opcode, a spoofed id). The caller should drop
  or error-close that peer; the state machine that raised it is unchanged.

Also here, because every driver raises them and a program catches them
whatever runs it: :class:`SignalingError` (the signaling server unreachable,
refusing us, or gone; a :class:`ConnectionError`) and :class:`JoinRejectedError`
(the subnet is full). The trio client (:mod:`unisockets.signaling`, exported
as ``unisockets.SignalingError``) and the asyncio driver
(:mod:`unisockets.driver.errors`: asyncio natively and in a browser tab) raise
these same classes, so one ``except unisockets.SignalingError`` serves both
(docs/concepts.md, "Errors").
"""

from __future__ import annotations

__all__ = [
    "JoinRejectedError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "SignalingError",
]


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`unisockets.protocol`.

    Attributes:
        close_code: the WebSocket close code (RFC 6455 §7.4.1) a driver should
            use when this error ends a connection: 1008 (policy violation) by
            default, 1009 (message too big) for oversize input.
    """

    close_code: int = 1008

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        if close_code is not None:
            self.close_code = close_code


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol forbids (a caller bug)."""


class RemoteProtocolError(ProtocolError):
    """The remote side sent something the protocol forbids.

    Raised for malformed input and for protocol violations. The state machine
    that raised it has not changed state, so the caller may keep going or
    drop the peer (with :attr:`close_code`).
    """


class SignalingError(ConnectionError):
    """The signaling server is unreachable, rejected us, or the connection to it broke."""


class JoinRejectedError(SignalingError):
    """The server rejected our ``knock``: the subnet is full (docs/protocol.md, "Join")."""
