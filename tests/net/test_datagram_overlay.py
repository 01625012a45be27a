"""Datagrams over real WebRTC: volume between two processes, floods, hostile peers, no link.

The nodes join a real signaling server on 127.0.0.1 and reach each other
over aiortc on loopback; the exchange test runs one node in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import trio

import unisockets
import unisockets.net as net
from unisockets.protocol.datagram import (
    DATAGRAM_LABEL,
    DATAGRAM_OVERHEAD,
    DEFAULT_MAX_PAYLOAD,
    MAX_PENDING_DATAGRAMS,
    encode_datagram,
)
from unisockets.transport.webrtc import WebRTCTransport

from .datagram_child import COUNT, COUNT_10, Tally, run_side
from .test_failures import _read_line

pytestmark = pytest.mark.trio

CHILD = Path(__file__).with_name("datagram_child.py")


async def _until_received(sender: net.DatagramSocket, receiver: net.DatagramSocket) -> None:
    """Send ``b"first"`` until ``receiver`` has it (the datagram channel is open then)."""
    got = trio.Event()

    async def receive() -> None:
        assert await receiver.recv(100) == b"first"
        got.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        while not got.is_set():
            await sender.sendto(b"first", receiver.getsockname())
            with trio.move_on_after(0.2):  # resend interval: a datagram may be dropped
                await got.wait()


@pytest.mark.timeout(300)
async def test_ten_thousand_datagrams_each_way_between_two_processes(signaling_url: str) -> None:
    async with net.open_node(signaling_url, ice_addresses=["127.0.0.1"]) as node:
        process = await trio.lowlevel.open_process(
            [sys.executable, str(CHILD), signaling_url, node.address],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None and process.stdin is not None
            with trio.fail_after(60):  # only a bound against hangs
                word, child = (await _read_line(process.stdout)).split()
            assert word == "ready"
            mine: list[Tally] = []
            finished = trio.Event()
            stop = trio.Event()

            def done(tally: Tally) -> None:
                mine.append(tally)
                finished.set()

            with trio.fail_after(240):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(run_side, node, child, done, stop)
                    word, text = (await _read_line(process.stdout)).split(" ", 1)
                    assert word == "result"
                    theirs = json.loads(text)
                    await finished.wait()
                    stop.set()
        finally:
            if process.stdin is not None:
                await process.stdin.aclose()
            with trio.move_on_after(30):
                await process.wait()
            process.kill()
    ours = {**asdict(mine[0]), **asdict(node.datagrams.statistics)}  # type: ignore[attr-defined]
    for name, side in (("parent", ours), ("child", theirs)):
        received = {int(port): count for port, count in side["received"].items()}
        lost = COUNT - received[9], COUNT_10 - received[10]
        print(f"{name}: lost {lost[0]}/{COUNT} on port 9, {lost[1]}/{COUNT_10} on port 10: {side}")
        assert side["corrupt"] == side["misdelivered"] == side["wrong_sender"] == 0
        assert side["duplicates"] == 0
        assert side["malformed"] == 0
        assert received[9] > 0 and received[10] > 0


async def test_a_receiver_that_never_reads_keeps_bounded_memory_and_counts_drops(
    signaling_url: str,
) -> None:
    async with (
        net.open_node(signaling_url, ice_addresses=["127.0.0.1"]) as a,
        net.open_node(signaling_url, ice_addresses=["127.0.0.1"]) as b,
    ):
        receiver = a.socket(unisockets.SOCK_DGRAM)
        receiver.receive_buffer = 32 * 1024  # type: ignore[attr-defined]
        await receiver.bind(("", 0))
        sender = b.socket(unisockets.SOCK_DGRAM)
        flood = 3000
        with trio.fail_after(120):
            # Open the channel first (while it opens, all but a few datagrams are dropped).
            await _until_received(sender, receiver)
            for _ in range(flood):
                await sender.sendto(bytes(DEFAULT_MAX_PAYLOAD), receiver.getsockname())
            stats = a.datagrams.statistics  # type: ignore[attr-defined]
            await a.datagrams.wait_statistics(  # type: ignore[attr-defined]
                lambda s: s.queue_full >= flood // 2
            )
        fits = 32 * 1024 // (DEFAULT_MAX_PAYLOAD + DATAGRAM_OVERHEAD)
        endpoint = receiver._endpoint  # type: ignore[attr-defined]
        assert endpoint.queued <= fits
        assert endpoint.queued_bytes <= receiver.receive_buffer  # type: ignore[attr-defined]
        assert receiver.dropped == stats.queue_full  # type: ignore[attr-defined]
        # Nothing waits in the data channel's pipe either: every message went to the table.
        link = a.transport.links[b.address]  # type: ignore[attr-defined]
        channels = [pipe for pipe in link.pipes if pipe.label == DATAGRAM_LABEL]
        assert channels and all(p.statistics().queued_messages == 0 for p in channels)
        # The queue still holds the first datagrams, and reading works.
        data, source = await receiver.recvfrom(65536)
        while data == b"first":  # more than one may have got through
            data, source = await receiver.recvfrom(65536)
        assert data == bytes(DEFAULT_MAX_PAYLOAD) and source == sender.getsockname()


async def test_hostile_datagrams_are_dropped_and_counted(signaling_url: str) -> None:
    async with (
        net.open_node(signaling_url, ice_addresses=["127.0.0.1"]) as a,
        net.open_node(signaling_url, ice_addresses=["127.0.0.1"]) as b,
    ):
        receiver = a.socket(unisockets.SOCK_DGRAM)
        await receiver.bind(("", 4000))
        transport = b.transport  # type: ignore[attr-defined]
        assert isinstance(transport, WebRTCTransport)
        with trio.fail_after(60):
            pipe = await transport.open_pipe(a.address, DATAGRAM_LABEL)
            for hostile in [
                b"\x00",  # truncated header
                b"\x00\x01\x0f\xa0\xff\xff",  # huge length
                b"\x00\x01\x0f\xa0\x00\x09short",  # length beyond the message
                encode_datagram(1, 4001, b"nobody here"),  # unknown port
                encode_datagram(7, 4000, b"good"),
            ]:
                await pipe.send_message(hostile)
            assert await receiver.recvfrom(100) == (b"good", (b.address, 7))
            # send_nowait: sent at once on an open pipe below its mark, refused once closed.
            assert pipe.send_nowait(encode_datagram(8, 4000, b"at once"))
            assert await receiver.recvfrom(100) == (b"at once", (b.address, 8))
            await pipe.aclose()
            assert not pipe.send_nowait(encode_datagram(8, 4000, b"closed"))
            await a.datagrams.wait_statistics(  # type: ignore[attr-defined]
                lambda s: s.malformed == 3 and s.unknown_port == 1
            )
        # The node and its other sockets are unharmed.
        with trio.fail_after(60):
            await (b.socket(unisockets.SOCK_DGRAM)).sendto(b"still", (a.address, 4000))
            assert (await receiver.recvfrom(100))[0] == b"still"


async def test_datagrams_to_an_unreachable_node_wait_within_a_bound_then_drop(
    signaling_url: str,
) -> None:
    async with net.open_node(signaling_url, ice_addresses=["127.0.0.1"], link_timeout=2) as a:
        sock = a.socket(unisockets.SOCK_DGRAM)
        extra = 10
        # Nobody has 10.0.0.200: the link cannot be set up. No sendto waits for it:
        # MAX_PENDING_DATAGRAMS are queued meanwhile, the rest dropped at once.
        for _ in range(MAX_PENDING_DATAGRAMS + extra):
            await sock.sendto(b"x", ("10.0.0.200", 9))
        stats = a.datagrams.statistics  # type: ignore[attr-defined]
        assert stats.send_dropped == extra
        with trio.fail_after(60):  # the link fails after link_timeout: the queue is dropped
            await a.datagrams.wait_statistics(  # type: ignore[attr-defined]
                lambda s: s.send_dropped == MAX_PENDING_DATAGRAMS + extra
            )
        await sock.sendto(b"x", ("10.0.0.200", 9))  # within RETRY_AFTER: dropped at once
        assert stats.send_dropped == MAX_PENDING_DATAGRAMS + extra + 1


async def test_datagrams_to_a_legacy_peer_are_dropped_and_its_link_unharmed(
    signaling_url: str,
) -> None:
    from .test_legacy import check_link, legacy_and_node, read_exactly

    with trio.fail_after(120):
        async with legacy_and_node(signaling_url, legacy_offers=True) as (legacy, node):
            sock = node.socket(unisockets.SOCK_DGRAM)
            await sock.sendto(b"to an original node", (legacy.id, 9))
            await node.datagrams.wait_statistics(  # type: ignore[attr-defined]
                lambda s: s.send_dropped == 1
            )
            # The legacy node never saw another channel; a stream to it still works.
            alias = await legacy.bind(1234)
            await legacy.signaling.listen(alias)
            async with trio.open_nursery() as nursery:

                async def serve() -> None:
                    client = await legacy.accept(alias)
                    await legacy.send(client, await legacy.recv(client))

                nursery.start_soon(serve)
                stream = await node.connect((legacy.id, 1234))
                await stream.send_all(b"ping")
                assert await read_exactly(stream, 4) == b"ping"
            check_link(legacy, node, legacy_offers=True)
            await stream.aclose()
