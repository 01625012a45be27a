"""A node of the asyncio driver: join, listen, accept, connect, on any :class:`~.runtime.Runtime`.

:func:`~unisockets.driver.join.open_driver_node` joins an overlay network through the runtime's
``WebSocket`` and reaches peers over its ``RTCPeerConnection`` data channels:
the page's in a browser tab (:func:`unisockets.browser.open_node`), aiortc's
natively (:func:`unisockets.aio.open_node`). The node has the user-facing
shapes of :func:`unisockets.net.open_node` (docs/concepts.md, "Nodes"); the
differences come from asyncio (docs/browser.md): ``async with``, ``await`` and
task cancellation work as usual; errors keep trio's names
(:mod:`unisockets.driver.errors`); there is no OS-TCP fallback.

Signaling reconnects as natively (:mod:`.signaling`): back with the same id,
listeners keep accepting; with a new id, :attr:`DriverNode.address` changes,
the change is logged and reported to ``on_signaling_event``, and listeners on
the old id fail with :class:`SignalingError`. Peer links do not go through
the server and keep working; a greeting from a peer whose link is still
connected (the server restarted) keeps that link (:mod:`.links`).

Connection set-up is the native node's (:mod:`unisockets.net.overlay`), by
the same :class:`unisockets.protocol.planner.ConnectionPlanner` (labels,
loopback, ephemeral ports, backlog admission, which addresses may be bound);
:mod:`.connections` does its I/O.

The node owns one :class:`asyncio.TaskGroup`: peer links, accept loops and
alias releases run in it, and leaving ``async with open_driver_node(...)``
closes every stream, listener and peer connection and cancels every task.
"""

from __future__ import annotations

import asyncio
import errno
import random
from collections.abc import Callable, Coroutine, Mapping
from socket import SocketKind
from typing import TYPE_CHECKING, Any, Final, Literal, overload

from ..protocol.addresses import format_alias
from ..protocol.events import (
    AnswerReceived,
    CandidateReceived,
    Disconnected,
    Event,
    IdChanged,
    OfferReceived,
    PeerGreeted,
    PeerLeft,
    Reconnected,
)
from ..protocol.planner import (
    DEFAULT_BACKLOG,
    EPHEMERAL_PORTS,
    ConnectionPlanner,
    check_address,
    check_backlog,
)
from .connections import ConnectionSetUp
from .datagrams import DatagramSocket, DriverDatagrams
from .errors import ClosedResourceError
from .legacy import AnyStream, LegacyStream
from .links import PeerLinks
from .listeners import Listener, _ListenCall
from .runtime import Runtime, logger
from .signaling import DriverSignaling
from .streams import Address

if TYPE_CHECKING:
    from .sockets import Socket

__all__ = [
    "DEFAULT_BACKLOG",
    "EPHEMERAL_PORTS",
    "DriverNode",
    "Listener",
    "SignalingStatus",
    "check_address",
]

#: Seconds a closing node gives each open stream to deliver its last bytes and EOF.
CLOSE_TIMEOUT: Final = 5.0

#: What ``open_node(on_signaling_event=...)`` is called with.
SignalingStatus = Disconnected | Reconnected | IdChanged


class DriverNode:
    """A node's place on a unisockets overlay network.

    Made by :func:`~unisockets.driver.join.open_driver_node` (whose arguments it takes;
    ``link_idle_timeout`` is None for eager links, which never close when idle).

    Attributes:
        signaling: the signaling session (its ``protocol`` knows peers and aliases).
        links: the peer links (``links.links`` maps peer ids to links).
        streams: the open streams of this node (connected and accepted).
        listeners: the open listeners.
    """

    def __init__(
        self,
        signaling: DriverSignaling,
        tasks: asyncio.TaskGroup,
        *,
        rtc_configuration: Mapping[str, Any] | None,
        link_timeout: float,
        accept_timeout: float,
        on_signaling_event: Callable[[SignalingStatus], object] | None = None,
        runtime: Runtime,
        link_idle_timeout: float | None = None,
    ) -> None:
        self.signaling = signaling
        self._on_signaling_event = on_signaling_event
        self._tasks = tasks
        self._spawned: set[asyncio.Task[None]] = set()
        self.links = PeerLinks(
            signaling,
            self._spawn,
            rtc_configuration=rtc_configuration,
            link_timeout=link_timeout,
            claim_timeout=accept_timeout,
            runtime=runtime,
            idle_timeout=link_idle_timeout,
        )
        self.streams: set[AnyStream] = set()
        self.listeners: set[Listener] = set()
        self._planner: ConnectionPlanner[LegacyStream, asyncio.Event] = ConnectionPlanner(
            random.Random()
        )
        self.datagrams = DriverDatagrams(self)  # SOCK_DGRAM (.datagrams)
        self._connections = ConnectionSetUp(self, self._planner, accept_timeout)

    def __repr__(self) -> str:
        return f"<DriverNode {self.address}>"

    @property
    def address(self) -> str:
        """This node's overlay address, e.g. ``"10.0.0.1"`` (assigned by the server at join).

        It changes when signaling reconnects under a new id; while
        disconnected it is the last one.
        """
        return self.signaling.id

    @property
    def connected(self) -> bool:
        """Whether signaling is joined right now (False while it reconnects, and once closed)."""
        return self.signaling.connected

    def rejoin(self) -> None:
        """Reconnect to the signaling server now rather than when the backoff ends.

        While signaling is lost, the node waits its backoff (``backoff=`` of
        :func:`~unisockets.driver.join.open_driver_node`) before each attempt;
        a page that knows better (the window's ``online`` event, a
        "reconnect" button) calls this to try at once. Nothing happens while
        joined or once closed (docs/browser.md, "When the signaling server
        goes away").
        """
        self.signaling.rejoin()

    @property
    def peers(self) -> frozenset[str]:
        """Ids of the other members this node was introduced to."""
        return self.signaling.protocol.peers

    # --- the public calls --------------------------------------------------------------------

    async def bind(self, port: int, host: str = "") -> Address:
        """Claim ``port`` on an overlay address (``0``: a free port of :data:`EPHEMERAL_PORTS`).

        ``host`` is this node's address when ``""``, ``"0.0.0.0"`` or
        ``"localhost"``; any other address is an ordinary overlay address,
        which the signaling server lets this node bind unless it is another
        node's id (docs/protocol.md, "Bind and listen"): ``127.0.0.1`` is not
        loopback on the overlay, as in the original unisockets. The rule and
        its errnos are the trio node's (:meth:`ConnectionPlanner.plan_bind
        <unisockets.protocol.planner.ConnectionPlanner.plan_bind>` and the
        signaling session). If this node is still releasing the address (a
        socket or listener on it was closed a moment ago), the bind waits for
        that release first.

        Args:
            port: 0..65535.
            host: the address, as above.

        Returns:
            The bound ``(host, port)``. Listen on it with :meth:`listen_bound`,
            or release it with :meth:`unbind`.

        Raises:
            OSError: ``EADDRINUSE`` when taken, ``EINVAL`` for a bad port or
                address, ``ETIMEDOUT`` when signaling does not answer (also
                when it does not come back within the request timeout),
                ``EADDRNOTAVAIL`` when ``host`` is another node's address or
                our id changed meanwhile.
            ClosedResourceError: the node is closed.
            SignalingError: signaling was lost while waiting, or closed.
        """
        self._check_open()
        plan = self._planner.plan_bind(port, check_address((host, port))[0], self.address)
        if plan.wait_for is not None:
            await plan.wait_for.wait()
        for candidate in plan.ports:
            with plan.attempt():
                await self.signaling.bind(format_alias(plan.host, candidate))
                return (plan.host, candidate)
        raise plan.exhausted()

    async def unbind(self, address: Address) -> None:
        """Release a bound address that is not listening.

        Raises:
            OSError: ``EINVAL``/``ETIMEDOUT``/``EADDRNOTAVAIL`` from signaling.
            SignalingError: signaling was lost while waiting, or closed.
        """
        await self.signaling.shutdown(format_alias(*address))

    def listen(self, port: int, backlog: int = DEFAULT_BACKLOG) -> _ListenCall:
        """Bind ``port`` and listen on it.

        Use ``listener = await node.listen(port)`` or
        ``async with node.listen(port) as listener:`` (closes it on exit).

        Args:
            port: 0..65535 (``0``: any free port).
            backlog: established connections that may wait for ``accept``;
                more are closed at once.

        Returns:
            An awaitable / async context manager giving a :class:`Listener`.

        Raises:
            OSError: ``EADDRINUSE`` when the port is taken, ``EINVAL`` for bad arguments.
        """
        return _ListenCall(self, port, backlog)

    def listen_bound(self, address: Address, backlog: int = DEFAULT_BACKLOG) -> Listener:
        """Start accepting on an address returned by :meth:`bind` (socket objects use this)."""
        self._check_open()
        listener = Listener(self, address, max(1, backlog))
        self.listeners.add(listener)
        try:  # ``accepting`` is sent now: a connect made after listen() returns is not refused
            self.signaling.listen(format_alias(*address))
        except BaseException:
            listener.close()
            raise
        listener._task = self._spawn(self._connections.accept_loop(listener))
        return listener

    async def connect(self, address: Address) -> AnyStream:
        """Connect to a listener at ``(host, port)`` on the overlay (or on this node).

        Raises:
            OSError: ``ECONNREFUSED`` (nobody accepting there), ``EINVAL`` (bad
                address), ``ETIMEDOUT`` (signaling or the data channel timed
                out), ``ECONNRESET`` (the peer link failed while connecting).
            ClosedResourceError: the node is closed.
            SignalingError: signaling was lost while waiting, or closed.
        """
        self._check_open()
        return await self._connections.connect(address)

    @overload
    def socket(self, type: Literal[SocketKind.SOCK_STREAM] = ...) -> Socket: ...

    @overload
    def socket(self, type: Literal[SocketKind.SOCK_DGRAM]) -> DatagramSocket: ...

    def socket(self, type: int = SocketKind.SOCK_STREAM) -> Socket | DatagramSocket:
        """Create a Berkeley-style socket on this node, stream or datagram.

        Args:
            type: ``SOCK_STREAM`` (the default, :mod:`.sockets`) or
                ``SOCK_DGRAM`` (:mod:`.datagrams`).

        Raises:
            OSError: ``EINVAL`` for another type.
        """
        if type == SocketKind.SOCK_DGRAM:
            return self.datagrams.socket()
        if type != SocketKind.SOCK_STREAM:
            raise OSError(errno.EINVAL, f"socket type {type!r} is not supported")
        from .sockets import Socket

        return Socket(self)

    def statistics(self) -> dict[str, Any]:
        """A snapshot for status displays: id, peers, links, connections and their bytes.

        Returns:
            A JSON-able dict: ``address``, ``connected`` (signaling joined
            right now), ``peers`` (sorted ids), ``links``
            (peer id -> state), ``connections`` (list of dicts with ``local``,
            ``remote``, ``sent``, ``received`` in bytes).
        """
        return {
            "address": self.address,
            "connected": self.connected,
            "peers": sorted(self.peers),
            "links": {peer: link.state.value for peer, link in self.links.links.items()},
            "connections": [
                {
                    "local": format_alias(*s.local_address),
                    "remote": format_alias(*s.remote_address),
                    "sent": s.bytes_sent,
                    "received": s.bytes_received,
                }
                for s in sorted(self.streams, key=lambda s: s.local_address + s.remote_address)
            ],
        }

    # --- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._planner.closed:
            raise ClosedResourceError("the node is closed")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._tasks.create_task(coroutine)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    async def _listen(self, port: int, backlog: int) -> Listener:
        check_backlog(backlog)
        return self.listen_bound(await self.bind(port), backlog)

    def _release(self, alias: str, session: int | None = None) -> asyncio.Event | None:
        """Send ``shutdown`` for an alias we no longer use (:meth:`ConnectionSetUp.release`)."""
        return self._connections.release(alias, session)

    def _listener_closed(self, listener: Listener) -> asyncio.Event | None:
        self.listeners.discard(listener)
        return self._connections.listener_closed(listener)

    def _on_event(self, event: Event) -> None:
        """Signaling events for the peer links and the user (called by the signaling listener)."""
        if isinstance(event, Disconnected | Reconnected | IdChanged):
            if isinstance(event, Disconnected):
                self.links.signaling_lost()  # links still negotiating start over
            if isinstance(event, Reconnected):
                logger.info("signaling is back: joined as %s", event.id)
                self.links.signaling_back()  # peers of links that were cut get an offer
            if self._on_signaling_event is not None:
                try:
                    self._on_signaling_event(event)
                except Exception:
                    logger.exception("on_signaling_event failed for %r", event)
        elif isinstance(event, PeerGreeted):
            self.links.handle_greeting(event.peer_id)
        elif isinstance(event, OfferReceived):
            self.links.handle_offer(event.peer_id, event.sdp)
        elif isinstance(event, AnswerReceived):
            self.links.handle_answer(event.peer_id, event.sdp)
        elif isinstance(event, CandidateReceived):
            self.links.handle_candidate(event.peer_id, event.candidate)
        elif isinstance(event, PeerLeft):
            legacy = self._planner.legacy_connection(event.peer_id)
            if legacy is not None:
                legacy.peer_left()  # its only goodbye: EOF after what was received
            self.links.peer_left(event.peer_id)

    async def _close(self) -> None:
        for done in self._planner.close():  # bind fails now (the node is closed)
            done.set()
        for listener in list(self.listeners):
            await listener.aclose()
        # Concurrently: each close lets the last bytes arrive before the peer connection closes.
        await asyncio.gather(*(_close_stream(stream) for stream in list(self.streams)))
        self.datagrams.close()
        self.links.close()
        self.signaling.close()
        for task in list(self._spawned):
            task.cancel()


async def _close_stream(stream: AnyStream) -> None:
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await stream.aclose()
    except TimeoutError:
        stream.pipe.close()
