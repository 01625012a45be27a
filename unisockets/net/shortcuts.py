"""One-liners for programs that need a single listener or a single connection.

``unisockets.listen(address, signaling=url)`` and
``unisockets.connect(address, signaling=url)`` open a node, listen or connect,
and close everything on leaving the ``async with`` (docs/concepts.md, "Nodes").
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..protocol.addresses import is_id, split_id
from ..protocol.planner import ANY_HOSTS
from .addresses import Address, check_address, oserror
from .node import DEFAULT_BACKLOG, open_node
from .streams import SocketStream

__all__ = ["connect", "listen"]


#: The subnet joined when the host names none.
_DEFAULT_SUBNET = "10.0.0"


def _subnet_of(host: str) -> str:
    """The subnet a host implies: its first three octets, or the default for "any"."""
    if host in ANY_HOSTS or not is_id(host):
        return _DEFAULT_SUBNET
    return split_id(host)[0]


@asynccontextmanager
async def listen(
    address: Address,
    *,
    signaling: str | None,
    subnet: str | None = None,
    backlog: int = DEFAULT_BACKLOG,
    **node_options: Any,
) -> AsyncIterator[trio.abc.Listener[SocketStream]]:
    """Join a network, listen on ``address``, and close both on exit.

    Args:
        address: ``(host, port)``. With signaling, ``host`` is ``""`` /
            ``"0.0.0.0"`` (whatever address the server assigns) or the address
            this node must have (its subnet is joined; another assigned address
            is an error). Without signaling, a local interface address.
        signaling: the signaling server's URL, or ``None`` for OS TCP.
        subnet: the subnet to join (default: the first three octets of
            ``host``; ``"10.0.0"`` when ``host`` is ``""``/``"0.0.0.0"``).
        backlog: connections that may wait for ``accept``.
        node_options: passed to :func:`unisockets.open_node`.

    Yields:
        A :class:`trio.abc.Listener` of :class:`~unisockets.net.SocketStream`.

    Raises:
        OSError: ``EADDRNOTAVAIL`` when the server assigned another address
            than ``host``; ``EADDRINUSE`` when the port is taken.
    """
    host, port = check_address(address)
    if signaling is None:
        async with (
            open_node(None, host=host or "0.0.0.0") as node,
            node.listen(port, backlog) as listener,
        ):
            yield listener
        return
    async with open_node(signaling, subnet or _subnet_of(host), **node_options) as node:
        if host not in ANY_HOSTS and node.address != host:
            raise oserror(
                errno.EADDRNOTAVAIL, f"asked for {host}, the server assigned {node.address}"
            )
        async with node.listen(port, backlog) as listener:
            yield listener


@asynccontextmanager
async def connect(
    address: Address,
    *,
    signaling: str | None,
    subnet: str | None = None,
    **node_options: Any,
) -> AsyncIterator[SocketStream]:
    """Join a network, connect to ``address``, and close both on exit.

    Args:
        address: the listener's ``(host, port)``, e.g. ``("10.0.0.1", 1234)``.
        signaling: the signaling server's URL, or ``None`` for OS TCP.
        subnet: the subnet to join (default: the one of ``host``; ``"10.0.0"``
            when ``host`` is ``""``/``"0.0.0.0"``, this node itself).
        node_options: passed to :func:`unisockets.open_node`.

    Yields:
        The connected :class:`~unisockets.net.SocketStream`.

    Raises:
        OSError: ``ECONNREFUSED`` when nobody accepts there, and as
            :meth:`unisockets.net.Node.connect`.
    """
    host, port = check_address(address)
    subnet = subnet or _subnet_of(host)
    async with open_node(signaling, subnet, **node_options) as node:
        stream = await node.connect((host, port))
        async with stream:
            yield stream
