"""Message pipes in the browser: one ``RTCDataChannel``, or an in-page loopback pair.

A pipe carries whole binary messages, reliably and in order, between this
node and one peer: the same contract as
:class:`unisockets.transport.base.MessagePipe`, shaped for a callback world.
The browser *pushes* messages (the channel's ``message`` event), so a pipe
hands each one to the receiver its stream registered with
:meth:`Pipe.set_receiver`; messages that arrive before that (a channel the
peer opened before our ``accept`` claimed it) wait in the pipe.

Sending never blocks: ``RTCDataChannel.send`` queues in the browser
(``bufferedAmount``). The stream layer above bounds what is queued with its
credit window (:mod:`unisockets.protocol.stream`), so no send-side high-water
mark is needed here; :meth:`Pipe.wait_drained` lets a closing stream wait
until its last frames left.

How a pipe ends: the peer closes its channel (a clean end: the stream then
knows from its EOF frame whether anything was lost), the link under it fails
(:meth:`Pipe.break_`), or we close it (:meth:`Pipe.close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ..protocol.stream import DEFAULT_MAX_MESSAGE_SIZE
from .errors import BrokenResourceError, ClosedResourceError
from .runtime import EventListeners, Runtime, settle

__all__ = ["LOW_WATER", "MAX_MESSAGE_SIZE", "DataChannelPipe", "Pipe", "loopback_pair"]

#: The largest message a pipe carries, bytes (as the native WebRTC transport's pipes:
#: a 64 KiB stream payload and its 1-byte header; Chromium takes 256 KiB).
MAX_MESSAGE_SIZE: Final = DEFAULT_MAX_MESSAGE_SIZE
#: The channel's ``bufferedAmountLowThreshold`` in bytes: waiters wake below it.
LOW_WATER: Final = 64 * 1024
#: Seconds a closing pipe waits for its buffered messages to leave before it closes anyway.
DRAIN_TIMEOUT: Final = 10.0

#: ``receiver(message)`` gets each message in order.
Receiver = Callable[[bytes], None]
#: ``on_end(error)``: the pipe ended; ``None`` when the peer closed it cleanly.
EndHandler = Callable[[BaseException | None], None]


class PipeState(enum.Enum):
    """Where a pipe is in its life."""

    OPENING = "opening"  # ours, waiting for the peer's DCEP ACK (the channel's "open")
    OPEN = "open"
    ENDED = "ended"  # the peer closed it cleanly
    BROKEN = "broken"  # its link failed
    CLOSED = "closed"  # we closed it


_OPEN: Final = PipeState.OPEN  # the per-message paths' (a global is a cheaper lookup)


class Pipe(ABC):
    """One reliable, ordered, message-preserving pipe to a peer (see the module docstring).

    Attributes:
        label: the pipe's label (the data channel's), e.g. ``"10.0.0.2:0>10.0.0.1:1234"``.
        peer_id: the node at the other end.
        max_message_size: :data:`MAX_MESSAGE_SIZE`.
        state: a :class:`PipeState`.
    """

    max_message_size: int = MAX_MESSAGE_SIZE

    def __init__(self, peer_id: str, label: str, *, opening: bool) -> None:
        self.peer_id = peer_id
        self.label = label
        self.state = PipeState.OPENING if opening else PipeState.OPEN
        self._error: BaseException | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not opening:
            self._opened.set_result(None)
        self._early: deque[bytes] = deque()
        self._ended_early = False
        self._receiver: Receiver | None = None
        self._on_end: EndHandler | None = None
        self._close_callbacks: list[Callable[[Pipe], object]] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r} to {self.peer_id} {self.state.value}>"

    # --- used by the stream ----------------------------------------------------------------

    def set_receiver(self, receiver: Receiver, on_end: EndHandler) -> None:
        """Deliver messages to ``receiver`` from now on, those that waited first.

        Args:
            receiver: called with each message, in order.
            on_end: called once when the pipe ends by the peer or a failure
                (not when we close it).
        """
        self._receiver, self._on_end = receiver, on_end
        while self._early:
            receiver(self._early.popleft())
        if self._ended_early or self.state in (PipeState.ENDED, PipeState.BROKEN):
            on_end(self._error)

    def detach(self) -> None:
        """Stop delivering to the receiver; drop what waits; queue what comes next.

        For a pipe shared by successive connections (a legacy peer's channel):
        the next :meth:`set_receiver` gets only what arrives after this.
        """
        self._receiver = self._on_end = None
        self._early.clear()

    @abstractmethod
    def send(self, message: bytes) -> None:
        """Queue one message (1..:attr:`max_message_size` bytes) for the peer.

        Raises:
            ValueError: the message is empty or too large.
            ClosedResourceError: we closed the pipe.
            BrokenResourceError: the pipe ended or broke, or is not open yet.
        """

    @property
    @abstractmethod
    def buffered_amount(self) -> int:
        """Bytes queued by :meth:`send` that have not left for the network yet."""

    @abstractmethod
    async def wait_drained(self) -> None:
        """Wait until :attr:`buffered_amount` is 0, or the pipe ended, or :data:`DRAIN_TIMEOUT`."""

    async def wait_open(self) -> None:
        """Wait until the peer acknowledged the pipe (outgoing pipes).

        Raises:
            BrokenResourceError: it broke or ended first.
            ClosedResourceError: we closed it meanwhile.
        """
        await asyncio.shield(self._opened)
        self._check_sendable()

    def add_close_callback(self, callback: Callable[[Pipe], object]) -> None:
        """Call ``callback(pipe)`` once when the pipe ends, breaks or is closed."""
        self._close_callbacks.append(callback)

    async def aclose(self) -> None:
        """Close the pipe and wait until the peer acknowledged it (at most :data:`DRAIN_TIMEOUT`).

        For a data channel the close is an SCTP stream reset, which the peer
        performs only after it received every message sent before it (RFC 6525,
        5.2.2), so once this returns, closing the whole peer connection loses
        nothing.
        """
        self.close()
        await self._wait_closed()

    async def _wait_closed(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        """Close the pipe (idempotent); messages already sent are still delivered."""
        if self.state in (PipeState.CLOSED,):
            return
        was = self.state
        self.state = PipeState.CLOSED
        self._early.clear()
        settle(self._opened)
        self._close_impl(was)
        self._run_close_callbacks()

    def break_(self, error: BaseException) -> None:
        """Fail the pipe because its link failed (idempotent; nothing after a close)."""
        if self.state not in (PipeState.OPEN, PipeState.OPENING):
            return
        self.state = PipeState.BROKEN
        self._error = error
        settle(self._opened)
        self._close_impl(PipeState.BROKEN)
        self._ended(error)

    # --- for subclasses --------------------------------------------------------------------

    @abstractmethod
    def _close_impl(self, previous: PipeState) -> None:
        """Release the underlying channel (called once, from close() or break_())."""

    def _check_sendable(self) -> None:
        if self.state is PipeState.OPEN:
            return
        if self.state is PipeState.CLOSED:
            raise ClosedResourceError(f"pipe {self.label!r} was closed")
        if self.state is PipeState.OPENING:
            raise BrokenResourceError(f"pipe {self.label!r} is not open yet")
        error = BrokenResourceError(f"pipe {self.label!r} {self.state.value}")
        error.__cause__ = self._error
        raise error

    @staticmethod
    def _check_message(message: bytes) -> None:
        if not message:
            raise ValueError("a message must not be empty")
        if len(message) > MAX_MESSAGE_SIZE:
            raise ValueError(f"message of {len(message)} bytes exceeds {MAX_MESSAGE_SIZE}")

    def _opened_now(self) -> None:
        if self.state is PipeState.OPENING:
            self.state = PipeState.OPEN
        settle(self._opened)

    def _deliver(self, message: bytes) -> None:
        if self.state in (PipeState.CLOSED, PipeState.BROKEN) or not message:
            return  # empty messages (browsers can send them) carry nothing for us
        if self._receiver is None:
            self._early.append(message)
        else:
            self._receiver(message)

    def _peer_closed(self) -> None:
        """The peer closed the channel cleanly."""
        if self.state not in (PipeState.OPEN, PipeState.OPENING):
            return
        if self.state is PipeState.OPENING:
            self.state = PipeState.BROKEN
            self._error = BrokenResourceError("the data channel closed before it opened")
        else:
            self.state = PipeState.ENDED
        settle(self._opened)
        self._ended(self._error)

    def _ended(self, error: BaseException | None) -> None:
        if self._on_end is None:
            self._ended_early = True
        else:
            self._on_end(error)
        self._run_close_callbacks()

    def _run_close_callbacks(self) -> None:
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback(self)


class DataChannelPipe(Pipe):
    """A pipe over one browser ``RTCDataChannel`` (binary messages, ``arraybuffer``).

    Args:
        channel: the ``RTCDataChannel`` (ours from ``createDataChannel`` or the
            peer's from the ``datachannel`` event).
        peer_id: the node at the other end.
        incoming: True when the peer opened it (it is open already).
        link_alive: tells whether the peer connection is still up; a
            ``close`` event while it is means the peer closed the channel.
        runtime: the platform the channel belongs to.
    """

    def __init__(
        self,
        channel: Any,
        peer_id: str,
        *,
        incoming: bool,
        link_alive: Callable[[], bool],
        runtime: Runtime,
    ) -> None:
        super().__init__(peer_id, str(channel.label), opening=not incoming)
        self._channel = channel
        self._link_alive = link_alive
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._channel_closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runtime = runtime
        self._listeners = EventListeners(runtime, on_error=lambda exc: self.break_(exc))
        channel.binaryType = "arraybuffer"
        channel.bufferedAmountLowThreshold = LOW_WATER
        self._listeners.add(channel, "open", lambda _: self._opened_now())
        self._listeners.add(channel, "message", self._on_message_event)
        self._listeners.add(channel, "bufferedamountlow", lambda _: self._wake_drained())
        self._listeners.add(channel, "close", lambda _: self._on_channel_close())
        if str(channel.readyState) == "open":
            self._opened_now()
        # Whether the runtime sends bytes as they are (natively: to_wire is bytes());
        # then a bytes message skips the call (the browser's makes a Uint8Array).
        probe = b"\x00"
        self._wire_is_bytes = runtime.to_wire(probe) is probe

    def _on_message_event(self, event: Any) -> None:
        """The channel's ``message`` event: its data as bytes to :meth:`Pipe._deliver`."""
        data = event.data
        if type(data) is not bytes:
            data = self._runtime.to_bytes(data)  # an ArrayBuffer, a text message
        if data and self.state is _OPEN:  # the common case: Pipe._deliver, inline
            receiver = self._receiver
            if receiver is not None:
                receiver(data)
                return
        self._deliver(data)

    def send(self, message: bytes) -> None:
        """Queue one message on the data channel (see :meth:`Pipe.send`)."""
        if self.state is not _OPEN or not 0 < len(message) <= MAX_MESSAGE_SIZE:
            self._check_message(message)
            self._check_sendable()
        try:
            if type(message) is bytes and self._wire_is_bytes:
                self._channel.send(message)
            else:
                self._channel.send(self._runtime.to_wire(message))
        except Exception as exc:  # the channel closed under us (a JsException)
            self.break_(exc)
            self._check_sendable()

    @property
    def buffered_amount(self) -> int:
        """The channel's ``bufferedAmount`` in bytes (0 once it is closed)."""
        if self.state is PipeState.CLOSED:
            return 0
        return int(self._channel.bufferedAmount)

    async def wait_drained(self) -> None:
        """Wait until the channel's ``bufferedAmount`` is 0 (see :meth:`Pipe.wait_drained`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        while self.state is PipeState.OPEN and self.buffered_amount and loop.time() < deadline:
            if self.buffered_amount > LOW_WATER:
                waiter = loop.create_future()
                self._drain_waiters.append(waiter)
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        await waiter
                except TimeoutError:
                    return
                finally:
                    if waiter in self._drain_waiters:
                        self._drain_waiters.remove(waiter)
            else:
                await asyncio.sleep(0.005)  # below the threshold: no event tells us

    def _wake_drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            settle(waiter)

    def _on_channel_close(self) -> None:
        if self._link_alive():
            self._peer_closed()
        else:
            self.break_(BrokenResourceError(f"the peer link to {self.peer_id} closed"))
        self._listeners.clear()
        self._wake_drained()
        settle(self._channel_closed)

    async def _wait_closed(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT):
                await asyncio.shield(self._channel_closed)

    def _close_impl(self, previous: PipeState) -> None:
        self._wake_drained()
        if str(self._channel.readyState) == "closed":
            self._listeners.clear()
            settle(self._channel_closed)
            return
        with contextlib.suppress(Exception):  # already closed by the browser
            self._channel.close()  # the "close" listener clears the listeners


class _LoopbackPipe(Pipe):
    """One end of an in-page pipe pair: connections from this node to itself."""

    other: _LoopbackPipe

    def send(self, message: bytes) -> None:
        self._check_message(message)
        self._check_sendable()
        asyncio.get_running_loop().call_soon(self.other._deliver, bytes(message))

    @property
    def buffered_amount(self) -> int:
        return 0

    async def wait_drained(self) -> None:
        await asyncio.sleep(0)

    def _close_impl(self, previous: PipeState) -> None:
        # After every message already on its way (call_soon keeps order).
        asyncio.get_running_loop().call_soon(self.other._peer_closed)


def loopback_pair(node_id: str, label: str) -> tuple[Pipe, Pipe]:
    """Two connected in-page pipes labelled ``label``, both open (connections to ourselves).

    Args:
        node_id: this node's id (the ``peer_id`` of both ends).
        label: the connection's label.

    Returns:
        ``(connecting end, accepting end)``.
    """
    a = _LoopbackPipe(node_id, label, opening=False)
    b = _LoopbackPipe(node_id, label, opening=False)
    a.other, b.other = b, a
    return a, b
