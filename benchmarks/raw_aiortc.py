"""Raw aiortc data channels in plain asyncio: the baseline under "unisockets over WebRTC".

No unisockets layer is on the data path: no trio, no thread bridge, no stream
framing, no signaling server. Offers and answers go straight to the other peer
connection (one process) or over the child's stdin/stdout (two processes);
aiortc puts every candidate in the SDP, so one exchange sets up a link. The
only thing borrowed from unisockets is the ICE configuration that our
transport applies too (loopback host candidates, a 4 MiB UDP receive buffer,
see ``unisockets.transport.webrtc_ice``), so both sides of a ratio run on the
same ICE settings; consent checks are aioice's own. Sends wait while
``bufferedAmount`` is above the same high-water mark our pipes use. Every wait
on the link is bounded by ``common.LINK_TIMEOUT``: a dead link ends the run
with an error, never a hang.

The answering side treats every data channel like
:func:`benchmarks.streams.serve_connection`: the first message ``b"s"`` +
8-byte length makes it a sink that answers ``b"k"`` once that many bytes
arrived; ``b"e"`` makes it echo every later message. The child,
``python -m benchmarks.raw_aiortc --child '{}'``, prints ``{"ready": {}}``,
answers ``{"offer": sdp}`` lines with ``{"answer": sdp}`` and serves until its
stdin closes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from unisockets.transport.webrtc_ice import (
    install_aioice_tuning,
    raise_receive_buffers,
    set_host_addresses,
)

from . import common

__all__ = [
    "HIGH_WATER",
    "LOW_WATER",
    "Answerer",
    "Channel",
    "open_answerer",
    "open_link",
    "open_remote_answerer",
    "tune_loop",
]

logger = logging.getLogger("benchmarks.raw_aiortc")

#: Bytes buffered in a channel above which a sender waits (as ``webrtc_pipe.HIGH_WATER``).
HIGH_WATER = 256 * 1024
#: ``bufferedAmountLowThreshold`` (as ``webrtc_pipe.LOW_WATER``).
LOW_WATER = 64 * 1024

#: A function sending an SDP offer to the answering side and returning its answer.
AnswerFn = Callable[[str], Awaitable[str]]


def tune_loop() -> None:
    """Gather ICE candidates on 127.0.0.1 only, as our tests do (call inside the loop)."""
    install_aioice_tuning()
    set_host_addresses(asyncio.get_running_loop(), ["127.0.0.1"])


def new_peer_connection() -> RTCPeerConnection:
    """A peer connection with no ICE servers (loopback only)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class Channel:
    """A data channel with a receive queue and send backpressure (client side)."""

    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        channel.bufferedAmountLowThreshold = LOW_WATER
        loop = asyncio.get_running_loop()
        self._low = asyncio.Event()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._messages: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        if channel.readyState == "open":
            self._opened.set_result(None)
        channel.on("open", self._on_open)
        channel.on("message", self._on_message)
        channel.on("bufferedamountlow", self._low.set)

    def _on_open(self) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_message(self, message: bytes | str) -> None:
        self._messages.append(message if isinstance(message, bytes) else message.encode())
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_open(self) -> None:
        """Wait until the channel is open (the peer acked it); TimeoutError if it never does."""
        await common.link_wait(asyncio.shield(self._opened), f"channel {self.label!r} to open")

    @property
    def label(self) -> str:
        """The channel's label."""
        return str(self.channel.label)

    async def send(self, data: bytes) -> None:
        """Send one message, first waiting while more than :data:`HIGH_WATER` is buffered."""
        while self.channel.bufferedAmount > HIGH_WATER:
            self._low.clear()
            await common.link_wait(self._low.wait(), f"channel {self.label!r} to drain")
        self.channel.send(data)

    async def receive(self) -> bytes:
        """The next message, waiting for it."""
        while not self._messages:
            self._waiter = asyncio.get_running_loop().create_future()
            await common.link_wait(self._waiter, f"a message on channel {self.label!r}")
        return self._messages.popleft()

    async def receive_bytes(self, size: int) -> int:
        """Receive messages until ``size`` bytes arrived; return how many did."""
        received = 0
        while received < size:
            received += len(await self.receive())
        return received

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


class _ServerChannel:
    """The answering side of one channel: sink or echo, chosen by the first message."""

    __slots__ = ("channel", "mode", "remaining")

    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self.mode = b""
        self.remaining = 0
        channel.on("message", self._on_message)

    def _on_message(self, message: bytes | str) -> None:
        try:
            data = message if isinstance(message, bytes) else message.encode()
            if self.mode == b"e":
                self.channel.send(data)
            elif self.mode == b"s":
                self.remaining -= len(data)
                if self.remaining <= 0:
                    self.channel.send(b"k")
            else:
                self.mode = data[:1]
                if self.mode == b"s":
                    self.remaining = int.from_bytes(data[1:9], "big")
        except Exception:  # an aiortc handler must never raise (aiortc notes, pitfall 1)
            logger.exception("server channel handler failed")


class Answerer:
    """Answers offers with new peer connections whose channels sink or echo."""

    def __init__(self) -> None:
        self.connections: list[RTCPeerConnection] = []

    async def answer(self, sdp: str) -> str:
        """Answer ``sdp`` with a new peer connection; return the answer SDP."""
        pc = new_peer_connection()
        self.connections.append(pc)
        pc.on("datachannel", _ServerChannel)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        raise_receive_buffers(pc)
        return str(pc.localDescription.sdp)

    async def aclose(self) -> None:
        """Close every peer connection."""
        for pc in self.connections:
            await pc.close()
        self.connections.clear()


@asynccontextmanager
async def open_answerer() -> AsyncIterator[AnswerFn]:
    """An answerer in this process; yields its ``answer`` function."""
    answerer = Answerer()
    try:
        yield answerer.answer
    finally:
        await answerer.aclose()


@asynccontextmanager
async def open_remote_answerer() -> AsyncIterator[tuple[AnswerFn, common.AsyncioChild]]:
    """An answerer in a child process; yields its ``answer`` function and the child."""
    async with common.open_asyncio_child("benchmarks.raw_aiortc", {}) as child:
        await common.link_wait(child.receive(), "the child to be ready")
        lock = asyncio.Lock()

        async def answer(sdp: str) -> str:
            async with lock:
                await child.send({"offer": sdp})
                reply = await common.link_wait(child.receive(), "the child's answer")
                return str(reply["answer"])

        yield answer, child


async def child_peak_rss(child: common.AsyncioChild) -> int:
    """Ask the child for its peak RSS since it was ready, in bytes."""
    await child.send({"peak_rss": True})
    return int((await common.link_wait(child.receive(), "the child's peak RSS"))["peak_rss"])


async def open_link(answer: AnswerFn) -> tuple[RTCPeerConnection, Channel]:
    """Set up a peer connection with one channel (``"boot"``); return both once it is open."""
    pc = new_peer_connection()
    boot = Channel(pc.createDataChannel("boot"))
    await pc.setLocalDescription(await pc.createOffer())
    answer_sdp = await answer(str(pc.localDescription.sdp))
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
    raise_receive_buffers(pc)
    await boot.wait_open()
    return pc, boot


async def open_channel(pc: RTCPeerConnection, label: str) -> Channel:
    """Open one more channel on a connected peer connection and wait until it is open."""
    channel = Channel(pc.createDataChannel(label))
    await channel.wait_open()
    return channel


async def _child_main() -> None:
    tune_loop()
    common.raise_fd_limit(20000)
    parent = await common.AsyncioParent.open()
    answerer = Answerer()
    common.reset_peak_rss()
    parent.send({"ready": {}})
    try:
        while (message := await parent.receive()) is not None:
            if "offer" in message:
                parent.send({"answer": await answerer.answer(message["offer"])})
            if message.get("peak_rss"):
                parent.send({"peak_rss": common.peak_rss()})
            if message.get("reset_peak_rss"):
                common.reset_peak_rss()
                parent.send({"ok": True})
    finally:
        await answerer.aclose()


def main() -> None:
    """Entry point of the child (``--child JSON``)."""
    args = common.parse_args("raw aiortc answering child", ("aiortc",))
    if args.child is None:
        sys.exit(
            "this module is the raw aiortc child of the benchmarks; run bulk, rtt, ... instead"
        )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_child_main())


def run(coro_fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``asyncio.run(coro_fn(*args))`` with the loop tuned first."""

    async def tuned() -> Any:
        tune_loop()
        return await coro_fn(*args)

    return asyncio.run(tuned())


if __name__ == "__main__":
    main()
