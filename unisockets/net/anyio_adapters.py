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

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import trio

from .streams import SocketStream

__all__ = ["AnyioListener", "AnyioSocketStream"]


@contextmanager
def _translate() -> Iterator[None]:
    """trio's stream errors → anyio's (the same names, anyio's classes)."""
    try:
        yield
    except trio.BrokenResourceError as exc:
        raise anyio.BrokenResourceError from exc
    except trio.ClosedResourceError:
        raise anyio.ClosedResourceError from None
    except trio.BusyResourceError:
        raise anyio.BusyResourceError("receiving or sending") from None


class AnyioSocketStream(anyio.abc.ByteStream):
    """An :class:`anyio.abc.ByteStream` over a :class:`~unisockets.net.SocketStream`.

    Args:
        stream: the unisockets stream to wrap (it is closed with this object).

    Typed attributes: ``SocketAttribute.local_address``, ``remote_address``
    (``(host, port)`` tuples), ``local_port``, ``remote_port``, ``family``.
    """

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive at most ``max_bytes`` bytes (anyio ``ByteReceiveStream``).

        Raises:
            anyio.EndOfStream: the peer sent EOF.
            anyio.BrokenResourceError: the connection broke.
            anyio.ClosedResourceError: this stream was closed.
        """
        with _translate():
            data = await self.stream.receive_some(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Send all of ``item`` (anyio ``ByteSendStream``).

        Raises:
            anyio.BrokenResourceError: the connection broke.
            anyio.ClosedResourceError: this stream was closed or EOF was sent.
        """
        with _translate():
            await self.stream.send_all(item)

    async def send_eof(self) -> None:
        """Half-close: the peer's ``receive`` raises ``EndOfStream`` after the data sent."""
        with _translate():
            await self.stream.send_eof()

    async def aclose(self) -> None:
        """Close the stream (the peer reads EOF after what was sent)."""
        await self.stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio typed attributes: the socket addresses and ports."""
        from socket import AF_INET

        local, remote = self.stream.local_address, self.stream.remote_address
        return {
            anyio.abc.SocketAttribute.family: lambda: AF_INET,
            anyio.abc.SocketAttribute.local_address: lambda: local,
            anyio.abc.SocketAttribute.remote_address: lambda: remote,
            anyio.abc.SocketAttribute.local_port: lambda: local[1],
            anyio.abc.SocketAttribute.remote_port: lambda: remote[1],
        }


class AnyioListener(anyio.abc.Listener[AnyioSocketStream]):
    """An :class:`anyio.abc.Listener` over a unisockets listener.

    Args:
        listener: a :class:`trio.abc.Listener` of ``SocketStream`` from
            :meth:`unisockets.net.Node.listen`; closed with this object.
    """

    def __init__(self, listener: trio.abc.Listener[SocketStream]) -> None:
        self.listener = listener

    async def accept(self) -> AnyioSocketStream:
        """Wait for the next connection.

        Raises:
            anyio.ClosedResourceError: the listener was closed.
        """
        with _translate():
            return AnyioSocketStream(await self.listener.accept())

    async def serve(
        self,
        handler: Callable[[AnyioSocketStream], Any],
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
        """Stop listening."""
        await self.listener.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio typed attributes: the listening address."""
        address = getattr(self.listener, "address", None)
        if address is None:
            return {}
        return {
            anyio.abc.SocketAttribute.local_address: lambda: address,
            anyio.abc.SocketAttribute.local_port: lambda: address[1],
        }
