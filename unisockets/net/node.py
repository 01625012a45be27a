"""Nodes: a program's place on the network, overlay (WebRTC) or native (OS TCP).

A node owns every task it needs in one nursery: the signaling reader, the peer
links, the accept loops. Leaving its ``async with`` (:func:`open_node`)
cancels and closes all of them; no task, thread, socket or peer connection
outlives it (docs/concepts.md, "Nodes").

Overlay connection set-up (docs/protocol.md, "Connect"): the connecting
node asks signaling to ``connect`` to the remote alias and gets its own
connection alias back; it then opens a data channel to the listening node,
labelled with both aliases, ``"<client alias>><bound alias>"``. The listening
node, told by signaling's ``accept`` which client alias connected, takes the data
channel with that label. When the connection closes, the connecting node
releases its connection alias with ``shutdown`` (a wire-compatible addition:
the original never freed them).

Legacy peers (docs/protocol.md, "Legacy peers"): an original unisockets node
has one data channel per pair of nodes and writes raw bytes into it. When the
WebRTC transport finds that a peer is one
(:meth:`~unisockets.transport.webrtc.WebRTCTransport.legacy_channel`), a
connection with it, in either direction, carries raw bytes over that channel
(:class:`~unisockets.transport.legacy.LegacyStream`): no labelled pipe, no
end-of-stream marker, and closing is not seen by the peer. One such
connection per legacy peer at a time: a second ``connect`` to it is refused
(``ECONNREFUSED``), a second incoming one is dropped, since their bytes
would mix.

Every such decision (labels, loopback, ephemeral ports, backlog admission,
which alias to release when, legacy peers, address checks) is
:class:`unisockets.protocol.planner.ConnectionPlanner`'s, shared with the
browser's node; this module does the I/O.
"""

from __future__ import annotations

import errno
import functools
import logging
import random
import ssl
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import trio

from .._nursery import open_owned_nursery
from ..protocol import events
from ..protocol.addresses import format_alias, parse_alias
from ..protocol.planner import (
    DEFAULT_BACKLOG,
    EPHEMERAL_PORTS,
    ConnectionPlanner,
    check_address,
    check_backlog,
    check_port,
    link_failure,
)
from ..protocol.socket_states import check_local_host, innermost_reason
from ..transport.base import MessagePipe, PeerTransport, SignalSender
from ..transport.legacy import LegacyStream
from ..transport.stream import PipeStream
from .addresses import Address, oserror
from .listeners import NativeListener, OverlayListener, wrap_native_stream
from .streams import SocketStream

if TYPE_CHECKING:
    from aiortc import RTCConfiguration

    from ..signaling.client import SignalingClient
    from .sockets import Socket

#: ``(level, optname, value)`` triples for an OS socket (``Node.bind``, ``Node.connect``).
SocketOptionList = Sequence[tuple[int, int, int]]

#: What ``open_node(transport=...)`` takes: called with this node's id and the sender
#: of its signals (offers, answers, candidates), it opens the node's peer transport.
TransportFactory = Callable[[str, SignalSender], AbstractAsyncContextManager[PeerTransport]]

__all__ = [
    "DEFAULT_BACKLOG",
    "EPHEMERAL_PORTS",
    "NativeNode",
    "Node",
    "OverlayNode",
    "TransportFactory",
    "open_node",
]

logger = logging.getLogger("unisockets.net")


class Node(ABC):
    """The API common to overlay and native nodes (docs/concepts.md, "Nodes")."""

    @property
    @abstractmethod
    def address(self) -> str:
        """This node's IPv4 address, e.g. ``"10.0.0.1"`` (overlay) or ``"127.0.0.1"`` (native)."""

    @abstractmethod
    async def bind(
        self, port: int, host: str = "", *, socket_options: SocketOptionList = ()
    ) -> Binding:
        """Claim ``port`` on this node's address (``0``: any free port).

        Args:
            port: 0..65535.
            host: ``""``, ``"0.0.0.0"``, ``"localhost"`` or this node's
                address; on an overlay node also any address that is no other
                node's id, such as ``"127.0.0.1"`` (docs/protocol.md, "Bind and listen").
            socket_options: ``(level, optname, value)`` triples a native node
                sets on its OS socket before binding; an overlay node, which
                has no OS socket, ignores them (docs/concepts.md, "Socket options and timeouts").

        Returns:
            The binding; call :meth:`Binding.listen` to accept connections on it.

        Raises:
            OSError: ``EADDRINUSE`` when the address is taken,
                ``EADDRNOTAVAIL`` when ``host`` is another node's address.
        """

    @abstractmethod
    async def connect(
        self, address: Address, *, socket_options: SocketOptionList = ()
    ) -> SocketStream:
        """Connect to a listening socket.

        Args:
            address: ``(host, port)`` of the listener, e.g. ``("10.0.0.1", 1234)``.
            socket_options: as for :meth:`bind`, set before connecting.

        Returns:
            The connected stream.

        Raises:
            OSError: ``ECONNREFUSED`` when nobody accepts there, ``EINVAL`` for
                a malformed address, ``ETIMEDOUT`` / ``ECONNRESET`` when the
                connection could not be set up.
        """

    def listen(self, port: int, backlog: int = DEFAULT_BACKLOG) -> _ListenCall:
        """Bind ``port`` and listen on it.

        Use either ``listener = await node.listen(port)`` or
        ``async with node.listen(port) as listener:`` (which closes it on exit).

        Args:
            port: the port to bind, 0..65535 (``0``: any free port).
            backlog: how many established connections may wait for ``accept``;
                more arrivals are closed at once.

        Returns:
            An awaitable / async context manager giving a
            :class:`trio.abc.Listener` of :class:`SocketStream`.

        Raises:
            OSError: ``EADDRINUSE`` when the port is taken, ``EINVAL`` for a bad port.
        """
        return _ListenCall(self, port, backlog)

    def socket(self) -> Socket:
        """Create a Berkeley-style stream socket on this node (``SOCK_STREAM``)."""
        from .sockets import Socket

        return Socket(self)

    _nursery: trio.Nursery

    def _spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``fn(*args)`` in the node's nursery (closes and EOFs of socket objects)."""
        self._nursery.start_soon(fn, *args)


class Binding(ABC):
    """A claimed ``(host, port)`` on a node, not yet listening.

    Attributes:
        address: the bound ``(host, port)``.
        os_socket: the OS socket behind it (native node), else ``None``.
    """

    address: Address
    os_socket: trio.socket.SocketType | None = None

    @abstractmethod
    def listen(self, backlog: int = DEFAULT_BACKLOG) -> OverlayListener | NativeListener:
        """Start accepting connections; returns the listener (which owns this binding)."""

    @abstractmethod
    def close(self) -> None:
        """Release the address now: a later ``bind`` of it on this node succeeds. Idempotent.

        Natively the OS socket is closed; on the overlay the release is sent
        to signaling by a node task, and a ``bind`` of the address waits for it.
        """

    async def aclose(self) -> None:
        """Release the address without listening; return once it is released.

        When this returns, a ``bind`` of the address on this node succeeds at
        once (:meth:`close`, then wait for the release under way).
        """
        self.close()
        await trio.lowlevel.checkpoint()


class _ListenCall:
    """What :meth:`Node.listen` returns: awaitable, and an async context manager."""

    def __init__(self, node: Node, port: int, backlog: int) -> None:
        self._node, self._port, self._backlog = node, port, backlog
        self._listener: trio.abc.Listener[SocketStream] | None = None

    async def _open(self) -> trio.abc.Listener[SocketStream]:
        check_port(self._port)
        backlog = check_backlog(self._backlog)
        binding = await self._node.bind(self._port)
        listener = binding.listen(backlog)
        try:
            await listener.wait_ready()
        except BaseException:
            await trio.aclose_forcefully(listener)
            raise
        return listener

    def __await__(self) -> Generator[Any, None, trio.abc.Listener[SocketStream]]:
        return self._open().__await__()

    async def __aenter__(self) -> trio.abc.Listener[SocketStream]:
        self._listener = await self._open()
        return self._listener

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._listener is not None
        await self._listener.aclose()


class _SignalAdapter(SignalSender):
    """Sends a WebRTC transport's offers, answers and candidates over signaling."""

    def __init__(self, signaling: SignalingClient) -> None:
        self._signaling = signaling

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        await self._signaling.send_offer(peer_id, sdp)

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        await self._signaling.send_answer(peer_id, sdp)

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        await self._signaling.send_candidate(peer_id, candidate)


class OverlayNode(Node):
    """A node on a unisockets overlay network (signaling server + peer transport).

    Created by :func:`open_node`; see the module docstring for how
    connections are set up.

    Attributes:
        signaling: the node's signaling client.
        transport: the peer transport (WebRTC, or in-memory for tests).
    """

    def __init__(
        self,
        signaling: SignalingClient,
        transport: PeerTransport,
        loopback: PeerTransport,
        nursery: trio.Nursery,
        *,
        accept_timeout: float,
    ) -> None:
        self.signaling = signaling
        self.transport = transport
        self._loopback = loopback
        self._nursery = nursery
        self._accept_timeout = accept_timeout
        self._streams: set[SocketStream] = set()
        self._listeners: set[OverlayListener] = set()
        self._planner: ConnectionPlanner[LegacyStream, trio.Event] = ConnectionPlanner(
            random.Random()
        )
        self._release_send, self._release_receive = trio.open_memory_channel[
            tuple[str, int | None]
        ](1024)

    @property
    def address(self) -> str:
        """This node's overlay address, assigned by the signaling server (e.g. ``"10.0.0.1"``)."""
        return self.signaling.id

    def _transport_for(self, loopback: bool) -> PeerTransport:
        return self._loopback if loopback else self.transport

    async def bind(
        self, port: int, host: str = "", *, socket_options: SocketOptionList = ()
    ) -> Binding:
        """Bind ``port`` on an overlay address (signaling ``bind``).

        Port 0 picks a free port in :data:`EPHEMERAL_PORTS`. ``host`` is this
        node's address when ``""``, ``"0.0.0.0"`` or ``"localhost"``; any other
        address is an ordinary overlay address, which the signaling server
        lets this node bind unless it is another node's id (docs/protocol.md,
        "Bind and listen"): ``127.0.0.1`` is not loopback on the overlay, as in the
        original unisockets. If this node is still releasing the alias (a
        socket or listener on it was closed a moment ago), the bind waits for
        the release first, so closing and binding again at once works as with
        an OS socket.

        Args:
            port: 0..65535.
            host: the address, as above.
            socket_options: ignored (there is no OS socket).

        Raises:
            OSError: ``EADDRINUSE`` when the alias is taken (the server answered
                ``alias{set:false}``), ``EADDRNOTAVAIL`` when ``host`` is the
                address of another node, ``EINVAL`` for a bad port or address.
        """
        self._check_open()
        plan = self._planner.plan_bind(port, check_address((host, port))[0], self.address)
        if plan.wait_for is not None:
            await plan.wait_for.wait()
        for candidate in plan.ports:
            with plan.attempt():
                await self.signaling.bind(format_alias(plan.host, candidate))
                return _OverlayBinding(self, (plan.host, candidate))
        raise plan.exhausted()

    async def connect(
        self, address: Address, *, socket_options: SocketOptionList = ()
    ) -> SocketStream:
        """Connect to an overlay listener by address (signaling ``connect`` + a data channel).

        Args:
            address: ``(host, port)``; ``host`` may be this node's own address.
            socket_options: ignored (there is no OS socket).

        Raises:
            OSError: ``ECONNREFUSED`` (nobody accepting there), ``EINVAL`` (bad
                address), ``ETIMEDOUT`` (signaling or the peer link timed out),
                ``ECONNRESET`` (the peer link failed while connecting).
        """
        self._check_open()
        remote_alias = self._planner.plan_connect(address, self.address)
        try:
            local_alias, remote_alias, peer_id, session = await self.signaling.connect_in_session(
                remote_alias
            )
        except TimeoutError as exc:
            raise oserror(errno.ETIMEDOUT, f"connect to {remote_alias}") from exc
        route = self._planner.outgoing(local_alias, remote_alias, peer_id, self.address)
        transport = self._transport_for(route.loopback)
        try:
            legacy = await transport.legacy_channel(peer_id, offer=True)
            if legacy is None:
                pipe = await transport.open_pipe(peer_id, route.label)
            else:
                self._planner.check_legacy_free(peer_id)
        except BaseException as exc:
            self._release_alias(local_alias, session)
            if isinstance(exc, TimeoutError | trio.BrokenResourceError):
                raise link_failure(
                    peer_id, innermost_reason(exc), timed_out=isinstance(exc, TimeoutError)
                ) from exc
            raise
        if legacy is not None:
            stream = self._track_legacy(
                legacy,
                peer_id,
                local_address=parse_alias(local_alias),
                remote_address=parse_alias(remote_alias),
                release=(local_alias, session),
            )
            assert stream is not None  # check_legacy_free passed, with no await since
            return stream
        return self._track(
            pipe,
            local_address=parse_alias(local_alias),
            remote_address=parse_alias(remote_alias),
            release=(local_alias, session),
        )

    def _track(
        self,
        pipe: MessagePipe,
        *,
        local_address: Address,
        remote_address: Address,
        release: tuple[str, int] | None,
    ) -> SocketStream:
        def on_close() -> None:
            self._streams.discard(stream)
            if release is not None:
                self._release_alias(*release)

        stream = SocketStream(
            PipeStream(pipe),
            local_address=local_address,
            remote_address=remote_address,
            on_close=on_close,
        )
        self._streams.add(stream)
        return stream

    def _track_legacy(
        self,
        pipe: Any,
        peer_id: str,
        *,
        local_address: Address,
        remote_address: Address,
        release: tuple[str, int] | None,
    ) -> SocketStream | None:
        legacy = LegacyStream(pipe)
        if not self._planner.legacy_opened(peer_id, legacy):
            return None

        def on_close() -> None:
            self._streams.discard(stream)
            self._planner.legacy_closed(peer_id, legacy)
            pipe.discard_received()  # what this connection left unread is not the next one's
            if release is not None:
                self._release_alias(*release)

        stream = SocketStream(
            legacy, local_address=local_address, remote_address=remote_address, on_close=on_close
        )
        self._streams.add(stream)
        return stream

    def _release_alias(self, alias: str, session: int | None = None) -> trio.Event | None:
        """Queue a signaling ``shutdown`` of an alias we no longer use; ``bind`` waits for it.

        Args:
            alias: the alias.
            session: for a connection alias, the signaling session that made
                it: the planner (and, when the message is made,
                :meth:`SignalingClient.shutdown`) drops it once that session
                has ended. None for a bound alias.

        Returns:
            The event set when the release is done, or None when there is
            nothing to wait for.
        """
        done = self._planner.release(
            alias, trio.Event(), session=session, current_session=self.signaling.session
        )
        if done is None:
            return None
        try:
            self._release_send.send_nowait((alias, session))
        except (trio.WouldBlock, trio.ClosedResourceError):
            logger.debug("not releasing %s (node closing or queue full)", alias)
            self._wake_binders(alias)
            return None
        return done

    def _wake_binders(self, alias: str) -> None:
        """A release of ``alias`` ended: wake the binds of it when it was the last one."""
        done = self._planner.released(alias)
        if done is not None:
            done.set()

    async def _release_loop(self) -> None:
        try:
            async for alias, session in self._release_receive:
                try:
                    await self.signaling.shutdown(alias, session=session)
                except (OSError, TimeoutError) as exc:
                    logger.debug("release of %s failed: %s", alias, exc)
                self._wake_binders(alias)
        finally:
            # Cancelled (e.g. Ctrl-C): no more releases; wake the aclose calls waiting.
            for done in self._planner.close():
                done.set()

    async def _accept_loop(self, listener: OverlayListener, alias: str) -> None:
        with listener._cancel_scope:
            async with trio.open_nursery() as nursery:
                try:
                    await self.signaling.listen(alias)
                    listener._set_ready()
                    while True:
                        client_alias = await self.signaling.accept(alias)
                        nursery.start_soon(self._establish, listener, alias, client_alias)
                except (OSError, TimeoutError) as exc:
                    # SignalingError is a ConnectionError: the alias is lost, or
                    # signaling is gone for good. Only this listener fails.
                    logger.warning("listening on %s failed: %r", alias, exc)
                    listener._fail(exc)

    async def _establish(self, listener: OverlayListener, alias: str, client_alias: str) -> None:
        route = self._planner.incoming(client_alias, alias, self.address)
        peer_id = route.peer_id
        transport = self._transport_for(route.loopback)
        try:
            with trio.fail_after(self._accept_timeout):
                legacy = await transport.legacy_channel(peer_id, offer=False)
                if legacy is None:
                    pipe = await transport.accept_pipe(peer_id, route.label)
        except (TimeoutError, trio.BrokenResourceError) as exc:
            logger.info("connection %s -> %s not established: %r", client_alias, alias, exc)
            return
        if legacy is None:
            stream: SocketStream | None = self._track(
                pipe,
                local_address=parse_alias(alias),
                remote_address=parse_alias(client_alias),
                release=None,
            )
        else:
            stream = self._track_legacy(
                legacy,
                peer_id,
                local_address=parse_alias(alias),
                remote_address=parse_alias(client_alias),
                release=None,
            )
        if stream is None:
            # Signaling told the legacy node it is connected; nothing on its wire can
            # say otherwise. Its bytes keep going to the connection we have.
            logger.warning(
                "dropping connection %s -> %s: legacy node %s has a connection with us already",
                client_alias,
                alias,
                peer_id,
            )
            return
        if not listener._offer(stream):
            logger.info("backlog of %s full: closing %s", alias, client_alias)
            await stream.aclose()

    def _start_listening(self, address: Address, backlog: int) -> OverlayListener:
        alias = format_alias(*address)

        def release() -> trio.Event | None:
            self._listeners.discard(listener)
            return self._release_alias(alias)

        listener = OverlayListener(address, backlog, release)
        self._listeners.add(listener)
        self._nursery.start_soon(self._accept_loop, listener, alias)
        return listener

    async def _pump_signaling(self) -> None:
        """Hand signaling events to the transport (offers, answers, candidates, leaves)."""
        transport: Any = self.transport
        webrtc = hasattr(transport, "handle_offer")
        async for event in self.signaling.events:
            try:
                if isinstance(event, events.PeerLeft):
                    legacy = self._planner.legacy_connection(event.peer_id)
                    if legacy is not None:
                        legacy.peer_left()  # its channel ends now: EOF, not an error
                    await self.transport.peer_left(event.peer_id)
                elif isinstance(event, events.IdChanged):
                    self.transport.local_id = event.new_id
                    self._loopback.local_id = event.new_id
                elif not webrtc:
                    continue
                elif isinstance(event, events.PeerGreeted):
                    await transport.handle_greeting(event.peer_id)
                elif isinstance(event, events.OfferReceived):
                    await transport.handle_offer(event.peer_id, event.sdp)
                elif isinstance(event, events.AnswerReceived):
                    await transport.handle_answer(event.peer_id, event.sdp)
                elif isinstance(event, events.CandidateReceived):
                    await transport.handle_candidate(event.peer_id, event.candidate)
            except (OSError, trio.BrokenResourceError, ValueError) as exc:
                # A peer's bad SDP or candidate must not take the node down.
                logger.warning("signaling event %r failed: %r", event, exc)

    def _check_open(self) -> None:
        if self._planner.closed:
            raise trio.ClosedResourceError("the node is closed")

    async def _close(self) -> None:
        for done in self._planner.close():  # nothing will release them now
            done.set()
        with trio.CancelScope(shield=True):
            for listener in list(self._listeners):
                await listener.aclose()
            for stream in list(self._streams):
                await trio.aclose_forcefully(stream)
        self._release_send.close()

    def __repr__(self) -> str:
        return f"<OverlayNode {self.address}>"


class _OverlayBinding(Binding):
    def __init__(self, node: OverlayNode, address: Address) -> None:
        self._node = node
        self.address = address
        self._released = False
        self._release_done: trio.Event | None = None

    def listen(self, backlog: int = DEFAULT_BACKLOG) -> OverlayListener:
        self._released = True  # the listener releases the alias when it closes
        return self._node._start_listening(self.address, backlog)

    def close(self) -> None:
        if not self._released:
            self._released = True
            self._release_done = self._node._release_alias(format_alias(*self.address))

    async def aclose(self) -> None:
        self.close()
        if self._release_done is None:
            await trio.lowlevel.checkpoint()
        else:
            await self._release_done.wait()


class NativeNode(Node):
    """The native fallback: the same API over the OS's TCP (no signaling server).

    Created by ``open_node(None)``. Streams and listeners it made are closed
    when the node closes, as with an overlay node.
    """

    def __init__(self, host: str, nursery: trio.Nursery) -> None:
        self._host = host
        self._nursery = nursery
        self._resources: set[trio.abc.AsyncResource] = set()

    @property
    def address(self) -> str:
        """The host address given to :func:`open_node` (default ``"127.0.0.1"``)."""
        return self._host

    async def bind(
        self, port: int, host: str = "", *, socket_options: SocketOptionList = ()
    ) -> Binding:
        """Bind an OS TCP socket on ``(address, port)``, with ``SO_REUSEADDR`` on.

        Args:
            port: 0..65535.
            host: ``""``, ``"0.0.0.0"``, ``"localhost"`` or :attr:`address`.

        Raises:
            OSError: from the OS, e.g. ``EADDRINUSE``; ``EINVAL`` for a bad
                port; ``EADDRNOTAVAIL`` for another ``host``.
        """
        check_port(port)
        check_local_host(check_address((host, port))[0], self.address)
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        try:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            for level, optname, value in socket_options:
                sock.setsockopt(level, optname, value)
            await sock.bind((self._host, port))
        except BaseException:
            sock.close()
            raise
        return _NativeBinding(self, sock)

    async def connect(
        self, address: Address, *, socket_options: SocketOptionList = ()
    ) -> SocketStream:
        """Connect over OS TCP.

        Args:
            address: ``(host, port)``.
            socket_options: ``(level, optname, value)`` set on the OS socket
                before connecting.

        Raises:
            OSError: from the OS, e.g. ``ECONNREFUSED``; ``EINVAL`` for a bad address.
        """
        host, port = check_address(address)
        if host in ("", "0.0.0.0"):
            host = self._host
        # One literal IPv4 address: a plain socket connect reports the OS's
        # errno (trio.open_tcp_stream folds failures into one errno-less OSError).
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        try:
            for level, optname, value in socket_options:
                sock.setsockopt(level, optname, value)
            await sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return self._track(wrap_native_stream(trio.SocketStream(sock)))

    def _track(self, stream: SocketStream) -> SocketStream:
        self._resources.add(stream)
        stream.add_close_callback(lambda: self._resources.discard(stream))
        return stream

    async def _close(self) -> None:
        with trio.CancelScope(shield=True):
            for resource in list(self._resources):
                await trio.aclose_forcefully(resource)

    def __repr__(self) -> str:
        return f"<NativeNode {self._host}>"


class _NativeBinding(Binding):
    def __init__(self, node: NativeNode, sock: trio.socket.SocketType) -> None:
        self._node = node
        self.os_socket = sock
        host, port = sock.getsockname()[:2]
        self.address = (host, port)

    def listen(self, backlog: int = DEFAULT_BACKLOG) -> NativeListener:
        sock = self.os_socket
        assert sock is not None
        sock.listen(backlog)
        listener = NativeListener(trio.SocketListener(sock), self._node._track)
        self._node._resources.add(listener)
        return listener

    def close(self) -> None:
        if self.os_socket is not None:
            self.os_socket.close()


@asynccontextmanager
async def open_node(
    signaling_url: str | None,
    subnet: str = "10.0.0",
    *,
    rtc_configuration: RTCConfiguration | None = None,
    transport: TransportFactory | None = None,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
    request_timeout: float = 10.0,
    accept_timeout: float = 20.0,
    ice_addresses: Sequence[str] | None = None,
    signaling_send_rate: tuple[float, int] | Literal["default"] | None = "default",
    signaling_backoff: tuple[float, float] | None = None,
    link_timeout: float = 15.0,
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

    Yields:
        The :class:`Node`; leaving the block closes every listener, stream,
        peer link and task of the node.

    Raises:
        unisockets.signaling.SignalingError: the server is unreachable or the
            subnet is full.
    """
    if signaling_url is None:
        async with _open_native_node(host) as native:
            yield native
        return
    from ..signaling.client import DEFAULT_BACKOFF, DEFAULT_SEND_RATE, open_signaling_client
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
            )
        )
        if transport is None:
            from ..transport.webrtc import open_webrtc_transport

            transport = functools.partial(
                open_webrtc_transport,
                rtc_configuration=rtc_configuration,
                host_addresses=ice_addresses,
                link_timeout=link_timeout,
            )
        peers = await stack.enter_async_context(transport(signaling.id, _SignalAdapter(signaling)))
        loopback = await stack.enter_async_context(
            open_memory_transport(MemoryNetwork(), signaling.id)
        )
        nursery = await stack.enter_async_context(trio.open_nursery())
        node = OverlayNode(signaling, peers, loopback, nursery, accept_timeout=accept_timeout)
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


@asynccontextmanager
async def _open_native_node(host: str) -> AsyncIterator[NativeNode]:
    async with open_owned_nursery() as nursery:
        node = NativeNode(host, nursery)
        try:
            yield node
        finally:
            await node._close()
