"""A node on asyncio: aiortc and the signaling WebSocket in the caller's own event loop.

:func:`open_node` runs the asyncio driver (:mod:`unisockets.driver`: node,
links, pipes and signaling session, on the sans-IO cores of
:mod:`unisockets.protocol`) on :class:`~unisockets.aio.runtime.NativeRuntime`:
aiortc peer connections and a wsproto WebSocket, in the running asyncio loop.
No thread and no bridge: an asyncio program pays no hand-off per message.

:func:`unisockets.open_node` calls it when it runs under asyncio (directly,
or through ``anyio.run(..., backend="asyncio")``); under trio it keeps the
trio driver (:mod:`unisockets.net`). What a program gets (docs/concepts.md,
"asyncio and trio"): an :class:`AioNode` whose ``listen`` gives an
:class:`~unisockets.aio.streams.AioListener` (:class:`anyio.abc.Listener`)
and whose ``connect`` gives an :class:`~unisockets.aio.streams.AioStream`
(:class:`anyio.abc.ByteStream`), with typed address attributes.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from contextlib import asynccontextmanager
from socket import SocketKind
from typing import TYPE_CHECKING, Any, Literal, overload

from ..driver.join import open_driver_node
from ..driver.node import DriverNode, SignalingStatus
from ..driver.signaling import DEFAULT_REQUEST_TIMEOUT
from ..protocol.consent import ConsentPolicy
from ..protocol.pacing import DEFAULT_BACKOFF, DEFAULT_SEND_RATE
from ..protocol.planner import DEFAULT_BACKLOG
from .runtime import AiortcTransport
from .runtime_base import AioTransport, RuntimeSettings
from .streams import AioListener, AioStream, translate

if TYPE_CHECKING:
    from aiortc import RTCConfiguration

    from ..driver.datagrams import DatagramSocket
    from ..driver.sockets import Socket

__all__ = ["AioNode", "open_node"]

Address = tuple[str, int]


class _ListenCall:
    """What :meth:`AioNode.listen` returns: awaitable, and an async context manager."""

    def __init__(self, node: AioNode, port: int, backlog: int) -> None:
        self._node, self._port, self._backlog = node, port, backlog
        self._listener: AioListener | None = None

    def __await__(self) -> Generator[Any, None, AioListener]:
        return self._open().__await__()

    async def _open(self) -> AioListener:
        with translate():
            return AioListener(await self._node.driver.listen(self._port, self._backlog))

    async def __aenter__(self) -> AioListener:
        self._listener = await self._open()
        return self._listener

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._listener is not None
        await self._listener.aclose()


class AioNode:
    """This program's place on a unisockets network, on asyncio. Made by :func:`open_node`.

    The calls of :class:`unisockets.net.Node` with anyio's objects
    (docs/concepts.md, "asyncio and trio").

    Attributes:
        driver: the asyncio driver's node (peer links, signaling session, statistics).
    """

    def __init__(self, driver: DriverNode) -> None:
        self.driver = driver

    def __repr__(self) -> str:
        return f"<AioNode {self.address}>"

    @property
    def address(self) -> str:
        """This node's overlay address, e.g. ``"10.0.0.1"`` (a rejoin may change it)."""
        return self.driver.address

    @property
    def connected(self) -> bool:
        """Whether signaling is joined right now (False while it reconnects)."""
        return self.driver.connected

    @property
    def peers(self) -> frozenset[str]:
        """Ids of the other members this node was introduced to."""
        return self.driver.peers

    def listen(self, port: int, backlog: int = DEFAULT_BACKLOG) -> _ListenCall:
        """Bind ``port`` (``0``: a free ephemeral one) and listen on it.

        Use ``listener = await node.listen(port)`` or ``async with
        node.listen(port) as listener:`` (closes it, and releases the port, on exit).

        Returns:
            An awaitable / async context manager giving an :class:`AioListener`.

        Raises:
            OSError: ``EADDRINUSE`` when taken, ``EINVAL`` for a bad port or
                backlog, ``ETIMEDOUT`` when signaling does not answer.
            anyio.ClosedResourceError: the node is closed.
        """
        return _ListenCall(self, port, backlog)

    async def connect(self, address: Address) -> AioStream:
        """Connect to a listener at ``(host, port)`` on the overlay (or on this node).

        Raises:
            OSError: ``ECONNREFUSED`` (nobody accepting there), ``EINVAL`` (bad
                address), ``ETIMEDOUT`` (signaling or the link timed out),
                ``ECONNRESET`` (the peer link failed while connecting).
            anyio.ClosedResourceError: the node is closed.
            unisockets.SignalingError: signaling was lost while waiting.
        """
        with translate():
            return AioStream(await self.driver.connect(address))

    @overload
    def socket(self, type: Literal[SocketKind.SOCK_STREAM] = ...) -> Socket: ...

    @overload
    def socket(self, type: Literal[SocketKind.SOCK_DGRAM]) -> DatagramSocket: ...

    def socket(self, type: int = SocketKind.SOCK_STREAM) -> Socket | DatagramSocket:
        """A Berkeley-style socket on this node (coroutine methods, real errnos).

        Args:
            type: ``SOCK_STREAM`` (the default) or ``SOCK_DGRAM`` (docs/concepts.md,
                "Datagram sockets").

        Returns:
            A :class:`unisockets.driver.sockets.Socket` (the calls of
            :class:`unisockets.net.Socket`), or for ``SOCK_DGRAM`` a
            :class:`unisockets.driver.datagrams.DatagramSocket` (the calls of
            :class:`unisockets.net.DatagramSocket`).

        Raises:
            OSError: ``EINVAL`` for another type.
        """
        if type == SocketKind.SOCK_DGRAM:
            return self.driver.socket(SocketKind.SOCK_DGRAM)
        if type != SocketKind.SOCK_STREAM:
            raise OSError(errno.EINVAL, f"socket type {type!r} is not supported")
        return self.driver.socket()

    def statistics(self) -> dict[str, Any]:
        """The driver's snapshot: address, peers, links, connections and their bytes."""
        return self.driver.statistics()


@asynccontextmanager
async def open_node(
    signaling_url: str,
    subnet: str = "10.0.0",
    *,
    rtc_configuration: RTCConfiguration | None = None,
    ssl_context: ssl.SSLContext | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    accept_timeout: float = 20.0,
    ice_addresses: Sequence[str] | None = None,
    signaling_send_rate: tuple[float, int] | Literal["default"] | None = "default",
    signaling_backoff: tuple[float, float] | None = None,
    link_timeout: float = 15.0,
    consent: ConsentPolicy | None = None,
    on_signaling_event: Callable[[SignalingStatus], object] | None = None,
    transport: AioTransport | None = None,
    lazy_links: bool = True,
    link_idle_timeout: float = 60.0,
    webrtc_backend: Literal["auto", "native", "aiortc"] = "auto",
) -> AsyncIterator[AioNode]:
    """Join a unisockets network from asyncio for the duration of the block.

    The arguments are those of :func:`unisockets.open_node` (same meaning,
    same defaults); ``consent`` and ``on_signaling_event`` are those of the
    WebRTC transport and of :func:`unisockets.browser.open_node`. ``transport``
    makes the node's peer connections: ``None`` is the ``webrtc_backend``'s
    (``"auto"``, the default: native when the extension is installed and no
    ``turn:`` server is configured, as under trio; ``"aiortc"``:
    :class:`~unisockets.aio.runtime.AiortcTransport`; ``"native"``:
    :class:`~unisockets.aio.native_rtc.NativeTransport`, str0m driven by the
    node's own tasks:
    docs/transport.md, "The native backend"), a
    :class:`~unisockets.aio.memory.MemoryNetwork` links the nodes given it in
    memory (one process; the signaling server stays real).

    Yields:
        The :class:`AioNode`; leaving the block closes every listener, stream,
        peer connection, WebSocket and task of the node, and waits for them.

    Raises:
        unisockets.SignalingError: the server is unreachable or the subnet is full
            (:class:`unisockets.signaling.JoinRejectedError`).
        ValueError: a bad timeout, backoff, send rate, idle timeout or ICE
            address, an unknown ``webrtc_backend``, or ``"native"`` with a
            ``turn:`` server (the native backend has no TURN client).
        ImportError: ``webrtc_backend="native"`` without the native extension.
        TypeError: ``transport`` is not an :class:`~unisockets.aio.AioTransport`.
    """
    if transport is None:
        from ..transport.native_rtc import choose_backend

        if choose_backend(webrtc_backend, rtc_configuration) == "native":
            from .native_rtc import NativeTransport

            transport = NativeTransport()
        else:
            transport = AiortcTransport()
    elif not isinstance(transport, AioTransport):
        raise TypeError(
            f"under asyncio, transport= takes a unisockets.aio.AioTransport (such as "
            f"unisockets.aio.MemoryNetwork()), not {transport!r}"
        )
    runtime = transport.runtime(
        RuntimeSettings(rtc_configuration, ice_addresses, consent, ssl_context)
    )
    try:
        async with open_driver_node(
            runtime,
            signaling_url,
            subnet,
            rtc_configuration={"iceServers": runtime.ice_servers()},
            request_timeout=request_timeout,
            link_timeout=link_timeout,
            accept_timeout=accept_timeout,
            reconnect=True,
            backoff=signaling_backoff or DEFAULT_BACKOFF,
            signaling_send_rate=DEFAULT_SEND_RATE
            if signaling_send_rate == "default"
            else signaling_send_rate,
            on_signaling_event=on_signaling_event,
            lazy_links=lazy_links,
            link_idle_timeout=link_idle_timeout,
        ) as driver:
            yield AioNode(driver)
    finally:
        await runtime.aclose()
