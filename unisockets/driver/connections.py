"""Connection set-up of the asyncio driver: connect, accept, and release of connection aliases.

The decisions are :class:`unisockets.protocol.planner.ConnectionPlanner`'s,
the native node's planner (:mod:`unisockets.net.overlay`): the connecting
side asks signaling to ``connect``, then opens a data channel labelled
``"<its connection alias>><the bound alias>"``; the listening side, told by
``accept`` which client connected, takes the channel with that label
(docs/protocol.md, "Connect"). The connecting side releases its connection
alias with ``shutdown`` when the stream closes, only within the signaling
session that made it. Connections to the node's own address use an
in-process pipe pair; a legacy (original) peer gets one connection on its
``"channel"``. This module does the I/O, for one
:class:`~unisockets.driver.node.DriverNode`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..protocol.addresses import format_alias, parse_alias
from ..protocol.planner import ConnectionPlanner, link_failure
from ..protocol.socket_states import innermost_reason
from .errors import BrokenResourceError, ClosedResourceError, SignalingError
from .legacy import AnyStream, LegacyStream
from .pipes import Pipe, loopback_pair
from .runtime import logger
from .streams import Address, Stream

if TYPE_CHECKING:
    from .listeners import Listener
    from .node import DriverNode

__all__ = ["ConnectionSetUp"]


class ConnectionSetUp:
    """The streams one node connects and accepts, and the release of their aliases.

    Args:
        node: the node (its signaling session, peer links, streams and task group).
        planner: the node's planner (shared with its ``bind`` and ``close``).
        accept_timeout: seconds an announced connection may take to bring its
            data channel (else it is dropped and logged).
    """

    def __init__(
        self,
        node: DriverNode,
        planner: ConnectionPlanner[LegacyStream, asyncio.Event],
        accept_timeout: float,
    ) -> None:
        self._node = node
        self._planner = planner
        self._accept_timeout = accept_timeout

    async def connect(self, address: Address) -> AnyStream:
        """Connect to ``(host, port)``, for :meth:`unisockets.driver.node.DriverNode.connect`.

        Returns:
            The stream (a :class:`~.legacy.LegacyStream` to an original node).

        Raises:
            OSError: ``ECONNREFUSED``, ``EINVAL``, ``ETIMEDOUT``, ``ECONNRESET``.
            SignalingError: signaling was lost while waiting, or closed.
        """
        remote_alias = self._planner.plan_connect(address, self._node.address)
        local_alias, remote_alias, peer_id = await self._node.signaling.connect(remote_alias)
        session = self._node.signaling.session
        route = self._planner.outgoing(local_alias, remote_alias, peer_id, self._node.address)
        legacy: Pipe | None = None
        try:
            if route.loopback:
                pipe, other = loopback_pair(peer_id, route.label)
                self._node.links.deliver(other)
            else:
                legacy = await self._node.links.legacy_pipe(peer_id, offer=True)
                if legacy is None:
                    pipe = await self._node.links.open_pipe(peer_id, route.label)
                else:
                    self._planner.check_legacy_free(peer_id)
        except BaseException as exc:
            self.release(local_alias, session)
            if isinstance(exc, TimeoutError | BrokenResourceError):
                raise link_failure(
                    peer_id, innermost_reason(exc), timed_out=isinstance(exc, TimeoutError)
                ) from exc
            raise
        if legacy is not None:
            stream = self.track_legacy(legacy, peer_id, local_alias, remote_alias, session=session)
            assert stream is not None  # check_legacy_free passed, with no await since
            return stream
        return self.track(pipe, local_alias, remote_alias, session=session)

    def track(
        self, pipe: Pipe, local_alias: str, remote_alias: str, *, session: int | None
    ) -> Stream:
        """Make the stream; with a ``session``, release ``local_alias`` when it closes."""

        def on_close(stream: Stream) -> None:
            self._node.streams.discard(stream)
            if session is not None:
                self.release(local_alias, session)

        stream = Stream(
            pipe,
            local_address=parse_alias(local_alias),
            remote_address=parse_alias(remote_alias),
            on_close=on_close,
        )
        self._node.streams.add(stream)
        return stream

    def track_legacy(
        self,
        pipe: Pipe,
        peer_id: str,
        local_alias: str,
        remote_alias: str,
        *,
        session: int | None,
    ) -> LegacyStream | None:
        """A stream over a legacy peer's channel; None if the peer has one already."""

        def on_close(stream: LegacyStream) -> None:
            self._node.streams.discard(stream)
            self._planner.legacy_closed(peer_id, stream)
            if session is not None:
                self.release(local_alias, session)

        stream = LegacyStream(
            pipe,
            local_address=parse_alias(local_alias),
            remote_address=parse_alias(remote_alias),
            on_close=on_close,
        )
        if not self._planner.legacy_opened(peer_id, stream):
            pipe.detach()
            return None
        self._node.streams.add(stream)
        return stream

    def release(self, alias: str, session: int | None = None) -> asyncio.Event | None:
        """Send ``shutdown`` for an alias we no longer use, from a node task.

        The planner decides whether (a connection alias only within the
        signaling session that made it, nothing once the node is closed).

        Returns:
            The event set when the release is done, or None when nothing is sent.
        """
        done = self._planner.release(
            alias, asyncio.Event(), session=session, current_session=self._node.signaling.session
        )
        if done is not None:
            self._node._spawn(self.release_now(alias, session))
        return done

    async def release_now(self, alias: str, session: int | None) -> None:
        try:  # the session is checked again when the message is made (it may have ended)
            await self._node.signaling.shutdown(alias, session=session)
        except (OSError, SignalingError) as exc:
            logger.debug("release of %s failed: %s", alias, exc)
        finally:  # also when cancelled: a listener's aclose waits for this
            done = self._planner.released(alias)
            if done is not None:
                done.set()

    def listener_closed(self, listener: Listener) -> asyncio.Event | None:
        alias = format_alias(*listener.address)
        self._node.signaling.forget_alias(alias)
        return self.release(alias)

    async def accept_loop(self, listener: Listener) -> None:
        alias = format_alias(*listener.address)
        try:
            while True:
                client_alias = await self._node.signaling.next_connection(alias)
                self._node._spawn(self.establish(listener, alias, client_alias))
        except (SignalingError, OSError) as exc:
            logger.warning("listening on %s ended: %s", alias, exc)
            listener._ended(exc)

    async def establish(self, listener: Listener, alias: str, client_alias: str) -> None:
        route = self._planner.incoming(client_alias, alias, self._node.address)
        legacy: Pipe | None = None
        try:
            async with asyncio.timeout(self._accept_timeout):
                if not route.loopback:
                    legacy = await self._node.links.legacy_pipe(route.peer_id, offer=False)
                if legacy is None:
                    pipe = await self._node.links.accept_pipe(route.peer_id, route.label)
        except (TimeoutError, BrokenResourceError, ClosedResourceError) as exc:
            logger.info("connection %s -> %s not established: %r", client_alias, alias, exc)
            return
        stream: AnyStream | None
        if legacy is None:
            stream = self.track(pipe, alias, client_alias, session=None)
        else:
            stream = self.track_legacy(legacy, route.peer_id, alias, client_alias, session=None)
            if stream is None:
                # Signaling told the legacy node it is connected; nothing on its wire
                # can say otherwise. Its bytes keep going to the connection we have.
                logger.warning(
                    "dropping connection %s -> %s: legacy node %s has a connection already",
                    client_alias,
                    alias,
                    route.peer_id,
                )
                return
        if not listener._offer(stream):
            logger.info("backlog of %s full: closing %s", alias, client_alias)
            await stream.aclose()
