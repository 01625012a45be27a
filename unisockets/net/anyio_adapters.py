"""anyio adapters: the same streams and listeners as :mod:`anyio.abc` objects.

:class:`AnyioSocketStream` is an :class:`anyio.abc.ByteStream` and
:class:`AnyioListener` an :class:`anyio.abc.Listener`; both wrap the trio
objects of :mod:`unisockets.net` and so run on anyio's trio backend. EOF is
anyio's convention here: ``receive`` raises :class:`anyio.EndOfStream`
(where trio's ``receive_some`` returns ``b""``). The local and remote
addresses are typed attributes (:class:`anyio.abc.SocketAttribute`) and
survive further wrapping (e.g. TLS).
"""

from __future__ import annotations

from typing import Any, ClassVar

import trio

from ..aio.adapters import ByteStreamAdapter, DriverErrors, ListenerAdapter
from .streams import SocketStream

__all__ = ["AnyioListener", "AnyioSocketStream"]


class AnyioSocketStream(ByteStreamAdapter[SocketStream]):
    """An :class:`anyio.abc.ByteStream` over a :class:`~unisockets.net.SocketStream`.

    The methods are :class:`~unisockets.aio.adapters.ByteStreamAdapter`'s,
    the same as the asyncio driver's :class:`~unisockets.aio.AioStream`.

    Args:
        stream: the unisockets stream to wrap (it is closed with this object).

    Typed attributes: ``SocketAttribute.local_address``, ``remote_address``
    (``(host, port)`` tuples), ``local_port``, ``remote_port``, ``family``.
    """

    errors: ClassVar[DriverErrors] = DriverErrors(
        trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError
    )


class AnyioListener(ListenerAdapter[AnyioSocketStream]):
    """An :class:`anyio.abc.Listener` over a unisockets listener.

    The methods are :class:`~unisockets.aio.adapters.ListenerAdapter`'s.

    Args:
        listener: a :class:`trio.abc.Listener` of ``SocketStream`` from
            :meth:`unisockets.net.Node.listen`; closed with this object.
    """

    stream_type: ClassVar[type[ByteStreamAdapter[Any]]] = AnyioSocketStream

    def __init__(self, listener: trio.abc.Listener[SocketStream]) -> None:
        super().__init__(listener)
