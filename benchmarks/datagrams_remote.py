"""The two-process layout of :mod:`benchmarks.datagrams`: the receiver in a child process.

The parent sends, as in one process; the receiver runs in
``python -m benchmarks.datagrams_remote --child '{"backend": ..., "url": ...}'``
and reports over its stdout, in JSON lines: ``{"ready": [host, port]}`` (for
``aiortc``: ``{"ready": null}``, then it answers ``{"offer": sdp}`` with
``{"answer": sdp}``), ``{"warm": true}`` at the first datagram, ``{"ping":
index, "at": t}`` per ping and, once it sees ``END``, ``{"ended": true,
"received": n, "last": t}``. It exits when its stdin closes.

One-way latency compares the child's arrival time with the parent's send
time: both are :func:`time.perf_counter`, which on Linux is
``CLOCK_MONOTONIC``, one clock for every process of the machine
(:func:`check_shared_clock`). The exchange is written with anyio, so the trio
backends and raw aiortc (asyncio) share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import trio
from aiortc import RTCSessionDescription

import unisockets

from . import common, raw_aiortc

#: Backends whose receiver runs in a trio child; ``aiortc`` runs in an asyncio one.
TRIO_BACKENDS = ("webrtc", "native", "udp")
END = b"END"
PING_WAIT = 0.2

Send = Callable[[bytes], Awaitable[Any]]
Report = Callable[[dict[str, Any]], None]


def check_shared_clock() -> None:
    """Fail unless :func:`time.perf_counter` is one clock for all processes (Linux's monotonic).

    Raises:
        RuntimeError: another implementation (one-way latency across processes is then meaningless).
    """
    implementation = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC" not in implementation:
        raise RuntimeError(f"perf_counter is {implementation}: not shared by processes")


# ---- the parent ---------------------------------------------------------------------------


class _Seen:
    """What the child reported so far (the parent's view of the receiver)."""

    def __init__(self) -> None:
        self.warm = False
        self.ended: dict[str, Any] | None = None
        self.pings: dict[int, float] = {}
        self.changed = anyio.Event()

    def take(self, line: dict[str, Any]) -> None:
        if line.get("warm"):
            self.warm = True
        if "ping" in line:
            self.pings[int(line["ping"])] = float(line["at"])
        if line.get("ended"):
            self.ended = line
        self.changed.set()
        self.changed = anyio.Event()

    async def wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Wait up to ``seconds`` for ``condition()``; whether it holds."""
        with anyio.move_on_after(seconds):
            while not condition():
                await self.changed.wait()
        return condition()


async def exchange(child: Any, send: Send, count: int, size: int, pings: int) -> dict[str, float]:
    """Warm up, send ``count`` datagrams and ``END``, then ``pings``; the child's figures.

    Args:
        child: a :class:`common.TrioChild` or :class:`common.AsyncioChild`, ready.
        send: sends one datagram to the child's receiver.

    Returns:
        ``rate`` (datagrams/s delivered), ``loss`` (%), ``latency`` (µs, median one-way).
    """
    seen = _Seen()

    async def read() -> None:
        while True:
            seen.take(await child.receive())

    payload = bytes(size)
    sent: dict[int, float] = {}
    async with anyio.create_task_group() as group:
        group.start_soon(read)
        for _ in range(int(common.LINK_TIMEOUT / PING_WAIT)):  # the channel opens first
            await send(b"warm")
            if await seen.wait(lambda: seen.warm, PING_WAIT):
                break
        else:
            raise TimeoutError("the receiver never got a datagram")
        started = common.now()
        for _ in range(count):
            await send(payload)
        while seen.ended is None:
            await send(END)
            await seen.wait(lambda: seen.ended is not None, 0.05)  # resend a lost END
        for index in range(pings):
            sent[index] = common.now()
            await send(b"p" + struct.pack("!I", index) + payload[5:])
            await seen.wait(lambda index=index: index in seen.pings, PING_WAIT)
        group.cancel_scope.cancel()
    ended = seen.ended
    elapsed = max(float(ended["last"]) - started, 1e-9)
    latencies = [seen.pings[i] - t for i, t in sent.items() if i in seen.pings]
    return {
        "rate": int(ended["received"]) / elapsed,
        "loss": 100 * (1 - int(ended["received"]) / count),
        "latency": 1e6 * common.median(latencies) if latencies else float("nan"),
    }


async def trio_run(backend: str, count: int, size: int, pings: int) -> dict[str, float]:
    """The parent of a trio backend (webrtc, native, udp): it sends, a child receives."""
    check_shared_clock()
    url = None
    async with contextlib.AsyncExitStack() as stack:
        if backend == "webrtc":
            from unisockets.signaling.server import open_signaling_server

            server = await stack.enter_async_context(
                open_signaling_server(host="127.0.0.1", port=0)
            )
            url = server.url
        child = await stack.enter_async_context(
            common.open_trio_child("benchmarks.datagrams_remote", {"backend": backend, "url": url})
        )
        with trio.fail_after(common.LINK_TIMEOUT):
            ready = await child.receive()
        target = (str(ready["ready"][0]), int(ready["ready"][1]))
        if backend == "udp":
            sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            stack.enter_context(sock)

            async def send(data: bytes) -> None:
                await sock.sendto(data, target)

            return await exchange(child, send, count, size, pings)
        node = await stack.enter_async_context(
            unisockets.open_node(url, ice_addresses=["127.0.0.1"])
            if url
            else unisockets.open_node(None)
        )
        dgram = stack.enter_context(node.socket(unisockets.SOCK_DGRAM))
        if size > dgram.max_payload:
            dgram.max_payload = size
        await dgram.connect(target)
        return await exchange(child, dgram.send, count, size, pings)


async def aiortc_run(count: int, size: int, pings: int) -> dict[str, float]:
    """The parent of raw aiortc: an unordered, never retransmitted channel to the child."""
    check_shared_clock()
    raw_aiortc.tune_loop()
    async with common.open_asyncio_child(
        "benchmarks.datagrams_remote", {"backend": "aiortc"}
    ) as child:
        await common.link_wait(child.receive(), "the child to be ready")
        pc = raw_aiortc.new_peer_connection()
        try:
            channel = raw_aiortc.Channel(
                pc.createDataChannel("datagrams", ordered=False, maxRetransmits=0)
            )
            await pc.setLocalDescription(await pc.createOffer())
            await child.send({"offer": pc.localDescription.sdp})
            reply = await common.link_wait(child.receive(), "the child's answer")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
            raw_aiortc.raise_receive_buffers(pc)
            await channel.wait_open()
            return await exchange(child, channel.send, count, size, pings)
        finally:
            await pc.close()


# ---- the child ----------------------------------------------------------------------------


class _Receiver:
    """Counts datagrams and reports to the parent (see the module docstring)."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.received = 0
        self.last = 0.0
        self.warm = False
        self.ended = False

    def take(self, data: bytes) -> None:
        now = common.now()
        if not self.warm:
            self.warm = True
            self.report({"warm": True})
        if data == END:
            if not self.ended:
                self.ended = True
                self.report({"ended": True, "received": self.received, "last": self.last})
        elif data[:1] == b"p":
            self.report({"ping": struct.unpack_from("!I", data, 1)[0], "at": now})
        elif data != b"warm":
            self.received += 1
            self.last = now


async def _trio_child(params: dict[str, Any]) -> None:
    parent = common.TrioParent()
    receiver = _Receiver(parent.send)
    backend, url = params["backend"], params.get("url")
    async with contextlib.AsyncExitStack() as stack:
        if backend == "udp":
            sock = stack.enter_context(
                trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            )
            await sock.bind(("127.0.0.1", 0))
            receive: Callable[[], Awaitable[bytes]] = lambda: sock.recv(65536)  # noqa: E731
            address = sock.getsockname()
        else:
            node = await stack.enter_async_context(
                unisockets.open_node(url, ice_addresses=["127.0.0.1"])
                if url
                else unisockets.open_node(None)
            )
            dgram = stack.enter_context(node.socket(unisockets.SOCK_DGRAM))
            await dgram.bind(("127.0.0.1" if url is None else "", 0))
            receive = lambda: dgram.recv(65536)  # noqa: E731
            address = dgram.getsockname()
        parent.send({"ready": list(address)})
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                while True:
                    receiver.take(await receive())

            nursery.start_soon(read)
            while await parent.receive() is not None:
                pass
            nursery.cancel_scope.cancel()
        await parent.aclose()


async def _aiortc_child() -> None:
    raw_aiortc.tune_loop()
    parent = await common.AsyncioParent.open()
    receiver = _Receiver(parent.send)
    pc = raw_aiortc.new_peer_connection()

    def on_datachannel(channel: Any) -> None:
        channel.on(
            "message",
            lambda message: receiver.take(
                message if isinstance(message, bytes) else message.encode()
            ),
        )

    pc.on("datachannel", on_datachannel)
    parent.send({"ready": None})
    try:
        while (message := await parent.receive()) is not None:
            if "offer" in message:
                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=message["offer"], type="offer")
                )
                await pc.setLocalDescription(await pc.createAnswer())
                raw_aiortc.raise_receive_buffers(pc)
                parent.send({"answer": pc.localDescription.sdp})
    finally:
        await pc.close()


def main() -> None:
    """Entry point of the child (``--child JSON``)."""
    args = common.parse_args("datagram receiver child", (*TRIO_BACKENDS, "aiortc"))
    if args.child is None:
        sys.exit("this module is the receiver child of benchmarks.datagrams; run that instead")
    if args.child["backend"] == "aiortc":
        asyncio.run(_aiortc_child())
    else:
        trio.run(_trio_child, args.child)


if __name__ == "__main__":
    main()
