"""Why a WebSocket to the signaling server could not be had, in words (private).

The signaling client's reasons for a failed join or a lost session
(:mod:`unisockets.signaling.client`), from the exceptions of its WebSocket
(:mod:`unisockets.signaling._client_connection`), of trio and of the OS.
"""

from __future__ import annotations

import trio

from ._client_connection import ConnectionClosed, ConnectionTimeout, HandshakeError


def describe(exc: BaseException) -> str:
    """A short description of why a WebSocket failed or closed.

    Args:
        exc: what opening or reading the WebSocket (or the join's timeout) raised.

    Returns:
        E.g. ``"closed with code 1008 (POLICY_VIOLATION): too fast"``, or
        ``"all attempts to connect to 127.0.0.1:6999 failed"`` (trio's words).
    """
    if isinstance(exc, ConnectionClosed):
        code, name, text = exc.reason.code, exc.reason.name, exc.reason.reason
        return f"closed with code {code} ({name})" + (f": {text}" if text else "")
    if isinstance(exc, trio.TooSlowError):
        return str(exc) or "no acknowledgement in time"
    if isinstance(exc, ConnectionTimeout):
        return "no WebSocket handshake in time"
    if isinstance(exc, HandshakeError | OSError):
        return str(exc) or repr(exc)
    cause = exc.__cause__ or exc.__context__
    return f"{exc!r}" if cause is None else f"{exc!r} ({cause!r})"
