"""The native WebRTC backend (str0m) under asyncio: the asyncio driver over NativePeerConnection.

Real signaling server on 127.0.0.1 (in the trio thread of tests/aio/conftest.py),
real native peers on loopback, the nodes under test in the test's own asyncio
loop (anyio's asyncio backend, and plain ``asyncio.run``). Mixed links meet an
aiortc node in the same loop, and trio nodes (aiortc or native) in the trio
thread; a SIGKILLed peer is a child process.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import trio
from aiortc import RTCConfiguration, RTCIceServer

import unisockets
import unisockets.net as net
from unisockets.aio import AioNode
from unisockets.aio.native_rtc import NativePeerConnection, NativeRTCRuntime
from unisockets.aio.runtime import NativeRuntime
from unisockets.transport.native_rtc import native_available

from ..transport.test_leaks import Snapshot
from .test_datagrams import until_answered
from .test_end_to_end import LOOPBACK, TIMEOUT, echo_until_eof, receive_exactly, server
from .trio_thread import TrioThread

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not native_available(), reason="the native extension is not built"),
]

NATIVE: dict[str, Any] = {**LOOPBACK, "webrtc_backend": "native"}
#: The echo node of the killed-peer test (trio, aiortc on loopback).
CHILD = Path(__file__).resolve().parents[1] / "net" / "node_child.py"


@pytest.fixture
def anyio_backend() -> str:
    """The asyncio driver is the subject: anyio's asyncio backend only."""
    return "asyncio"


def native_pcs(node: AioNode) -> list[Any]:
    """The peer connections of ``node``'s live links."""
    return [link._pc for link in node.driver.links.links.values() if link._pc is not None]


async def send_and_hash(stream: anyio.abc.ByteStream, size: int, seed: int) -> str:
    """Send ``size`` pseudo-random bytes in uneven writes, then EOF; return their SHA-256."""
    digest = hashlib.sha256()
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    sent = 0
    step = 1000 + seed * 7919 % 30000
    while sent < size:
        chunk = block[sent % 4096 : sent % 4096 + min(step, size - sent)]
        await stream.send(chunk)
        digest.update(chunk)
        sent += len(chunk)
    await stream.send_eof()
    return digest.hexdigest()


async def receive_and_hash(stream: anyio.abc.ByteStream) -> tuple[int, str]:
    """Receive until EOF; return the byte count and their SHA-256."""
    digest = hashlib.sha256()
    count = 0
    while True:
        try:
            data = await stream.receive()
        except anyio.EndOfStream:
            return count, digest.hexdigest()
        digest.update(data)
        count += len(data)


async def exchange(
    connect: Callable[[], Awaitable[anyio.abc.ByteStream]],
    accept: Callable[[], Awaitable[anyio.abc.ByteStream]],
    size: int,
    seed: int,
) -> None:
    """One stream: the client sends ``size`` bytes and EOF (half-close), then the
    server, having read them to EOF, sends ``size`` others back; both checksummed."""
    got: list[anyio.abc.ByteStream] = []

    async def take() -> None:
        got.append(await accept())

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        client = await connect()
    accepted = got[0]
    async with client, accepted:
        for sender, receiver, offset in ((client, accepted, 0), (accepted, client, 1000)):
            # Up, then (half-closed: the client's direction ended) down; each
            # direction's sender and receiver run at once (the window is smaller).
            hashes: dict[str, Any] = {}

            async def send(
                sender: Any = sender, offset: int = offset, hashes: dict[str, Any] = hashes
            ) -> None:
                hashes["sent"] = await send_and_hash(sender, size, seed + offset)

            async with anyio.create_task_group() as group:
                group.start_soon(send)
                hashes["received"] = await receive_and_hash(receiver)
            assert hashes["received"] == (size, hashes["sent"])


async def test_checksummed_streams_both_ways_with_half_close(trio_thread: TrioThread) -> None:
    with anyio.fail_after(TIMEOUT * 2):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **NATIVE) as alice,
            unisockets.open_node(url, **NATIVE) as bob,
        ):
            assert isinstance(alice, AioNode) and isinstance(bob, AioNode)
            assert isinstance(alice.driver.links.runtime, NativeRTCRuntime)
            async with AsyncExitStack() as stack:
                listeners = [  # one each: streams pair up by port
                    await stack.enter_async_context(alice.listen(1000 + seed)) for seed in range(8)
                ]
                async with anyio.create_task_group() as group:
                    for seed, listener in enumerate(listeners):
                        group.start_soon(
                            exchange,
                            lambda port=1000 + seed: bob.connect((alice.address, port)),
                            listener.accept,
                            300_000 + seed * 50_000,
                            seed,
                        )
            pcs = native_pcs(bob)
            assert len(pcs) == 1 and isinstance(pcs[0], NativePeerConnection)
            assert pcs[0].connectionState == "connected"


async def test_datagrams_over_the_unreliable_channel(trio_thread: TrioThread) -> None:
    with anyio.fail_after(TIMEOUT * 2):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **NATIVE) as alice,
            unisockets.open_node(url, **NATIVE) as bob,
        ):
            assert isinstance(alice, AioNode) and isinstance(bob, AioNode)
            with (
                alice.socket(unisockets.SOCK_DGRAM) as echo,
                bob.socket(unisockets.SOCK_DGRAM) as sock,
            ):
                await echo.bind(("", 5000))
                await sock.bind(("", 0))

                async def serve() -> None:
                    while True:
                        data, source = await echo.recvfrom(65536)
                        await echo.sendto(b"echo " + data, source)

                async with anyio.create_task_group() as group:
                    group.start_soon(serve)
                    for index in range(20):
                        data = f"datagram {index:02} ".encode() * 50
                        expected = b"echo " + data

                        async def answer(expected: bytes = expected) -> tuple[str, int]:
                            while True:
                                got, source = await sock.recvfrom(2048)
                                if got == expected:
                                    return source
                                assert got.startswith(b"echo datagram ")  # a resend's

                        source = await until_answered(
                            lambda data=data: sock.sendto(data, (alice.address, 5000)), answer
                        )
                        assert source == (alice.address, 5000)
                    group.cancel_scope.cancel()
            # The datagrams went over their own channel, unordered and unreliable.
            labels = {channel.label for pc in native_pcs(bob) for channel in pc._channels.values()}
            assert "unisockets/datagram" in labels


@asynccontextmanager
async def trio_echo_node(url: str, backend: str) -> AsyncIterator[net.Node]:
    """A trio node (run in the trio thread) on ``backend`` echoing streams on port 7."""

    async def echo(stream: net.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some(65536):
                await stream.send_all(data)
            await stream.send_eof()

    async with (
        net.open_node(url, **LOOPBACK, webrtc_backend=backend) as node,  # type: ignore[arg-type]
        node.listen(7) as listener,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(trio.serve_listeners, echo, [listener])
        yield node
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def asyncio_echo_node(url: str, backend: str) -> AsyncIterator[AioNode]:
    """An asyncio node in this loop on ``backend`` echoing streams on port 7."""
    async with (
        unisockets.open_node(url, **LOOPBACK, webrtc_backend=backend) as node,  # type: ignore[arg-type]
        node.listen(7) as listener,
        anyio.create_task_group() as group,
    ):
        group.start_soon(listener.serve, echo_until_eof)
        yield node  # type: ignore[misc]
        group.cancel_scope.cancel()


@pytest.mark.parametrize("peer", ["aiortc-asyncio", "aiortc-trio", "native-trio"])
async def test_mixed_links_with_aiortc_and_trio_nodes(trio_thread: TrioThread, peer: str) -> None:
    """A native asyncio node and another stack, each side connecting to the other."""
    backend, driver = peer.split("-")
    with anyio.fail_after(TIMEOUT * 2):
        async with server(trio_thread) as url, AsyncExitStack() as stack:
            if driver == "asyncio":
                other = await stack.enter_async_context(asyncio_echo_node(url, backend))
            else:
                other, leave = await anyio.to_thread.run_sync(
                    trio_thread.enter, trio_echo_node(url, backend)
                )
                stack.push_async_callback(anyio.to_thread.run_sync, leave)
            node = await stack.enter_async_context(
                asyncio_echo_node(url, "native")  # echoes on port 7 too
            )
            # native → other
            stream = await node.connect((other.address, 7))
            async with stream:
                for message in (b"hello", os.urandom(300_000), b"bye"):
                    await stream.send(message)
                    assert await receive_exactly(stream, len(message)) == message
                await stream.send_eof()
                with pytest.raises(anyio.EndOfStream):
                    await stream.receive()
            pcs = native_pcs(node)
            assert [type(pc) for pc in pcs] == [NativePeerConnection]
            # other → native (over the same link)
            message = os.urandom(200_000)
            if driver == "asyncio":
                back = await other.connect((node.address, 7))  # type: ignore[union-attr]
                async with back:
                    await back.send(message)
                    assert await receive_exactly(back, len(message)) == message
            else:

                async def round_trip() -> bytes:
                    async with await other.connect((node.address, 7)) as back:  # type: ignore[union-attr]
                        await back.send_all(message)
                        received = bytearray()
                        while len(received) < len(message):
                            received += await back.receive_some(65536)
                        return bytes(received)

                assert await anyio.to_thread.run_sync(trio_thread.run, round_trip) == message
            assert native_pcs(node) == pcs  # one link carried both


async def test_a_sigkilled_peer_breaks_the_streams_cleanly(trio_thread: TrioThread) -> None:
    with anyio.fail_after(TIMEOUT * 2):
        async with server(trio_thread) as url:
            process = await anyio.open_process(
                [sys.executable, str(CHILD), url], stdout=subprocess.PIPE
            )
            try:
                assert process.stdout is not None
                line = b""
                while not line.endswith(b"\n"):
                    line += await process.stdout.receive(1)
                word, address = line.decode().split()
                assert word == "listening"
                async with unisockets.open_node(url, **NATIVE) as node:
                    streams = []
                    for i in range(3):
                        stream = await node.connect((address, 7))
                        await stream.send(b"are you there %d" % i)
                        assert await stream.receive(100) == b"are you there %d" % i
                        streams.append(stream)
                    process.kill()  # SIGKILL: no SCTP ABORT, no DTLS close_notify
                    for stream in streams:
                        with pytest.raises(anyio.BrokenResourceError):
                            await stream.receive(100)
                    # the server forgot the dead node's listener when it said goodbye
                    with pytest.raises(ConnectionRefusedError):
                        await node.connect((address, 7))
            finally:
                if process.returncode is None:
                    process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()


async def test_a_closed_peer_fails_the_link_and_a_new_one_connects(
    trio_thread: TrioThread,
) -> None:
    """The peer's node closes (DTLS close_notify): our link fails; its successor links anew."""
    with anyio.fail_after(TIMEOUT * 2):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **NATIVE) as alice,
        ):
            for _ in range(2):
                async with asyncio_echo_node(url, "native") as bob:
                    stream = await alice.connect((bob.address, 7))
                    await stream.send(b"ping")
                    assert await stream.receive() == b"ping"
                    pc = native_pcs(alice)[0]
                    assert isinstance(pc, NativePeerConnection)
                # bob closed: its streams ended first (EOF), then its peer connection.
                with pytest.raises(anyio.EndOfStream):
                    await stream.receive()
                await stream.aclose()
                while pc.connectionState == "connected":
                    await wait_state_change(pc)
                assert pc.connectionState in ("closed", "failed")


async def wait_state_change(pc: NativePeerConnection) -> None:
    """Wait for the next ``connectionstatechange`` (or a close) of ``pc``."""
    changed = asyncio.Event()

    def on_change(_: object) -> None:
        changed.set()

    pc.addEventListener("connectionstatechange", on_change)
    try:
        await changed.wait()
    finally:
        pc.removeEventListener("connectionstatechange", on_change)


def test_plain_asyncio_runs_no_thread_and_leaves_no_udp_socket(trio_thread: TrioThread) -> None:
    """``asyncio.run``: no thread started, one UDP socket per peer connection, none after."""
    server_task = trio_thread.start_server()
    before = Snapshot.take()
    seen: dict[str, object] = {}

    async def main() -> None:
        async with asyncio.timeout(TIMEOUT):
            async with (
                unisockets.open_node(server_task.url, **NATIVE) as alice,
                unisockets.open_node(server_task.url, **NATIVE) as bob,
                alice.listen(1234) as listener,
            ):
                client = await bob.connect((alice.address, 1234))
                accepted = await listener.accept()
                await client.send(b"ping")
                assert await accepted.receive() == b"ping"
                during = Snapshot.take()
                seen["threads"] = during.threads - before.threads
                seen["udp"] = len(during.udp_sockets - before.udp_sockets)
                await client.aclose()
                await accepted.aclose()

    asyncio.run(main())
    after = Snapshot.take()
    assert seen == {"threads": set(), "udp": 2}  # one per peer connection, no thread
    assert after.threads - before.threads == set()
    assert after.udp_sockets - before.udp_sockets == set()
    trio_thread.run(server_task.stop)


async def test_auto_means_what_it_means_under_trio(trio_thread: TrioThread) -> None:
    """``"auto"``: native with the extension and no TURN server; aiortc with one."""
    turn = RTCConfiguration([RTCIceServer("turn:127.0.0.1:3478", "user", "pass")])
    async with server(trio_thread) as url:
        async with unisockets.open_node(url, **LOOPBACK, webrtc_backend="auto") as node:
            assert isinstance(node.driver.links.runtime, NativeRTCRuntime)  # type: ignore[union-attr]
        async with unisockets.open_node(
            url, **LOOPBACK, webrtc_backend="auto", rtc_configuration=turn
        ) as node:
            assert isinstance(node.driver.links.runtime, NativeRuntime)  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="no TURN client"):
            async with unisockets.open_node(url, **NATIVE, rtc_configuration=turn):
                pass
        with pytest.raises(ValueError, match="webrtc_backend"):
            async with unisockets.open_node(url, webrtc_backend="str0m"):  # type: ignore[arg-type]
                pass
