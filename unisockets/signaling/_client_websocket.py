"""Why a WebSocket to the signaling server could not be had, in words (private).

The signaling client's reasons for a failed join or a lost session
(:mod:`unisockets.signaling.client`), from trio-websocket's exceptions, and
the real cause of a failed TLS handshake, which trio-websocket hides.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, ConnectionTimeout, HandshakeError


def describe(exc: BaseException) -> str:
    """A short description of why a WebSocket failed or closed.

    Args:
        exc: what trio-websocket (or the join's timeout) raised.

    Returns:
        E.g. ``"closed with code 1008 (POLICY_VIOLATION): too fast"``.
    """
    if isinstance(exc, ConnectionClosed):
        if exc.reason is None:
            return "connection closed"
        code, name, text = exc.reason.code, exc.reason.name, exc.reason.reason
        return f"closed with code {code} ({name})" + (f": {text}" if text else "")
    if isinstance(exc, trio.TooSlowError):
        return str(exc) or "no acknowledgement in time"
    if isinstance(exc, ConnectionTimeout):
        return "no WebSocket handshake in time"
    if isinstance(exc, ConnectionRejected):
        return f"the server answered HTTP {exc.status_code}, not a WebSocket upgrade"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, HandshakeError) and isinstance(cause, OSError):
        return str(cause)  # e.g. "all attempts to connect to 127.0.0.1:6999 failed"
    return f"{exc!r}" if cause is None else f"{exc!r} ({cause!r})"


async def tls_failure(url: str, ssl_context: ssl.SSLContext | None) -> str | None:
    """Why a TLS handshake with a ``wss://`` URL's server fails, or ``None``.

    trio-websocket turns a failed TLS handshake into a wait for its connect
    timeout (``ConnectionTimeout``, the ``SSLError`` dropped), so after such a
    timeout the client tries the handshake alone to report the real cause,
    e.g. a plain ``ws://`` server or a certificate that does not verify.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "wss" or not parts.hostname:
        return None
    host, port = parts.hostname, parts.port or 443
    context = ssl_context or ssl.create_default_context()
    try:
        stream = await trio.open_ssl_over_tcp_stream(
            host, port, ssl_context=context, https_compatible=True
        )
    except OSError:
        return None
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        plain = isinstance(cause, ssl.SSLError) and cause.reason == "WRONG_VERSION_NUMBER"
        hint = " (the server does not speak TLS: a ws:// server?)" if plain else ""
        return f"TLS handshake with {host}:{port} failed: {cause or exc}{hint}"
    finally:
        await trio.aclose_forcefully(stream)
    return None
