"""One side of the two-process datagram exchange (test_datagram_processes.py).

Each side binds datagram ports 9 and 10, sends :data:`COUNT` datagrams to the
other side's port 9 and :data:`COUNT_10` to its port 10 (every payload says
its port, its number and is derived from both, so a corrupt or misdelivered
datagram shows), then ``END`` until the other side answers ``ENDACK``. It
counts what it receives. Run as a child: ``python datagram_child.py <signaling
url> <parent address>``; it prints ``ready <address>``, then ``result <json>``,
and keeps answering until its stdin closes.
"""

from __future__ import annotations

import json
import random
import struct
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import unisockets
import unisockets.net as net
from unisockets.protocol.datagram import DEFAULT_MAX_PAYLOAD

COUNT = 10_000
COUNT_10 = 1_000
END = b"END"
ENDACK = b"ENDACK"
PING = b"PING"
PONG = b"PONG"


def payload(port: int, seq: int) -> bytes:
    """The datagram number ``seq`` for ``port``: 5..DEFAULT_MAX_PAYLOAD bytes."""
    size = 5 + (seq * 7919) % (DEFAULT_MAX_PAYLOAD - 4)
    rest = random.Random(seq * 65536 + port).randbytes(size - 5)
    return struct.pack("!BI", port, seq) + rest


@dataclass
class Tally:
    """What one side received."""

    received: dict[int, int] = field(default_factory=lambda: {9: 0, 10: 0})
    duplicates: int = 0
    corrupt: int = 0
    misdelivered: int = 0
    wrong_sender: int = 0


async def _until(event: trio.Event, send: Callable[[], Awaitable[object]]) -> None:
    """Send until ``event`` is set, again every 0.2 s (datagrams may be lost)."""
    while not event.is_set():
        await send()
        with trio.move_on_after(0.2):  # the resend interval, not a wait for an outcome
            await event.wait()


async def run_side(
    node: net.Node, peer_host: str, done: Callable[[Tally], object], stop: trio.Event
) -> None:
    """Exchange with the other side; ``done(tally)`` once both ended; answer until ``stop``."""
    tally = Tally()
    seen: set[tuple[int, int]] = set()
    peer_ended = trio.Event()
    acked = trio.Event()
    ponged = trio.Event()
    sockets = {port: node.socket(unisockets.SOCK_DGRAM) for port in (9, 10)}
    for port, sock in sockets.items():
        await sock.bind(("", port))

    async def receive(port: int) -> None:
        sock = sockets[port]
        while True:
            data, source = await sock.recvfrom(65536)
            if data == END:
                peer_ended.set()
                await sock.sendto(ENDACK, source)
                continue
            if data == ENDACK:
                acked.set()
                continue
            if data == PING:
                await sock.sendto(PONG, source)
                continue
            if data == PONG:
                ponged.set()
                continue
            if source != (peer_host, 9):
                tally.wrong_sender += 1
            if len(data) < 5:
                tally.corrupt += 1
                continue
            tag, seq = struct.unpack_from("!BI", data)
            if tag != port:
                tally.misdelivered += 1
            elif data != payload(port, seq):
                tally.corrupt += 1
            elif (port, seq) in seen:
                tally.duplicates += 1
            else:
                seen.add((port, seq))
                tally.received[port] += 1

    async def send() -> None:
        out = sockets[9]
        # The channel opens with the first datagram; what is sent meanwhile beyond a
        # small queue is dropped, so wait for an answer before the volume.
        await _until(ponged, lambda: out.sendto(PING, (peer_host, 9)))
        for seq in range(COUNT):
            await out.sendto(payload(9, seq), (peer_host, 9))
            if seq % 10 == 0 and seq // 10 < COUNT_10:
                await out.sendto(payload(10, seq // 10), (peer_host, 10))
        await _until(acked, lambda: out.sendto(END, (peer_host, 9)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive, 9)
        nursery.start_soon(receive, 10)
        await send()
        await peer_ended.wait()
        done(Tally(**asdict(tally)))
        await stop.wait()
        nursery.cancel_scope.cancel()
    for sock in sockets.values():
        sock.close()


async def main(url: str, parent: str) -> None:
    """Join, report the address, run the exchange, print the result, wait for stdin EOF."""
    async with net.open_node(url, ice_addresses=["127.0.0.1"]) as node:
        print(f"ready {node.address}", flush=True)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:

            def done(tally: Tally) -> None:
                stats = node.datagrams.statistics  # type: ignore[attr-defined]
                print("result", json.dumps({**asdict(tally), **asdict(stats)}), flush=True)

            nursery.start_soon(run_side, node, parent, done, stop)
            stdin = trio.lowlevel.FdStream(0)
            while await stdin.receive_some(100):
                pass
            stop.set()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
