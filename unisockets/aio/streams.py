"""anyio's stream and listener interfaces over the asyncio driver's streams.

What an asyncio program holds (docs/concepts.md, "asyncio and trio"):
:class:`AioStream` is an :class:`anyio.abc.ByteStream` (``receive`` raises
:class:`anyio.EndOfStream` at EOF, ``send_eof`` half-closes) and
:class:`AioListener` an :class:`anyio.abc.Listener`; the local and remote
addresses are typed attributes (:class:`anyio.abc.SocketAttribute`), so they
survive further wrapping (e.g. TLS). Errors are anyio's: the driver's
trio-named errors (:mod:`unisockets.driver.errors`) become the anyio classes
of the same name, chained from the cause.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, ClassVar

from ..driver import errors as driver
from ..driver.legacy import AnyStream
from ..driver.node import Listener
from .adapters import ByteStreamAdapter, DriverErrors, ListenerAdapter
from .adapters import translate as _translate

__all__ = ["AioListener", "AioStream"]


class AioStream(ByteStreamAdapter[AnyStream]):
    """A connected overlay stream as an :class:`anyio.abc.ByteStream`.

    Made by :meth:`unisockets.aio.AioNode.connect` and :meth:`AioListener.accept`;
    the methods are :class:`~unisockets.aio.adapters.ByteStreamAdapter`'s.

    Args:
        stream: the driver's stream (closed with this object).

    Attributes:
        stream: the driver's stream (byte counters): a
            :class:`unisockets.driver.streams.Stream`, or a
            :class:`unisockets.driver.legacy.LegacyStream` with an original node.

    Typed attributes: ``SocketAttribute.local_address``, ``remote_address``
    (``(host, port)`` tuples), ``local_port``, ``remote_port``, ``family``.
    """

    errors: ClassVar[DriverErrors] = DriverErrors(
        driver.BrokenResourceError, driver.ClosedResourceError, driver.BusyResourceError
    )

    def __repr__(self) -> str:
        return f"<AioStream {self.stream!r}>"


class AioListener(ListenerAdapter[AioStream]):
    """A listening overlay address as an :class:`anyio.abc.Listener`.

    Made by :meth:`unisockets.aio.AioNode.listen`; the methods are
    :class:`~unisockets.aio.adapters.ListenerAdapter`'s (``accept`` also
    raises :class:`unisockets.SignalingError` when the address
    was lost).

    Args:
        listener: the driver's listener (closed with this object).
    """

    stream_type: ClassVar[type[ByteStreamAdapter[Any]]] = AioStream

    def __init__(self, listener: Listener) -> None:
        super().__init__(listener)
        self.listener: Listener = listener

    def __repr__(self) -> str:
        return f"<AioListener {self.listener.address[0]}:{self.listener.address[1]}>"

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self.listener.address


def translate() -> AbstractContextManager[None]:
    """The driver's stream errors → anyio's (:func:`unisockets.aio.adapters.translate`)."""
    return _translate(AioStream.errors)
