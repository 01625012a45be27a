"""The shared reader of the signaling server: bounded rounds over a level-triggered epoll."""

from __future__ import annotations

import contextlib
import socket

import pytest
import trio
import trio.lowlevel
import wsproto.events as ev

from unisockets.protocol import Candidate, Greeting, Knock, encode
from unisockets.signaling._server_reader import SharedReader
from unisockets.signaling.limits import ServerLimits
from unisockets.signaling.server import open_signaling_server

from .server_helpers import TIMEOUT, RawClient, assert_healthy, open_member

#: Linux's TCP_NOTSENT_LOWAT (include/uapi/linux/tcp.h); not in every Python's socket module.
_TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)

pytestmark = pytest.mark.skipif(not SharedReader.available(), reason="needs select.epoll")


@pytest.mark.trio
async def test_rounds_hand_over_at_most_max_events_and_unread_sockets_come_back() -> None:
    pairs = [socket.socketpair() for _ in range(5)]
    reader: SharedReader[socket.socket] = SharedReader(max_events=2)
    rounds: list[list[socket.socket]] = []
    read: list[bytes] = []
    stubborn = pairs[0][0]  # readable, but nobody reads it the first time it is handed over

    def handle(ready: list[socket.socket]) -> None:
        rounds.append(ready)
        for sock in ready:
            if sock is stubborn and sum(s is sock for r in rounds for s in r) == 1:
                continue  # level-triggered: it must come back in a later round
            read.append(sock.recv(100))
            reader.remove(sock.fileno(), sock)

    try:
        for ours, peer in pairs:
            ours.setblocking(False)
            reader.add(ours.fileno(), ours)
            peer.send(b"x%d" % ours.fileno())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader.run, handle)
            with trio.fail_after(TIMEOUT):
                while len(reader):  # noqa: ASYNC110 - the reader has no event to wait on
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert all(1 <= len(batch) <= 2 for batch in rounds)
        assert sorted(read) == sorted(b"x%d" % ours.fileno() for ours, _ in pairs)
        assert sum(sock is stubborn for batch in rounds for sock in batch) == 2
    finally:
        reader.close()
        for ours, peer in pairs:
            ours.close()
            peer.close()


def test_remove_is_idempotent_and_spares_another_item_on_the_same_fd() -> None:
    ours, peer = socket.socketpair()
    reader: SharedReader[str] = SharedReader()
    try:
        reader.add(ours.fileno(), "new")
        reader.remove(ours.fileno(), "old")  # a late removal for a closed connection
        assert len(reader) == 1
        reader.remove(ours.fileno(), "new")
        reader.remove(ours.fileno(), "new")
        assert len(reader) == 0
        reader.add(ours.fileno(), "again")  # unregistered from the epoll too: may come back
        assert len(reader) == 1
    finally:
        reader.close()
        ours.close()
        peer.close()


async def _raw_member(port: int) -> tuple[RawClient, socket.socket]:
    """A joined raw client, and its socket as a non-blocking stdlib socket (for sync writes)."""
    raw = await RawClient.connect(port)
    await raw.send_text(encode(Knock(subnet="10.0.0")))
    event = await raw.next_event()
    assert isinstance(event, ev.TextMessage) and '"rejected":false' in event.data
    sock = socket.socket(fileno=raw.stream.socket.detach())
    sock.setblocking(False)
    return raw, sock


@pytest.mark.trio
async def test_a_flooding_member_does_not_hold_up_the_others() -> None:
    async with open_signaling_server(
        limits=ServerLimits(
            max_messages_per_second=1e6, burst=1_000_000, send_queue_bytes=64 * 1024 * 1024
        )
    ) as server:
        sender, sender_sock = await _raw_member(server.port)  # 10.0.0.1
        async with open_member(server.url) as receiver:  # 10.0.0.2
            flooder, flooder_sock = await _raw_member(server.port)  # 10.0.0.3
            await receiver.expect(Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3"))
            flood = Candidate(offerer_id="10.0.0.3", answerer_id="10.0.0.2", candidate="f" * 250)
            frame = flooder.ws.send(ev.TextMessage(data=encode(flood)))
            frames = 5000
            data = frame * frames
            flooder_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            # trio's streams keep at most 16 KiB unsent (TCP_NOTSENT_LOWAT): lift that
            flooder_sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, 2**31 - 1)
            # With no checkpoint in between, so that the server sees both at once: as much
            # of the flood as the kernel takes, then one candidate from another member.
            sent = 0
            with contextlib.suppress(BlockingIOError):
                while sent < len(data):
                    sent += flooder_sock.send(data[sent:])
            ahead = sent // len(frame)
            assert ahead >= 1000, "the kernel took too little of the flood to tell"
            candidate = Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate="c")
            sender_sock.send(sender.ws.send(ev.TextMessage(data=encode(candidate))))
            async with trio.open_nursery() as nursery:

                async def send_rest() -> None:
                    view = memoryview(data)[sent:]
                    while view:
                        await trio.lowlevel.wait_writable(flooder_sock)
                        with contextlib.suppress(BlockingIOError):
                            view = view[flooder_sock.send(view) :]

                nursery.start_soon(send_rest)
                position = 0
                while (got := await receiver.frame()) != encode(candidate):
                    assert got == encode(flood)
                    position += 1
                # served in a round of its own: not behind the flood that was there first
                assert position < ahead
                for _ in range(frames - position):
                    assert await receiver.frame() == encode(flood)
            for sock in (sender_sock, flooder_sock):
                sock.close()
            await assert_healthy(server.url)
