"""Two native WebRTC transports (str0m) with the benchmark's own signalling: no signaling server.

The native backend's lossy figure needs its candidates rewritten to the relay's
addresses (``benchmarks.lossy_relay``), which the signaling server does not
do. So here the two ends are what ``open_node(..., webrtc_backend="native")``
runs beneath its sockets, :func:`~unisockets.transport.native_rtc.open_native_rtc_transport`
(the same links, str0m peers, I/O task and pipes), one in this process and one
in a child, and their offers, answers and candidates go over the child's
stdin/stdout, through a ``rewrite`` function of the parent (the relay's, or
none on loopback). What is left out is the node layer: the signaling server,
the stream framing of ``net``'s sockets; a pipe's messages are the data
channel's messages, as in the raw aiortc row (``benchmarks.raw_aiortc``).

The child, ``python -m benchmarks.raw_str0m --child '{}'``, is node
:data:`CHILD_ID`; it prints ``{"ready": {}}``, then ``{"signal": {...}}``
lines (``offer``, ``answer`` or ``candidate``) for the parent's node
:data:`PARENT_ID`, takes the same lines (without the ``signal`` wrapper) from
it, and serves every pipe labelled :data:`LABEL` like
:func:`benchmarks.streams.serve_connection`: a first message ``b"s"`` +
8-byte length makes it a sink answering ``b"k"`` once that many bytes
arrived; ``b"e"`` makes it echo every later message. It runs until its
stdin closes. Every wait is bounded by ``common.LINK_TIMEOUT``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from unisockets.transport.base import SignalSender
from unisockets.transport.native_rtc import NativeRTCTransport, open_native_rtc_transport

from . import common

__all__ = ["CHILD_ID", "LABEL", "PARENT_ID", "open_remote_pair"]

T = TypeVar("T")

logger = logging.getLogger("benchmarks.raw_str0m")

#: The node ids of the two ends (the parent's offers).
PARENT_ID, CHILD_ID = "a", "b"
#: The label of the pipes the child serves.
LABEL = "bench"
#: A function rewriting an SDP or a candidate on its way (the relay's candidates).
Rewrite = Callable[[str], Awaitable[str]]


class _Signals(SignalSender):
    """A transport's signals as ``{"offer" | "answer" | "candidate": text}`` messages."""

    def __init__(self, forward: Callable[[dict[str, str]], Awaitable[None]]) -> None:
        self._forward = forward

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        """Forward our offer."""
        await self._forward({"offer": sdp})

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        """Forward our answer."""
        await self._forward({"answer": sdp})

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        """Forward one candidate (a JSON ``RTCIceCandidateInit`` string)."""
        await self._forward({"candidate": candidate})


async def _deliver(transport: NativeRTCTransport, peer_id: str, message: dict[str, str]) -> None:
    if "offer" in message:
        await transport.handle_offer(peer_id, message["offer"])
    elif "answer" in message:
        await transport.handle_answer(peer_id, message["answer"])
    elif "candidate" in message:
        await transport.handle_candidate(peer_id, message["candidate"])


async def _bounded(awaitable: Awaitable[T], what: str) -> T:
    """``await awaitable``, at most ``common.LINK_TIMEOUT`` s (TimeoutError saying ``what``)."""
    with trio.move_on_after(common.LINK_TIMEOUT):
        return await awaitable
    raise TimeoutError(f"waited {common.LINK_TIMEOUT:g} s for {what}: the link is dead")


def _open(local_id: str, signals: _Signals) -> Any:
    return open_native_rtc_transport(
        local_id,
        signals,
        host_addresses=["127.0.0.1"],
        link_timeout=common.LINK_TIMEOUT,
        claim_timeout=common.LINK_TIMEOUT,
    )


@asynccontextmanager
async def open_remote_pair(rewrite: Rewrite | None = None) -> AsyncIterator[NativeRTCTransport]:
    """This process's native transport, with the child's as its peer :data:`CHILD_ID`.

    Args:
        rewrite: applied to every offer, answer and candidate both ways
            (e.g. the relay's candidate rewriting); an empty result drops a
            candidate. None: signals pass unchanged.

    Yields:
        The transport of node :data:`PARENT_ID`: ``open_pipe(CHILD_ID, LABEL)``.
    """
    lock = trio.Lock()  # a rewrite is one request at a time to the relay

    async def rewritten(message: dict[str, str]) -> dict[str, str] | None:
        if rewrite is None:
            return message
        ((key, text),) = message.items()
        async with lock:
            text = await _bounded(rewrite(text), "the relay")
        return {key: text} if text else None

    async with common.open_trio_child("benchmarks.raw_str0m", {}) as child:
        await _bounded(child.receive(), "the child to be ready")

        async def to_child(message: dict[str, str]) -> None:
            if (out := await rewritten(message)) is not None:
                await child.send(out)

        async with (
            _open(PARENT_ID, _Signals(to_child)) as transport,
            trio.open_nursery() as nursery,
        ):

            async def from_child() -> None:
                while True:
                    message = (await child.receive())["signal"]
                    if (out := await rewritten(message)) is not None:
                        await _deliver(transport, CHILD_ID, out)

            nursery.start_soon(from_child)
            yield transport
            nursery.cancel_scope.cancel()


async def _serve(transport: NativeRTCTransport) -> None:
    async with trio.open_nursery() as nursery:
        while True:
            try:
                pipe = await transport.accept_pipe(PARENT_ID, LABEL)
            except TimeoutError:
                continue
            nursery.start_soon(_serve_pipe, pipe)


async def _serve_pipe(pipe: Any) -> None:
    try:
        first = await pipe.receive_message()
        if first[:1] == b"s":
            remaining = int.from_bytes(first[1:9], "big")
            while remaining > 0:
                remaining -= len(await pipe.receive_message())
            await pipe.send_message(b"k")
        elif first[:1] == b"e":
            while True:
                await pipe.send_message(await pipe.receive_message())
    except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _child_main() -> None:
    parent = common.TrioParent()

    async def to_parent(message: dict[str, str]) -> None:
        parent.send({"signal": message})

    async with _open(CHILD_ID, _Signals(to_parent)) as transport, trio.open_nursery() as nursery:
        nursery.start_soon(_serve, transport)
        parent.send({"ready": {}})
        while (message := await parent.receive()) is not None:
            await _deliver(transport, PARENT_ID, message)
        nursery.cancel_scope.cancel()


def main() -> None:
    """Entry point of the child (``--child JSON``)."""
    args = common.parse_args("raw str0m (native transport) child", ("str0m",))
    if args.child is None:
        sys.exit("this module is the native transport child of benchmarks.webrtc_stacks")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    trio.run(_child_main)


if __name__ == "__main__":
    main()
