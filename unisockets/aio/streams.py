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

import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc

from ..driver import errors as driver
from ..driver.legacy import AnyStream
from ..driver.node import Listener

__all__ = ["AioListener", "AioStream"]


@contextmanager
def translate() -> Iterator[None]:
    """The driver's stream errors → anyio's (the same names, anyio's classes)."""
    try:
        yield
    except driver.BrokenResourceError as exc:
        raise anyio.BrokenResourceError(str(exc)) from exc
    except driver.ClosedResourceError:
        raise anyio.ClosedResourceError from None
    except driver.BusyResourceError as exc:
        raise anyio.BusyResourceError(str(exc)) from None


def _address_attributes(
    local: tuple[str, int], remote: tuple[str, int] | None
) -> dict[Any, Callable[[], Any]]:
    found: dict[Any, Callable[[], Any]] = {
        anyio.abc.SocketAttribute.family: lambda: socket.AF_INET,
        anyio.abc.SocketAttribute.local_address: lambda: local,
        anyio.abc.SocketAttribute.local_port: lambda: local[1],
    }
    if remote is not None:
        found[anyio.abc.SocketAttribute.remote_address] = lambda: remote
        found[anyio.abc.SocketAttribute.remote_port] = lambda: remote[1]
    return found


class AioStream(anyio.abc.ByteStream):
    """A connected overlay stream as an :class:`anyio.abc.ByteStream`.

    Made by :meth:`unisockets.aio.AioNode.connect` and :meth:`AioListener.accept`.

    Args:
        stream: the driver's stream (closed with this object).

    Attributes:
        stream: the driver's stream (byte counters): a
            :class:`unisockets.driver.streams.Stream`, or a
            :class:`unisockets.driver.legacy.LegacyStream` with an original node.

    Typed attributes: ``SocketAttribute.local_address``, ``remote_address``
    (``(host, port)`` tuples), ``local_port``, ``remote_port``, ``family``.
    """

    def __init__(self, stream: AnyStream) -> None:
        self.stream = stream

    def __repr__(self) -> str:
        return f"<AioStream {self.stream!r}>"

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive 1..``max_bytes`` bytes (anyio ``ByteReceiveStream``).

        Raises:
            anyio.EndOfStream: the peer sent EOF and everything before it was received.
            anyio.BrokenResourceError: the link failed or the peer reset the stream.
            anyio.ClosedResourceError: this stream was closed.
            anyio.BusyResourceError: another task is receiving.
        """
        with translate():
            data = await self.stream.receive_some(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Send all of ``item``, waiting for the peer's credit (anyio ``ByteSendStream``).

        Raises:
            anyio.BrokenResourceError: the link failed or the peer closed or reset.
            anyio.ClosedResourceError: this stream was closed or EOF was sent.
            anyio.BusyResourceError: another task is sending.
        """
        with translate():
            await self.stream.send_all(item)

    async def send_eof(self) -> None:
        """Half-close: the peer's ``receive`` raises ``EndOfStream`` after the data sent.

        Raises:
            anyio.BrokenResourceError, anyio.ClosedResourceError: as :meth:`send`.
        """
        with translate():
            await self.stream.send_eof()

    async def aclose(self) -> None:
        """Close (the peer reads EOF after everything sent, as with TCP). Idempotent."""
        await self.stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio typed attributes: the socket addresses and ports."""
        return _address_attributes(self.stream.local_address, self.stream.remote_address)


class AioListener(anyio.abc.Listener[AioStream]):
    """A listening overlay address as an :class:`anyio.abc.Listener`.

    Made by :meth:`unisockets.aio.AioNode.listen`.

    Args:
        listener: the driver's listener (closed with this object).
    """

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def __repr__(self) -> str:
        return f"<AioListener {self.listener.address[0]}:{self.listener.address[1]}>"

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self.listener.address

    async def accept(self) -> AioStream:
        """Wait for the next connection.

        Raises:
            anyio.ClosedResourceError: the listener (or node) was closed.
            unisockets.driver.errors.SignalingError: the address was lost.
        """
        with translate():
            return AioStream(await self.listener.accept())

    async def serve(
        self,
        handler: Callable[[AioStream], Any],
        task_group: anyio.abc.TaskGroup | None = None,
    ) -> None:
        """Accept forever, running ``handler(stream)`` in a task for each connection.

        Args:
            handler: an async function taking the stream; it should close it.
            task_group: where to run the handlers (default: a task group of our own).
        """
        async with anyio.create_task_group() as own_group:
            group = task_group or own_group
            while True:
                stream = await self.accept()
                group.start_soon(handler, stream)

    async def aclose(self) -> None:
        """Stop listening; returns once the address is released."""
        await self.listener.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio typed attributes: the listening address."""
        return _address_attributes(self.listener.address, None)
