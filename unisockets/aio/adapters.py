"""anyio's stream and listener interfaces over any unisockets stream, on either driver.

One shape serves both runtimes (docs/concepts.md, "asyncio and trio"): the
asyncio driver's streams (:class:`unisockets.aio.AioStream`) and the trio
driver's (:class:`unisockets.net.anyio_adapters.AnyioSocketStream`) have
trio's method names (``receive_some`` returning ``b""`` at EOF,
``send_all``, ``send_eof``), so :class:`ByteStreamAdapter` turns either into
an :class:`anyio.abc.ByteStream` (``receive`` raises
:class:`anyio.EndOfStream` at EOF) and :class:`ListenerAdapter` a listener
into an :class:`anyio.abc.Listener`. Each subclass names the errors of its
driver (:attr:`ByteStreamAdapter.errors`), which become anyio's classes of
the same names, chained from the cause. The addresses are typed attributes
(:class:`anyio.abc.SocketAttribute`), so they survive further wrapping
(e.g. TLS). No trio here: this module loads in an asyncio program.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, NamedTuple, NoReturn, Protocol, TypeVar

import anyio
import anyio.abc

__all__ = [
    "ByteStreamAdapter",
    "DriverErrors",
    "ListenerAdapter",
    "address_attributes",
    "raise_translated",
]


class DriverErrors(NamedTuple):
    """The classes a driver raises for a broken, closed and busy resource (trio's three)."""

    broken: type[BaseException]
    closed: type[BaseException]
    busy: type[BaseException]


@contextmanager
def translate(errors: DriverErrors) -> Iterator[None]:
    """A driver's stream errors → anyio's (the same names, anyio's classes).

    Raises:
        anyio.BrokenResourceError: for ``errors.broken`` (chained from it).
        anyio.ClosedResourceError: for ``errors.closed``.
        anyio.BusyResourceError: for ``errors.busy``.
    """
    try:
        yield
    except errors as exc:
        raise_translated(errors, exc)


def raise_translated(errors: DriverErrors, exc: BaseException) -> NoReturn:
    """Raise anyio's error for ``exc``, one of ``errors`` (what :func:`translate` does).

    For the streams' hot paths (``receive``, ``send``): an ``except errors``
    clause costs nothing until an error, a context manager a generator per call.

    Raises:
        anyio.BrokenResourceError: for ``errors.broken`` (chained from it).
        anyio.ClosedResourceError: for ``errors.closed``.
        anyio.BusyResourceError: for ``errors.busy``.
    """
    if isinstance(exc, errors.broken):
        raise anyio.BrokenResourceError(str(exc)) from exc
    if isinstance(exc, errors.closed):
        raise anyio.ClosedResourceError from None
    raise anyio.BusyResourceError(str(exc)) from None


def address_attributes(
    local: tuple[str, int], remote: tuple[str, int] | None
) -> dict[Any, Callable[[], Any]]:
    """anyio typed attributes of ``(host, port)`` addresses (no remote one for a listener).

    Returns:
        ``SocketAttribute.family`` (``AF_INET``), ``local_address``,
        ``local_port``, and with ``remote`` also ``remote_address`` and ``remote_port``.
    """
    found: dict[Any, Callable[[], Any]] = {
        anyio.abc.SocketAttribute.family: lambda: socket.AF_INET,
        anyio.abc.SocketAttribute.local_address: lambda: local,
        anyio.abc.SocketAttribute.local_port: lambda: local[1],
    }
    if remote is not None:
        found[anyio.abc.SocketAttribute.remote_address] = lambda: remote
        found[anyio.abc.SocketAttribute.remote_port] = lambda: remote[1]
    return found


class DriverStream(Protocol):
    """What the adapter needs of a driver's stream (trio's ``HalfCloseableStream`` shape)."""

    @property
    def local_address(self) -> tuple[str, int]: ...

    @property
    def remote_address(self) -> tuple[str, int]: ...

    async def receive_some(self, max_bytes: int | None = None) -> bytes: ...

    async def send_all(self, data: bytes) -> None: ...

    async def send_eof(self) -> None: ...

    async def aclose(self) -> None: ...


S = TypeVar("S", bound=DriverStream)
A = TypeVar("A", bound="ByteStreamAdapter[Any]")


class ByteStreamAdapter(anyio.abc.ByteStream, Generic[S]):
    """A driver's connected stream as an :class:`anyio.abc.ByteStream`.

    Args:
        stream: the driver's stream (closed with this object).

    Attributes:
        stream: the driver's stream (its byte counters, its addresses).
        errors: the driver's error classes (set by each subclass).

    Typed attributes: ``SocketAttribute.local_address``, ``remote_address``
    (``(host, port)`` tuples), ``local_port``, ``remote_port``, ``family``.
    """

    errors: ClassVar[DriverErrors]

    def __init__(self, stream: S) -> None:
        self.stream = stream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive 1..``max_bytes`` bytes (anyio ``ByteReceiveStream``).

        Raises:
            anyio.EndOfStream: the peer sent EOF and everything before it was received.
            anyio.BrokenResourceError: the link failed or the peer reset the stream.
            anyio.ClosedResourceError: this stream was closed.
            anyio.BusyResourceError: another task is receiving.
        """
        try:
            data = await self.stream.receive_some(max_bytes)
        except self.errors as exc:
            raise_translated(self.errors, exc)
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
        try:
            await self.stream.send_all(item)
        except self.errors as exc:
            raise_translated(self.errors, exc)

    async def send_eof(self) -> None:
        """Half-close: the peer's ``receive`` raises ``EndOfStream`` after the data sent.

        Raises:
            anyio.BrokenResourceError, anyio.ClosedResourceError: as :meth:`send`.
        """
        with translate(self.errors):
            await self.stream.send_eof()

    async def aclose(self) -> None:
        """Close (the peer reads EOF after everything sent, as with TCP). Idempotent."""
        await self.stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio typed attributes: the socket addresses and ports."""
        return address_attributes(self.stream.local_address, self.stream.remote_address)


class ListenerAdapter(anyio.abc.Listener[A], Generic[A]):
    """A driver's listener as an :class:`anyio.abc.Listener` of :class:`ByteStreamAdapter`.

    Args:
        listener: the driver's listener (closed with this object).

    Attributes:
        listener: the driver's listener.
        stream_type: the adapter each accepted stream is wrapped in (set by each subclass).
    """

    stream_type: ClassVar[type[ByteStreamAdapter[Any]]]

    def __init__(self, listener: Any) -> None:
        self.listener = listener

    async def accept(self) -> A:
        """Wait for the next connection.

        Raises:
            anyio.ClosedResourceError: the listener (or node) was closed.
        """
        with translate(self.stream_type.errors):
            stream = await self.listener.accept()
        adapted: A = self.stream_type(stream)  # type: ignore[assignment]
        return adapted

    async def serve(
        self,
        handler: Callable[[A], Any],
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
        """anyio typed attributes: the listening address (none without one)."""
        address = getattr(self.listener, "address", None)
        if address is None:
            return {}
        return address_attributes(address, None)
