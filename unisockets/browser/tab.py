"""A node in a browser tab: :func:`open_node`, the asyncio driver on the page's own objects.

The node is the asyncio driver's (:mod:`unisockets.driver.node`, the same one
:mod:`unisockets.aio` runs natively on aiortc), on the page's own objects
(:data:`unisockets.browser._js.BROWSER`). What differs from the trio API, and
why, is in docs/browser.md: asyncio, not trio (trio does not import under
Pyodide); errors keep trio's names (:mod:`unisockets.driver.errors`); no
native fallback (a page cannot open TCP sockets), and every blocking call
must be awaited (there are no threads).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ..driver.join import open_driver_node
from ..driver.node import (
    DEFAULT_BACKLOG,
    EPHEMERAL_PORTS,
    DriverNode,
    Listener,
    SignalingStatus,
    check_address,
)
from ..driver.signaling import DEFAULT_REQUEST_TIMEOUT
from ..protocol.pacing import DEFAULT_BACKOFF, DEFAULT_SEND_RATE
from ._js import BROWSER, require_browser
from ._loop import clamp_past_timers

__all__ = [
    "DEFAULT_BACKLOG",
    "EPHEMERAL_PORTS",
    "BrowserNode",
    "Listener",
    "SignalingStatus",
    "check_address",
    "open_node",
]

#: A tab's node: the asyncio driver's node (the name the browser API has always used).
BrowserNode = DriverNode


@asynccontextmanager
async def open_node(
    signaling_url: str,
    subnet: str = "10.0.0",
    *,
    rtc_configuration: Mapping[str, Any] | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    link_timeout: float = 20.0,
    accept_timeout: float = 20.0,
    reconnect: bool = True,
    backoff: tuple[float, float] = DEFAULT_BACKOFF,
    signaling_send_rate: tuple[float, int] | None = DEFAULT_SEND_RATE,
    on_signaling_event: Callable[[SignalingStatus], object] | None = None,
    lazy_links: bool = True,
    link_idle_timeout: float = 60.0,
) -> AsyncIterator[BrowserNode]:
    """Join a unisockets network from this browser tab for the duration of the block.

    Args:
        signaling_url: ``ws://`` or ``wss://`` URL of a signaling server
            (``python -m unisockets signaling-server``).
        subnet: the overlay subnet to join, three octets (``"10.0.0"``).
        rtc_configuration: an ``RTCConfiguration`` as a dict, e.g.
            ``{"iceServers": [{"urls": "stun:..."}]}``; the default has no ICE
            servers (loopback and LAN only).
        request_timeout: seconds a signaling request (join, bind, connect) may take.
        link_timeout: seconds a peer link may take to connect, and a data channel to open.
        accept_timeout: seconds the accepting side waits for a connection's
            data channel after signaling announced it.
        reconnect: reconnect to the signaling server when its WebSocket
            closes (as :func:`unisockets.signaling.open_signaling_client`);
            if false, listeners and requests fail with :class:`SignalingError`
            from then on (open streams keep working).
        backoff: ``(base, cap)`` in seconds: reconnection attempt ``n`` waits
            between half and all of ``min(cap, base * 2**n)`` (the native default).
        signaling_send_rate: ``(messages per second, burst)`` the signaling
            client keeps to, so that a server's per-client rate limit never
            disconnects it; the default is
            :data:`~unisockets.protocol.pacing.DEFAULT_SEND_RATE` (that of
            the native client); ``None`` sends at once.
        on_signaling_event: called (synchronously; exceptions are logged)
            with :class:`~unisockets.protocol.events.Disconnected` when the
            WebSocket closes, then :class:`~unisockets.protocol.events.IdChanged`
            (if the server gave us a new id) and
            :class:`~unisockets.protocol.events.Reconnected` when we are back.
        lazy_links: knock with ``lazyLinks`` and close idle links
            (docs/protocol.md, "Lazy peer links"): on by default, as on
            native nodes; a link is set up by the first connection either
            way, offered by the node that connects. ``False`` links eagerly
            with every member, as the original does.
        link_idle_timeout: with ``lazy_links``, seconds after which a link to
            a modern peer that carries no connection closes.

    Yields:
        The :class:`BrowserNode`; leaving the block closes every listener,
        stream, peer connection and task of the node, and the WebSocket, and
        stops reconnecting.

    Raises:
        SignalingError: the server is unreachable or the subnet is full (at the first join).
        ValueError: a bad timeout, backoff, send rate or idle timeout.
        RuntimeError: not running under Pyodide.
    """
    require_browser()
    clamp_past_timers(asyncio.get_running_loop())
    async with open_driver_node(
        BROWSER,
        signaling_url,
        subnet,
        rtc_configuration=rtc_configuration,
        request_timeout=request_timeout,
        link_timeout=link_timeout,
        accept_timeout=accept_timeout,
        reconnect=reconnect,
        backoff=backoff,
        signaling_send_rate=signaling_send_rate,
        on_signaling_event=on_signaling_event,
        lazy_links=lazy_links,
        link_idle_timeout=link_idle_timeout,
    ) as node:
        yield node
