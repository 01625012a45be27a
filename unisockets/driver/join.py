"""Joining a network with the asyncio driver: :func:`open_driver_node`, the node's lifetime.

The node (:class:`~unisockets.driver.node.DriverNode`) lives inside one
``async with open_driver_node(...)``: the first signaling session is opened
(and its join awaited) before the node exists, the node's
:class:`asyncio.TaskGroup` runs its peer links, accept loops, alias releases
and the reconnection loop, and leaving the block closes every stream,
listener, peer connection and task, as :func:`unisockets.net.open_node` does
with its nursery. Peer events that arrive before the node exists are handed
to it in order once it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ..protocol.events import Event
from ..protocol.link_idle import LinkIdle
from .node import DriverNode, SignalingStatus
from .runtime import Runtime
from .signaling import DriverSignaling

__all__ = ["open_driver_node"]


@asynccontextmanager
async def open_driver_node(
    runtime: Runtime,
    signaling_url: str,
    subnet: str,
    *,
    rtc_configuration: Mapping[str, Any] | None,
    request_timeout: float,
    link_timeout: float,
    accept_timeout: float,
    reconnect: bool,
    backoff: tuple[float, float],
    signaling_send_rate: tuple[float, int] | None,
    on_signaling_event: Callable[[SignalingStatus], object] | None,
    lazy_links: bool = False,
    link_idle_timeout: float = 60.0,
) -> AsyncIterator[DriverNode]:
    """Join a unisockets network on ``runtime`` for the duration of the block.

    The arguments are those of :func:`unisockets.browser.open_node` (all
    given: each runtime's entry point has its own defaults); ``runtime``
    makes the WebSockets and peer connections (the page's, or aiortc's).
    ``lazy_links`` and ``link_idle_timeout`` are those of
    :func:`unisockets.open_node` (docs/protocol.md, "Lazy peer links"): the
    knock says ``lazyLinks``, and a link to a modern peer that carried no
    connection for ``link_idle_timeout`` seconds closes (links are always set
    up on demand in this driver; without ``lazy_links`` they never close idle).

    Yields:
        The :class:`DriverNode`; leaving the block closes every listener,
        stream, peer connection and task of the node, and the WebSocket,
        and stops reconnecting.

    Raises:
        SignalingError: the server is unreachable or the subnet is full (at the first join).
        ValueError: a bad timeout, backoff, send rate or idle timeout.
    """
    idle_timeout = link_idle_timeout if lazy_links else None
    LinkIdle(idle_timeout, 0.0)  # ValueError now rather than at the first link
    node: DriverNode | None = None
    early: list[Event] = []  # peer events that arrive before the node exists

    def on_event(event: Event) -> None:
        if node is None:
            early.append(event)
        else:
            node._on_event(event)

    signaling = DriverSignaling(
        signaling_url,
        subnet,
        on_event=on_event,
        request_timeout=request_timeout,
        reconnect=reconnect,
        backoff=backoff,
        send_rate=signaling_send_rate,
        runtime=runtime,
        lazy_links=lazy_links,
    )
    await signaling.open()
    body_error: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as tasks:
            node = DriverNode(
                signaling,
                tasks,
                rtc_configuration=rtc_configuration,
                link_timeout=link_timeout,
                accept_timeout=accept_timeout,
                on_signaling_event=on_signaling_event,
                runtime=runtime,
                link_idle_timeout=idle_timeout,
            )
            node._spawn(signaling.maintain())
            for event in early:
                node._on_event(event)
            early.clear()
            try:
                yield node
            except BaseException as exc:
                body_error = exc  # re-raised below, unwrapped (as unisockets.net.open_node)
            finally:
                await node._close()
    finally:
        signaling.close()
    if body_error is not None:
        raise body_error
