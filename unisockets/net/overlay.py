"""The overlay node: a node on a unisockets network (signaling server + peer transport).

Connection set-up (docs/protocol.md, "Connect"): the connecting
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
import logging
import random
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.addresses import format_alias, parse_alias
from ..protocol.planner import (
    ConnectionPlanner,
    check_address,
    link_failure,
)
from ..protocol.socket_states import innermost_reason
from ..transport.base import MessagePipe, PeerTransport
from ..transport.legacy import LegacyStream
from ..transport.stream import PipeStream
from ._signals import pump_signaling
from .addresses import Address, oserror
from .base import Binding, Node, SocketOptionList
from .datagram_overlay import OverlayDatagrams, OverlayDatagramSocket
from .listeners import OverlayListener
from .overlay_listen import OverlayBinding
from .streams import SocketStream

if TYPE_CHECKING:
    from ..signaling.client import SignalingClient

__all__ = ["OverlayNode"]

logger = logging.getLogger("unisockets.net")


class OverlayNode(Node):
    """A node on a unisockets overlay network (signaling server + peer transport).

    Created by :func:`open_node`; see the module docstring for how
    connections are set up.

    Attributes:
        signaling: the node's signaling client.
        transport: the peer transport (WebRTC, or in-memory for tests).
        datagrams: its datagram layer (:mod:`unisockets.net.datagram_overlay`),
            with the node's datagram counters (``datagrams.statistics``).
    """

    def __init__(
        self,
        signaling: SignalingClient,
        transport: PeerTransport,
        loopback: PeerTransport,
        nursery: trio.Nursery,
        *,
        accept_timeout: float,
        link_timeout: float = 15.0,
    ) -> None:
        self.signaling = signaling
        self.transport = transport
        self._loopback = loopback
        self._nursery = nursery
        self._accept_timeout = accept_timeout
        self._link_timeout = link_timeout
        self._streams: set[SocketStream] = set()
        self._listeners: set[OverlayListener] = set()
        self._planner: ConnectionPlanner[LegacyStream, trio.Event] = ConnectionPlanner(
            random.Random()
        )
        self._release_send, self._release_receive = trio.open_memory_channel[
            tuple[str, int | None]
        ](1024)
        self.datagrams = OverlayDatagrams(self)  # SOCK_DGRAM (net/datagram_overlay.py)

    @property
    def address(self) -> str:
        """This node's overlay address, assigned by the signaling server (e.g. ``"10.0.0.1"``)."""
        return self.signaling.id

    def rejoin(self) -> None:
        """Reconnect to the signaling server now rather than when the backoff ends.

        While signaling is lost the node waits its backoff (``signaling_backoff``
        of :func:`~unisockets.net.open_node`) before each attempt; a program that
        knows the network is back calls this to try at once. Nothing happens
        while joined or once closed. Streams never need it: they do not pass
        through the server.
        """
        self.signaling.rejoin()

    def _datagram_socket(self) -> OverlayDatagramSocket:
        return self.datagrams.socket()

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
                return OverlayBinding(self, (plan.host, candidate))
        raise plan.exhausted()

    async def connect(
        self, address: Address, *, socket_options: SocketOptionList = ()
    ) -> SocketStream:
        """Connect to an overlay listener by address (signaling ``connect`` + a data channel).

        Args:
            address: ``(host, port)``; ``host`` may be this node's own address.
            socket_options: ignored (there is no OS socket).

        Every wait is bounded: the call ends within the signaling request
        timeout (``request_timeout`` of :func:`~unisockets.net.open_node`) plus
        the link timeout (``link_timeout``), whatever the peer does (it may
        never answer an offer, or never open the data channel).

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
            # One bound over the link and the data channel (each step has its own
            # timeout, but a retry on a fresh link would start them over).
            with trio.move_on_after(self._link_timeout) as bounded:
                legacy = await transport.legacy_channel(peer_id, offer=True)
                if legacy is None:
                    pipe = await transport.open_pipe(peer_id, route.label)
                else:
                    self._planner.check_legacy_free(peer_id)
            if bounded.cancelled_caught:
                raise TimeoutError(f"no data channel within {self._link_timeout:g} s")
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

    async def _pump_signaling(self) -> None:
        """Hand signaling events to the transport (offers, answers, candidates, leaves)."""
        await pump_signaling(
            self.signaling, self.transport, self._loopback, self._planner.legacy_connection
        )

    def _check_open(self) -> None:
        if self._planner.closed:
            raise trio.ClosedResourceError("the node is closed")

    async def _close(self) -> None:
        for done in self._planner.close():  # nothing will release them now
            done.set()
        self.datagrams.close()
        with trio.CancelScope(shield=True):
            for listener in list(self._listeners):
                await listener.aclose()
            for stream in list(self._streams):
                await trio.aclose_forcefully(stream)
        self._release_send.close()

    def __repr__(self) -> str:
        return f"<OverlayNode {self.address}>"
