"""The listening side of an overlay node: bound aliases, listeners, incoming connections.

An :class:`~unisockets.net.overlay.OverlayNode`'s ``bind`` returns an
:class:`OverlayBinding`; its ``listen`` starts an accept loop that asks
signaling to ``listen`` and, for each ``accept``, takes the data channel the
connecting node opens (docs/protocol.md, "Connect") or, from a legacy peer,
its one channel, and offers the stream to the listener's backlog. The
decisions are the node's :class:`~unisockets.protocol.planner.ConnectionPlanner`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from ..protocol.addresses import format_alias, parse_alias
from ..protocol.planner import DEFAULT_BACKLOG
from .addresses import Address
from .base import Binding
from .listeners import OverlayListener
from .streams import SocketStream

if TYPE_CHECKING:
    from .overlay import OverlayNode

__all__ = ["OverlayBinding", "accept_loop", "establish", "start_listening"]

logger = logging.getLogger("unisockets.net")


class OverlayBinding(Binding):
    """A bound overlay alias: :meth:`listen` turns it into a listener, closing releases it.

    Args:
        node: the node that bound it.
        address: the bound ``(host, port)``.
    """

    def __init__(self, node: OverlayNode, address: Address) -> None:
        self._node = node
        self.address = address
        self._released = False
        self._release_done: trio.Event | None = None

    def listen(self, backlog: int = DEFAULT_BACKLOG) -> OverlayListener:
        self._released = True  # the listener releases the alias when it closes
        return start_listening(self._node, self.address, backlog)

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


async def accept_loop(node: OverlayNode, listener: OverlayListener, alias: str) -> None:
    """Listen on ``alias`` (signaling ``listen``) and establish each ``accept`` it gets.

    Runs in the node's nursery until the listener is closed; a signaling error
    fails this listener only (:meth:`OverlayListener._fail`).

    Args:
        node: the listening node.
        listener: the listener the connections are offered to.
        alias: its bound alias, ``"host:port"``.
    """
    with listener._cancel_scope:
        async with trio.open_nursery() as nursery:
            try:
                await node.signaling.listen(alias)
                listener._set_ready()
                while True:
                    client_alias = await node.signaling.accept(alias)
                    nursery.start_soon(establish, node, listener, alias, client_alias)
            except (OSError, TimeoutError) as exc:
                # SignalingError is a ConnectionError: the alias is lost, or
                # signaling is gone for good. Only this listener fails.
                logger.warning("listening on %s failed: %r", alias, exc)
                listener._fail(exc)


async def establish(
    node: OverlayNode, listener: OverlayListener, alias: str, client_alias: str
) -> None:
    """Take the pipe (or the legacy channel) of one accepted connection and offer it.

    The planner names the pipe and the peer (docs/protocol.md, "Connect"); a
    pipe that does not come within the accept timeout is given up, a full
    backlog closes the stream.

    Args:
        node: the listening node.
        listener: the listener to offer the stream to.
        alias: the bound alias that was connected to.
        client_alias: the connecting side's connection alias.
    """
    route = node._planner.incoming(client_alias, alias, node.address)
    peer_id = route.peer_id
    transport = node._transport_for(route.loopback)
    try:
        with trio.fail_after(node._accept_timeout):
            legacy = await transport.legacy_channel(peer_id, offer=False)
            if legacy is None:
                pipe = await transport.accept_pipe(peer_id, route.label)
    except (TimeoutError, trio.BrokenResourceError) as exc:
        logger.info("connection %s -> %s not established: %r", client_alias, alias, exc)
        return
    if legacy is None:
        stream: SocketStream | None = node._track(
            pipe,
            local_address=parse_alias(alias),
            remote_address=parse_alias(client_alias),
            release=None,
        )
    else:
        stream = node._track_legacy(
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


def start_listening(node: OverlayNode, address: Address, backlog: int) -> OverlayListener:
    """Make a listener on ``address`` and start its accept loop in the node's nursery.

    Args:
        node: the node.
        address: the bound ``(host, port)``.
        backlog: connections established and not yet accepted, at most.

    Returns:
        The listener; closing it releases the alias.
    """
    alias = format_alias(*address)

    def release() -> trio.Event | None:
        node._listeners.discard(listener)
        return node._release_alias(alias)

    listener = OverlayListener(address, backlog, release)
    node._listeners.add(listener)
    node._nursery.start_soon(accept_loop, node, listener, alias)
    return listener
