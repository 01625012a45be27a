"""How to run aiortc under trio: measure the candidates and print the figures.

Usage::

    .venv/bin/python benchmarks/bridge.py [--megabytes 16] [--pings 400]

Variants, all on loopback (127.0.0.1 host candidates, no ICE servers), with
reliable ordered data channels, 16 KiB messages for bulk and 100-byte
messages for the echo round trip:

- ``raw aiortc``: plain asyncio, both peer connections on one loop (the ceiling).
- ``trio-asyncio``: aiortc on trio-asyncio's loop inside trio (skipped when
  trio-asyncio is not installed; it is not a project dependency).
- ``thread bridge, shared loop``: our pipes (:mod:`unisockets.transport.webrtc_pipe`)
  over both peer connections on one bridge loop: the same setup as trio-asyncio's.
- ``thread bridge, 1 process``: our transport (:mod:`unisockets.transport.webrtc`),
  two nodes in one trio process (each with its own asyncio thread: three
  threads share one GIL).
- ``thread bridge, 2 processes``: the same, with the peer node in a child
  process (how nodes really run), signaling over the child's stdin/stdout.

Also: the bridge's own hand-off round trip (``AsyncioBridge.run`` of an empty
coroutine) and the time from ``open_pipe`` with no link to an open pipe.
MB = 10^6 bytes. Figures go to ``docs/transport.md`` with machine, versions
and date.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import LINK_TIMEOUT, link_wait
from unisockets.transport.base import MessagePipe, SignalSender
from unisockets.transport.bridge import open_asyncio_bridge
from unisockets.transport.webrtc import LOOPBACK, WebRTCTransport, open_webrtc_transport
from unisockets.transport.webrtc_ice import install_aioice_tuning, set_host_addresses
from unisockets.transport.webrtc_pipe import HIGH_WATER, LOW_WATER, DataChannelPipe

CHUNK = 16 * 1024
PING = b"p" * 100
#: Seconds one trio variant may take in all before it counts as hung (its link died).
HANG = 5 * LINK_TIMEOUT


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1e6:7.0f} / {p99 * 1e6:7.0f} µs"


def _row(name: str, mbps: float, rtts: list[float], setup: float | None = None) -> None:
    setup_text = f"{setup * 1e3:6.1f} ms" if setup is not None else "      —"
    print(f"| {name:<30} | {mbps:6.1f} | {_summary(rtts)} | {setup_text} |")


# --- raw aiortc (and trio-asyncio) ---------------------------------------------------------


def _settle(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)


async def _aiortc_pair() -> tuple[Any, Any, Any, Any]:
    """Two connected peer connections on the running asyncio loop and a channel pair."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    install_aioice_tuning()
    set_host_addresses(asyncio.get_running_loop(), LOOPBACK)
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel_a = a.createDataChannel("bench")
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    accepted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    channel_a.on("open", lambda: _settle(opened, None))
    b.on("datachannel", lambda channel: _settle(accepted, channel))
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await link_wait(opened, "the channel to open")
    return a, b, channel_a, await link_wait(accepted, "the channel to arrive")


async def raw_aiortc(total: int, pings: int) -> tuple[float, list[float]]:
    """Bulk MB/s and echo round trips with plain asyncio."""
    loop = asyncio.get_running_loop()
    a, b, channel_a, channel_b = await _aiortc_pair()
    low = asyncio.Event()
    channel_a.bufferedAmountLowThreshold = LOW_WATER
    channel_a.on("bufferedamountlow", low.set)
    done = loop.create_future()
    received = 0

    def on_bulk(message: bytes) -> None:
        nonlocal received
        received += len(message)
        if received >= total and not done.done():
            done.set_result(None)

    channel_b.on("message", on_bulk)
    start = time.perf_counter()
    for _ in range(total // CHUNK):
        while channel_a.bufferedAmount > HIGH_WATER:
            low.clear()
            await link_wait(low.wait(), "the channel to drain")
        channel_a.send(os.urandom(1) * CHUNK)
    await link_wait(done, "the last bulk byte")
    mbps = total / (time.perf_counter() - start) / 1e6

    channel_b.remove_all_listeners("message")
    channel_b.on("message", lambda message: channel_b.send(message))
    rtts = []
    for _ in range(pings):
        reply = loop.create_future()
        channel_a.on("message", lambda message, f=reply: _settle(f, message))
        start = time.perf_counter()
        channel_a.send(PING)
        await link_wait(reply, "an echo")
        rtts.append(time.perf_counter() - start)
        channel_a.remove_all_listeners("message")
    await a.close()
    await b.close()
    return mbps, rtts


async def trio_asyncio_variant(total: int, pings: int) -> tuple[float, list[float]] | None:
    """The same through trio-asyncio, with the data path driven by trio tasks."""
    try:
        import trio_asyncio  # type: ignore[import-untyped]
    except ImportError:
        return None
    async with trio_asyncio.open_loop():
        a, b, channel_a, channel_b = await trio_asyncio.aio_as_trio(_aiortc_pair)()
        low = trio.Event()
        channel_a.bufferedAmountLowThreshold = LOW_WATER
        channel_a.on("bufferedamountlow", lambda: low.set())
        inbox_send, inbox_receive = trio.open_memory_channel[bytes](10_000)
        channel_b.on("message", inbox_send.send_nowait)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:

            async def sink() -> None:
                received = 0
                while received < total:
                    received += len(await inbox_receive.receive())

            nursery.start_soon(sink)
            for _ in range(total // CHUNK):
                while channel_a.bufferedAmount > HIGH_WATER:
                    low = trio.Event()
                    await low.wait()
                channel_a.send(os.urandom(1) * CHUNK)
                await trio.lowlevel.checkpoint()
        mbps = total / (time.perf_counter() - start) / 1e6

        replies_send, replies_receive = trio.open_memory_channel[bytes](1)
        channel_a.on("message", replies_send.send_nowait)
        rtts = []
        async with trio.open_nursery() as nursery:

            async def echo() -> None:
                while True:
                    channel_b.send(await inbox_receive.receive())

            nursery.start_soon(echo)
            for _ in range(pings):
                start = time.perf_counter()
                channel_a.send(PING)
                await replies_receive.receive()
                rtts.append(time.perf_counter() - start)
            nursery.cancel_scope.cancel()
        await trio_asyncio.aio_as_trio(a.close)()
        await trio_asyncio.aio_as_trio(b.close)()
    return mbps, rtts


# --- our transport (thread bridge) ---------------------------------------------------------


class _Relay(SignalSender):
    def __init__(self, sender_id: str) -> None:
        self.sender_id = sender_id
        self.target: WebRTCTransport | None = None

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        assert self.target is not None
        await self.target.handle_offer(self.sender_id, sdp)

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        assert self.target is not None
        await self.target.handle_answer(self.sender_id, sdp)

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        assert self.target is not None
        await self.target.handle_candidate(self.sender_id, candidate)


async def _bulk_and_pings(
    pipe: MessagePipe, total: int, pings: int, sunk: Callable[[], Awaitable[None]]
) -> tuple[float, list[float]]:
    start = time.perf_counter()
    for _ in range(total // CHUNK):
        await pipe.send_message(os.urandom(1) * CHUNK)
    await sunk()
    mbps = total / (time.perf_counter() - start) / 1e6
    rtts = []
    for _ in range(pings):
        start = time.perf_counter()
        await pipe.send_message(PING)
        await pipe.receive_message()
        rtts.append(time.perf_counter() - start)
    return mbps, rtts


async def _serve(pipe: MessagePipe, total: int) -> None:
    """Sink ``total`` bytes, say so, then echo until the pipe ends."""
    received = 0
    while received < total:
        received += len(await pipe.receive_message())
    await pipe.send_message(b"sunk")
    try:
        while True:
            await pipe.send_message(await pipe.receive_message())
    except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def thread_bridge(total: int, pings: int) -> tuple[float, list[float], float, list[float]]:
    """Bulk, echo, setup time and bridge hand-off round trips, one process."""
    relay_a, relay_b = _Relay("10.0.0.1"), _Relay("10.0.0.2")
    async with (
        open_asyncio_bridge() as bridge,  # both transports on one loop, as plain aiortc
        open_webrtc_transport("10.0.0.1", relay_a, host_addresses=LOOPBACK, bridge=bridge) as a,
        open_webrtc_transport("10.0.0.2", relay_b, host_addresses=LOOPBACK, bridge=bridge) as b,
        trio.open_nursery() as nursery,
    ):
        relay_a.target, relay_b.target = b, a
        start = time.perf_counter()
        nursery.start_soon(lambda: _accept_and_serve(b, "10.0.0.1", total))
        pipe = await a.open_pipe("10.0.0.2", "bench")
        setup = time.perf_counter() - start

        async def sunk() -> None:
            assert await pipe.receive_message() == b"sunk"

        mbps, rtts = await _bulk_and_pings(pipe, total, pings, sunk)
        await pipe.aclose()
    handoffs = []
    async with open_asyncio_bridge() as bridge:
        for _ in range(pings):
            start = time.perf_counter()
            await bridge.run(asyncio.sleep, 0)
            handoffs.append(time.perf_counter() - start)
    return mbps, rtts, setup, handoffs


async def shared_loop_bridge(total: int, pings: int) -> tuple[float, list[float]]:
    """Our pipes over both peer connections on one bridge loop (like trio-asyncio's setup)."""
    async with open_asyncio_bridge() as bridge, trio.open_nursery() as nursery:
        a, b, channel_a, channel_b = await bridge.run(_aiortc_pair)
        pipe_a = DataChannelPipe(bridge, "10.0.0.2", "bench", incoming=True)
        pipe_b = DataChannelPipe(bridge, "10.0.0.1", "bench", incoming=True)
        bridge.call_soon(pipe_a._aio_attach, channel_a)
        bridge.call_soon(pipe_b._aio_attach, channel_b)
        nursery.start_soon(_serve, pipe_b, total)

        async def sunk() -> None:
            assert await pipe_a.receive_message() == b"sunk"

        result = await _bulk_and_pings(pipe_a, total, pings, sunk)
        await pipe_a.aclose()
        await bridge.run(a.close)
        await bridge.run(b.close)
    return result


async def _accept_and_serve(transport: WebRTCTransport, peer_id: str, total: int) -> None:
    await _serve(await transport.accept_pipe(peer_id, "bench"), total)


class _StdioSignal(SignalSender):
    """Signaling as JSON lines on a byte stream."""

    def __init__(self, stream: trio.abc.SendStream, sender_id: str) -> None:
        self._stream = stream
        self._sender_id = sender_id
        self._lock = trio.Lock()

    async def _write(self, kind: str, payload: str) -> None:
        line = json.dumps({"kind": kind, "peer": self._sender_id, "payload": payload})
        async with self._lock:
            await self._stream.send_all(line.encode() + b"\n")

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        await self._write("offer", sdp)

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        await self._write("answer", sdp)

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        await self._write("candidate", candidate)


async def _pump(
    stream: trio.abc.ReceiveStream, transport: WebRTCTransport, ready: trio.Event | None = None
) -> None:
    ready = trio.Event() if ready is None else ready
    buffer = b""
    while chunk := await stream.receive_some():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            message = json.loads(line)
            if message["kind"] == "ready":
                ready.set()
                continue
            handle = getattr(transport, f"handle_{message['kind']}")
            await handle(message["peer"], message["payload"])


async def child(total: int) -> None:
    """The peer node of the two-process variant (``--child``)."""
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    stdout = trio.lowlevel.FdStream(sys.stdout.fileno())
    signal = _StdioSignal(stdout, "10.0.0.2")
    async with (
        open_webrtc_transport("10.0.0.2", signal, host_addresses=LOOPBACK) as transport,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_accept_and_serve, transport, "10.0.0.1", total)
        await stdout.send_all(b'{"kind": "ready"}\n')
        await _pump(stdin, transport)
        nursery.cancel_scope.cancel()


async def two_processes(total: int, pings: int) -> tuple[float, list[float], float]:
    """Bulk, echo and setup with the peer node in a child process."""
    process = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--child", "--megabytes", str(total / 1e6)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        signal = _StdioSignal(process.stdin, "10.0.0.1")
        async with (
            open_webrtc_transport("10.0.0.1", signal, host_addresses=LOOPBACK) as transport,
            trio.open_nursery() as nursery,
        ):
            ready = trio.Event()
            nursery.start_soon(_pump, process.stdout, transport, ready)
            await ready.wait()  # the child imported aiortc and runs its transport
            start = time.perf_counter()
            pipe = await transport.open_pipe("10.0.0.2", "bench")
            setup = time.perf_counter() - start

            async def sunk() -> None:
                assert await pipe.receive_message() == b"sunk"

            mbps, rtts = await _bulk_and_pings(pipe, total, pings, sunk)
            await pipe.aclose()
            nursery.cancel_scope.cancel()
    finally:
        await process.stdin.aclose()
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
    return mbps, rtts, setup


def _run_trio(fn: Any, *args: Any) -> Any:
    """``trio.run(fn, *args)``, failing with TooSlowError after :data:`HANG` seconds."""

    async def bounded() -> Any:
        with trio.fail_after(HANG):
            return await fn(*args)

    return trio.run(bounded)


def main() -> None:
    """Run every variant and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=float, default=16.0)
    parser.add_argument("--pings", type=int, default=400)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    total = int(args.megabytes * 1e6) // CHUNK * CHUNK
    if args.child:
        trio.run(child, total)  # ends when the parent closes its stdin
        return

    import aioice
    import aiortc

    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()} x{os.cpu_count()}, "
        f"Python {platform.python_version()}, aiortc {aiortc.__version__}, "
        f"aioice {aioice.__version__}, trio {trio.__version__}; "
        f"{total / 1e6:.1f} MB bulk in {CHUNK} B messages, {args.pings} pings of 100 B"
    )
    print("| variant | bulk MB/s | echo RTT median / p99 | open_pipe, no link |")
    print("| --- | --- | --- | --- |")
    mbps, rtts = asyncio.run(raw_aiortc(total, args.pings))
    _row("raw aiortc (asyncio)", mbps, rtts)
    result = _run_trio(trio_asyncio_variant, total, args.pings)
    if result is None:
        print("| trio-asyncio | (not installed) | | |")
    else:
        _row("trio-asyncio", *result)
    _row("thread bridge (ours), shared loop", *_run_trio(shared_loop_bridge, total, args.pings))
    mbps, rtts, setup, handoffs = _run_trio(thread_bridge, total, args.pings)
    _row("thread bridge (ours), 1 process", mbps, rtts, setup)
    mbps, rtts, setup = _run_trio(two_processes, total, args.pings)
    _row("thread bridge (ours), 2 procs", mbps, rtts, setup)
    print(f"bridge hand-off round trip (run of an empty coroutine): {_summary(handoffs)}")


if __name__ == "__main__":
    main()
