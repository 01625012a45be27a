"""Datagrams: rate, loss and one-way latency of 1,200-byte datagrams, one or two processes.

Backends, in pairs: ``webrtc`` (unisockets datagram sockets on two overlay
nodes, real aiortc on loopback) against ``aiortc`` (a raw aiortc data channel
with ``ordered=False, maxRetransmits=0`` in plain asyncio, the same
backpressure), and ``native`` (unisockets datagram sockets of
``open_node(None)``) against ``udp`` (plain trio UDP sockets).

Each run: the sender sends ``--count`` datagrams (default 20,000) of
``--size`` bytes (default 1,200, so the overlay sockets raise their
``max_payload``) as fast as the socket takes them, then ``END`` until the
receiver saw it; the receiver reads all the time. *rate* is datagrams
delivered per second, *loss* the share never delivered (receive queue full,
or lost on the way). Then ``--pings`` (default 300) datagrams one at a time,
each sent once the previous one arrived (or 0.2 s passed): *latency* is the
median time from ``sendto`` to ``recvfrom`` returning. With ``--processes
2`` (the default runs 1 and 2) the receiver runs in a child process
(:mod:`benchmarks.datagrams_remote`) and the latency compares the two
processes' readings of the one ``CLOCK_MONOTONIC``. Run:
``.venv/bin/python -m benchmarks.datagrams [--quick] [--processes 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import unisockets
from unisockets.signaling.server import open_signaling_server

from . import common, datagrams_remote, raw_aiortc

BACKENDS = ("webrtc", "aiortc", "native", "udp")
LABELS = {
    "webrtc": "unisockets datagrams (WebRTC)",
    "aiortc": "aiortc unreliable channel (raw)",
    "native": "unisockets datagrams (native)",
    "udp": "trio UDP socket (raw)",
}
PAIRS = (("webrtc", "aiortc"), ("native", "udp"))
#: Seconds one measurement may take before it counts as hung.
HANG = 600
END = b"END"
#: Seconds a ping may take before it counts as lost.
PING_WAIT = 0.2


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=20_000, help="datagrams per run (20000)")
    parser.add_argument("--size", type=int, default=1200, help="payload bytes (1200)")
    parser.add_argument("--pings", type=int, default=300, help="latency samples (300)")


Send = Callable[[bytes], Awaitable[Any]]


class _Receiver:
    """Counts datagrams, notes arrival times of pings, sees END (shared by both loops)."""

    def __init__(self) -> None:
        self.received = 0
        self.last = 0.0
        self.ended = False
        self.pings: dict[int, float] = {}

    def take(self, data: bytes) -> None:
        now = time.perf_counter()
        if data == END:
            self.ended = True
        elif data[:1] == b"p":
            self.pings[struct.unpack_from("!I", data, 1)[0]] = now
        else:
            self.received += 1
            self.last = now


def _result(
    receiver: _Receiver, count: int, started: float, sent: dict[int, float]
) -> dict[str, float]:
    elapsed = max(receiver.last - started, 1e-9)
    latencies = [receiver.pings[i] - t for i, t in sent.items() if i in receiver.pings]
    return {
        "rate": receiver.received / elapsed,
        "loss": 100 * (1 - receiver.received / count),
        "latency": 1e6 * common.median(latencies) if latencies else float("nan"),
    }


# ---- trio backends ------------------------------------------------------------------------


async def _trio_run(backend: str, count: int, size: int, pings: int) -> dict[str, float]:
    with trio.fail_after(HANG):
        if backend == "udp":
            a = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            b = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            with a, b:
                await a.bind(("127.0.0.1", 0))
                await b.bind(("127.0.0.1", 0))
                target = a.getsockname()

                async def send(data: bytes) -> None:
                    await b.sendto(data, target)

                return await _exchange(lambda: a.recv(65536), send, count, size, pings)
        if backend == "native":
            async with unisockets.open_node(None) as node:
                return await _unisockets_pair(node, node, count, size, pings)
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            unisockets.open_node(server.url, ice_addresses=["127.0.0.1"]) as one,
            unisockets.open_node(server.url, ice_addresses=["127.0.0.1"]) as two,
        ):
            return await _unisockets_pair(one, two, count, size, pings)


async def _unisockets_pair(
    receiver_node: unisockets.Node, sender_node: unisockets.Node, count: int, size: int, pings: int
) -> dict[str, float]:
    with (
        receiver_node.socket(unisockets.SOCK_DGRAM) as receiver,
        sender_node.socket(unisockets.SOCK_DGRAM) as sender,
    ):
        if size > sender.max_payload:
            sender.max_payload = size  # type: ignore[misc]
        await receiver.bind(("", 0))
        await sender.connect(receiver.getsockname())
        # Open the channel first: while it opens, datagrams beyond a few are dropped.
        got = trio.Event()

        async def first() -> None:
            await receiver.recv(65536)
            got.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            while not got.is_set():
                await sender.send(b"warm")
                with trio.move_on_after(0.2):
                    await got.wait()
        return await _exchange(lambda: receiver.recv(65536), sender.send, count, size, pings)


async def _exchange(
    receive: Callable[[], Awaitable[bytes]], send: Send, count: int, size: int, pings: int
) -> dict[str, float]:
    receiver = _Receiver()
    arrived = trio.Event()

    async def read() -> None:
        nonlocal arrived
        while True:
            receiver.take(await receive())
            arrived.set()

    payload = bytes(size)
    sent: dict[int, float] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        started = time.perf_counter()
        for _ in range(count):
            await send(payload)
        while not receiver.ended:
            await send(END)
            with trio.move_on_after(0.05):  # resend interval of a lost END
                while not receiver.ended:
                    arrived = trio.Event()
                    await arrived.wait()
        for index in range(pings):
            arrived = trio.Event()
            sent[index] = time.perf_counter()
            await send(b"p" + struct.pack("!I", index) + payload[5:])
            with trio.move_on_after(PING_WAIT):
                while index not in receiver.pings:
                    await arrived.wait()
                    arrived = trio.Event()
        nursery.cancel_scope.cancel()
    return _result(receiver, count, started, sent)


# ---- raw aiortc ---------------------------------------------------------------------------


async def _aiortc_run(count: int, size: int, pings: int) -> dict[str, float]:
    raw_aiortc.tune_loop()
    offerer, answerer = raw_aiortc.new_peer_connection(), raw_aiortc.new_peer_connection()
    receiver = _Receiver()
    arrived = asyncio.Event()
    incoming: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_message(message: bytes | str) -> None:
        receiver.take(message if isinstance(message, bytes) else message.encode())
        arrived.set()

    def on_datachannel(channel: Any) -> None:
        channel.on("message", on_message)
        if not incoming.done():
            incoming.set_result(channel)

    answerer.on("datachannel", on_datachannel)
    try:
        channel = raw_aiortc.Channel(
            offerer.createDataChannel("datagrams", ordered=False, maxRetransmits=0)
        )
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        raw_aiortc.raise_receive_buffers(offerer)
        raw_aiortc.raise_receive_buffers(answerer)
        await channel.wait_open()
        await common.link_wait(incoming, "the answerer's channel")
        payload = bytes(size)
        started = time.perf_counter()
        for _ in range(count):
            await channel.send(payload)
        while not receiver.ended:
            await channel.send(END)
            arrived.clear()
            with contextlib.suppress(TimeoutError):  # resend interval of a lost END
                await asyncio.wait_for(arrived.wait(), 0.05)
        sent: dict[int, float] = {}
        for index in range(pings):
            arrived.clear()
            sent[index] = time.perf_counter()
            await channel.send(b"p" + struct.pack("!I", index) + payload[5:])
            deadline = time.perf_counter() + PING_WAIT
            while index not in receiver.pings and time.perf_counter() < deadline:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), deadline - time.perf_counter())
                except TimeoutError:
                    break
        return _result(receiver, count, started, sent)
    finally:
        await offerer.close()
        await answerer.close()


def main() -> None:
    """Measure each backend, print the tables (see the module docstring)."""
    args = common.parse_args(__doc__.splitlines()[0], BACKENDS, extra=_options)
    if args.quick:
        args.count, args.pings = 500, 20
    common.print_header(
        f"datagrams: {args.count:,} of {args.size:,} bytes, then {args.pings} pings", args
    )
    reports = {
        "rate": common.Report(
            f"datagrams delivered per second, {args.size:,}-byte payloads",
            "dgram/s",
            True,
            LABELS,
            PAIRS,
        ),
        "loss": common.Report("datagrams lost", "%", False, LABELS),
        "latency": common.Report("one-way latency, median", "us", False, LABELS, PAIRS),
    }

    def measure(backend: str, processes: int) -> dict[str, float]:
        if processes == 2 and backend == "aiortc":
            return asyncio.run(datagrams_remote.aiortc_run(args.count, args.size, args.pings))
        if processes == 2:
            return trio.run(datagrams_remote.trio_run, backend, args.count, args.size, args.pings)
        if backend == "aiortc":
            return asyncio.run(_aiortc_run(args.count, args.size, args.pings))
        return trio.run(_trio_run, backend, args.count, args.size, args.pings)

    failures = common.run_matrix(args, reports, measure)
    common.finish("datagrams", args, reports.values(), failures)


if __name__ == "__main__":
    main()
