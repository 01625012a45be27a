"""Nodes: a program's place on the network, overlay (WebRTC) or native (OS TCP).

A node owns every task it needs in one nursery: the signaling reader, the peer
links, the accept loops. Leaving its ``async with`` (:func:`open_node`)
cancels and closes all of them; no task, thread, socket or peer connection
outlives it (docs/concepts.md, "Nodes").

This module opens nodes (:func:`open_node`). The API they share is
:mod:`unisockets.net.base`'s (:class:`Node`, :class:`Binding`); the overlay
node, how it sets up connections and how it talks to legacy peers, is
:mod:`unisockets.net.overlay`'s; the native node :mod:`unisockets.net.native`'s.
Their classes are importable from here too.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Literal

import sniffio
import trio

from ..protocol.consent import ConsentPolicy
from ..protocol.link_idle import LinkIdle
from ..protocol.planner import DEFAULT_BACKLOG, EPHEMERAL_PORTS
from ..transport.base import PeerTransport, SignalSender
from ._signals import SignalAdapter
from .base import Binding, Node, SocketOptionList
from .native import NativeNode, _open_native_node
from .overlay import OverlayNode

if TYPE_CHECKING:
    from aiortc import RTCConfiguration

    from ..aio.runtime_base import AioTransport
    from ..transport.bridge import AsyncioBridge

#: What ``open_node(transport=...)`` takes: called with this node's id and the sender
#: of its signals (offers, answers, candidates), it opens the node's peer transport.
TransportFactory = Callable[[str, SignalSender], AbstractAsyncContextManager[PeerTransport]]

__all__ = [
    "DEFAULT_BACKLOG",
    "EPHEMERAL_PORTS",
    "Binding",
    "NativeNode",
    "Node",
    "OverlayNode",
    "SocketOptionList",
    "TransportFactory",
    "open_node",
]


@asynccontextmanager
async def open_node(
    signaling_url: str | None,
    subnet: str = "10.0.0",
    *,
    rtc_configuration: RTCConfiguration | None = None,
    transport: TransportFactory | AioTransport | None = None,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
    request_timeout: float = 10.0,
    accept_timeout: float = 20.0,
    ice_addresses: Sequence[str] | None = None,
    signaling_send_rate: tuple[float, int] | Literal["default"] | None = "default",
    signaling_backoff: tuple[float, float] | None = None,
    link_timeout: float = 15.0,
    webrtc_backend: Literal["auto", "native", "aiortc"] = "auto",
    asyncio_bridge: AsyncioBridge | None = None,
    signaling_keepalive: ConsentPolicy | Literal["default"] | None = "default",
    lazy_links: bool | None = None,
    link_idle_timeout: float = 60.0,
) -> AsyncIterator[Node]:
    """Join a unisockets network (or use the OS's TCP) for the duration of the block.

    Args:
        signaling_url: ``ws://`` or ``wss://`` URL of a signaling server, or
            ``None`` for the native fallback over OS TCP.
        subnet: the overlay subnet to join, three octets (``"10.0.0"``).
        rtc_configuration: an ``aiortc.RTCConfiguration`` (ICE servers); the
            default has none (loopback and LAN only).
        transport: the peer transport, as a :data:`TransportFactory`; the
            default, ``None``, is WebRTC (real data channels) with
            ``rtc_configuration``, ``ice_addresses`` and ``link_timeout``. For
            example ``lambda node_id, signals:
            open_memory_transport(network, node_id)`` puts the node on an
            in-process :class:`unisockets.transport.memory.MemoryNetwork`.
            Under asyncio, an :class:`unisockets.aio.AioTransport` instead
            (``unisockets.aio.MemoryNetwork()`` for in-process links).
        host: with ``signaling_url=None``, the local address to use.
        ssl_context: TLS settings for ``wss://`` signaling.
        request_timeout: seconds a signaling request (bind, connect) may take.
        accept_timeout: seconds the accepting side waits for a connection's
            data channel after signaling announced it.
        ice_addresses: local IP addresses WebRTC gathers ICE host candidates
            on, e.g. ``["127.0.0.1"]`` to stay on loopback; ``None``: every
            non-loopback interface (127.0.0.1 on a machine that has none).
        signaling_send_rate: ``(messages per second, burst)`` the node's
            signaling client keeps to, so that a server's per-client rate
            limit slows the node down instead of disconnecting it;
            ``"default"`` is :data:`unisockets.signaling.client.DEFAULT_SEND_RATE`
            (90 % of our server's default limits), ``None`` does not pace.
        signaling_backoff: ``(base, cap)`` in seconds: after losing the
            signaling server, reconnection attempt ``n`` waits between half
            and all of ``min(cap, base * 2**n)``; ``None``:
            :data:`unisockets.signaling.client.DEFAULT_BACKOFF`. Streams keep
            working meanwhile (their bytes never pass through the server).
        link_timeout: seconds a WebRTC peer link may take to connect (ICE,
            DTLS, SCTP) and a data channel to open (docs/transport.md);
            longer for TURN relays far away.
        webrtc_backend: which WebRTC stack carries the data channels:
            ``"auto"`` (the default): native when the extension is
            installed and no ``turn:``/``turns:``/``stuns:`` server is
            configured (and, under trio, no ``asyncio_bridge=`` is given),
            else aiortc, under trio and asyncio alike; ``"native"`` (str0m
            in Rust, the optional ``unisockets._rtc`` extension: no thread,
            host and STUN candidates, no TURN); ``"aiortc"`` (pure Python,
            TURN relays) (docs/transport.md, "The native backend").
        asyncio_bridge: under trio, run aiortc on this
            :class:`~unisockets.transport.bridge.AsyncioBridge` (from
            ``async with open_asyncio_bridge() as bridge``, owned by the
            caller) instead of the node's own loop thread; nodes of one
            program given one bridge share one asyncio loop, which halves the
            CPU per MB when both ends of a stream are in one process
            (docs/benchmarks.md). Not used under asyncio (there is no bridge).
            A ``connect()`` ends within
            ``request_timeout + link_timeout`` seconds, whatever the transport.
        signaling_keepalive: how often the node pings the signaling server
            and when a silent connection counts as dead (``keepalive`` of
            :func:`~unisockets.signaling.client.open_signaling_client`);
            ``"default"`` is :data:`unisockets.signaling.client.DEFAULT_KEEPALIVE`,
            ``None`` sends no pings.
        lazy_links: set peer links up on demand, when this node connects to
            a peer or a peer to it, and say so in the knock (docs/protocol.md,
            "Lazy peer links"): a server of ours then greets no other such
            node for it, so no eager full mesh. Original nodes and servers
            are greeted and linked eagerly as before. ``None`` (the
            default) and ``True`` are on, under trio and asyncio alike.
            ``False`` links eagerly with every member, as the
            original.
        link_idle_timeout: with ``lazy_links``, seconds after which a link to
            a modern peer that carries no connection closes (the next
            connect makes a new one); links to original nodes stay.

    Yields:
        Under trio, the :class:`Node`; under asyncio (``asyncio.run``, or
        anyio's asyncio backend), an :class:`unisockets.aio.AioNode`, the
        same calls with anyio's streams and listeners, aiortc (or the native
        core) running in the caller's loop (docs/concepts.md, "asyncio and
        trio"). Leaving the
        block closes every listener, stream, peer link and task of the node.

    Raises:
        unisockets.SignalingError: the server is unreachable or the subnet is
            full (:class:`unisockets.signaling.JoinRejectedError`); the same
            class under asyncio and trio.
        TypeError: under asyncio, no signaling URL, a ``transport=`` that is
            not an :class:`unisockets.aio.AioTransport` or an ``asyncio_bridge=``;
            under trio, an :class:`~unisockets.aio.AioTransport`;
            ``asyncio_bridge=`` with the native backend.
        ValueError: with ``lazy_links``, a ``link_idle_timeout`` that is not
            a positive number of seconds.
    """
    # A bad idle timeout is a ValueError at once on both drivers, not at the first link.
    lazy = lazy_links is not False  # on by default, under trio and asyncio alike
    LinkIdle(link_idle_timeout if lazy else None, 0.0)
    if sniffio.current_async_library() == "asyncio":
        # asyncio: the asyncio driver in this loop (docs/concepts.md, "asyncio and trio").
        if signaling_url is None or asyncio_bridge is not None:
            raise TypeError(
                "under asyncio, open_node needs a signaling URL and takes no "
                "asyncio_bridge= (the OS-TCP fallback and the bridge are trio's; "
                "for OS TCP use anyio.connect_tcp)"
            )
        from ..aio.node import open_node as open_asyncio_node

        async with open_asyncio_node(
            signaling_url,
            subnet,
            rtc_configuration=rtc_configuration,
            ssl_context=ssl_context,
            request_timeout=request_timeout,
            accept_timeout=accept_timeout,
            ice_addresses=ice_addresses,
            signaling_send_rate=signaling_send_rate,
            signaling_backoff=signaling_backoff,
            link_timeout=link_timeout,
            transport=transport,  # type: ignore[arg-type]  # checked there: an AioTransport
            lazy_links=lazy,
            link_idle_timeout=link_idle_timeout,
            webrtc_backend=webrtc_backend,
        ) as asyncio_node:
            yield asyncio_node  # type: ignore[misc]  # an AioNode: the same calls, anyio's objects
        return
    if signaling_url is None:
        async with _open_native_node(host) as native:
            yield native
        return
    from ..signaling.client import (
        DEFAULT_BACKOFF,
        DEFAULT_KEEPALIVE,
        DEFAULT_SEND_RATE,
        open_signaling_client,
    )
    from ..transport.memory import MemoryNetwork, open_memory_transport

    if transport is not None and not callable(transport):
        raise TypeError(f"transport must be a TransportFactory, not {transport!r}")
    body_error: BaseException | None = None
    async with AsyncExitStack() as stack:
        signaling = await stack.enter_async_context(
            open_signaling_client(
                signaling_url,
                subnet,
                ssl_context=ssl_context,
                request_timeout=request_timeout,
                send_rate=DEFAULT_SEND_RATE
                if signaling_send_rate == "default"
                else signaling_send_rate,
                backoff=signaling_backoff or DEFAULT_BACKOFF,
                keepalive=DEFAULT_KEEPALIVE
                if signaling_keepalive == "default"
                else signaling_keepalive,
                lazy_links=lazy,
            )
        )
        if transport is None:
            from ..transport.native_rtc import rtc_opener
            from ..transport.webrtc import open_webrtc_transport

            # A bridge is aiortc's: with one, "auto" means aiortc.
            auto_aiortc = webrtc_backend == "auto" and asyncio_bridge is not None
            opener = rtc_opener("aiortc" if auto_aiortc else webrtc_backend, rtc_configuration)
            bridge: dict[str, AsyncioBridge] = {}
            if asyncio_bridge is not None:
                if opener is not open_webrtc_transport:
                    raise TypeError("asyncio_bridge= is for the aiortc backend (str0m has none)")
                bridge["bridge"] = asyncio_bridge
            transport = functools.partial(
                opener,
                rtc_configuration=rtc_configuration,
                host_addresses=ice_addresses,
                link_timeout=link_timeout,
                **bridge,
                idle_timeout=link_idle_timeout if lazy else None,
            )
        peers = await stack.enter_async_context(transport(signaling.id, SignalAdapter(signaling)))
        loopback = await stack.enter_async_context(
            open_memory_transport(MemoryNetwork(), signaling.id)
        )
        nursery = await stack.enter_async_context(trio.open_nursery())
        node = OverlayNode(
            signaling,
            peers,
            loopback,
            nursery,
            accept_timeout=accept_timeout,
            link_timeout=link_timeout,
        )
        nursery.start_soon(node._pump_signaling)
        nursery.start_soon(node._release_loop)
        try:
            yield node
        except BaseException as exc:
            # Re-raised below, after every layer closed normally, so that the
            # caller gets its own exception back rather than an ExceptionGroup.
            body_error = exc
        finally:
            await node._close()
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
