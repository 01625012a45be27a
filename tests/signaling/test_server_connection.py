"""The server's own WebSocket handler: batching, wsproto's path, frames and the output buffer.

The server tests (test_server*.py) show the protocol's behaviour; these aim
at what the handler adds: several messages in one read, fragmented messages
and control frames in between (wsproto's path), bytes pipelined after the
upgrade request, and an output buffer that never cuts a frame.
"""

from __future__ import annotations

import socket
import ssl

import pytest
import trio
import trustme
import wsproto
import wsproto.events as ev

from unisockets.protocol import Acknowledged, Alias, Bind, Greeting, Knock, Offer, encode
from unisockets.signaling._server_connection import text_frame
from unisockets.signaling._server_socket import SocketTransport
from unisockets.signaling.server import open_signaling_server

from .server_helpers import TIMEOUT, RawClient, assert_healthy, open_member, wait_until


def _masked(client: wsproto.WSConnection, *events: ev.Event) -> bytes:
    return b"".join(client.send(event) for event in events)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_is_what_wsproto_reads(size: int) -> None:
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    server.receive_data(client.send(ev.Request(host="x", target="/")))
    assert isinstance(next(server.events()), ev.Request)
    client.receive_data(server.send(ev.AcceptConnection()))
    assert isinstance(next(client.events()), ev.AcceptConnection)
    text = "é" * (size // 2) + "x" * (size % 2)
    client.receive_data(text_frame(text.encode()))
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], ev.TextMessage)
    assert events[0].data == text and events[0].message_finished


@pytest.mark.trio
async def test_many_messages_in_one_write_are_handled_in_order_then_the_close() -> None:
    async with open_signaling_server() as server, open_member(server.url) as other:
        raw = await RawClient.connect(server.port)
        knock = ev.TextMessage(data=encode(Knock(subnet="10.0.0")))
        binds = [
            ev.TextMessage(data=encode(Bind(id="10.0.0.2", alias=f"10.0.0.2:{port}")))
            for port in range(1, 41)
        ]
        # one write: a knock, 40 binds, a ping, a close frame
        data = _masked(raw.ws, knock, *binds, ev.Ping(payload=b"p"), ev.CloseConnection(1000))
        await raw.stream.send_all(data)
        await other.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        await other.expect(
            *(Alias(id="10.0.0.2", alias=f"10.0.0.2:{port}", set=True) for port in range(1, 41))
        )
        events = []
        while (event := await raw.next_event()) is not None:
            events.append(event)
        texts = [e.data for e in events if isinstance(e, ev.TextMessage)]
        assert texts[0] == encode(Acknowledged(id="10.0.0.2", rejected=False))
        assert texts[1:] == [
            encode(Alias(id="10.0.0.2", alias=f"10.0.0.2:{port}", set=True))
            for port in range(1, 41)
        ]
        assert [e.payload for e in events if isinstance(e, ev.Pong)] == [b"p"]
        # the close echo comes after the replies to everything sent before the close
        assert isinstance(events[-1], ev.CloseConnection) and events[-1].code == 1000
        await raw.aclose()


@pytest.mark.trio
async def test_fragmented_messages_with_control_frames_in_between_go_through_wsproto() -> None:
    async with open_signaling_server() as server:
        raw = await RawClient.connect(server.port)
        text = encode(Knock(subnet="10.0.0"))
        parts = [text[:5], text[5:20], text[20:]]
        data = _masked(
            raw.ws,
            ev.TextMessage(data=parts[0], message_finished=False),
            ev.Ping(payload=b"between"),
            ev.TextMessage(data=parts[1], message_finished=False),
            ev.TextMessage(data=parts[2], message_finished=True),
        )
        for byte in range(len(data)):  # byte by byte: every frame arrives in pieces
            await raw.stream.send_all(data[byte : byte + 1])
        pong = await raw.next_event()
        assert isinstance(pong, ev.Pong) and pong.payload == b"between"
        ack = await raw.next_event()
        assert isinstance(ack, ev.TextMessage) and '"id":"10.0.0.1"' in ack.data
        # too big in fragments is too big
        await raw.send_event(ev.TextMessage(data="x" * 40_000, message_finished=False))
        await raw.send_event(ev.TextMessage(data="x" * 40_000, message_finished=True))
        assert await raw.close_frame() == (1009, "Exceeded maximum message size: 65536 bytes")
        await raw.aclose()
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_frames_pipelined_after_the_upgrade_request_are_read() -> None:
    async with open_signaling_server() as server:
        raw = await RawClient.connect(server.port, handshake=False)
        request = raw.ws.send(ev.Request(host=f"127.0.0.1:{server.port}", target="/"))
        # wsproto will not frame before the 101, so build the frame by hand (mask key 0)
        payload = encode(Knock(subnet="10.0.0")).encode()
        frame = bytes([0x81, 0x80 | len(payload), 0, 0, 0, 0]) + payload
        await raw.stream.send_all(request + frame)
        assert isinstance(await raw.next_event(), ev.AcceptConnection)
        ack = await raw.next_event()
        assert isinstance(ack, ev.TextMessage) and '"id":"10.0.0.1"' in ack.data
        await raw.aclose()


@pytest.mark.trio
async def test_unmasked_client_frames_and_unknown_opcodes_close_with_1002() -> None:
    async with open_signaling_server() as server:
        for bad in (bytes([0x81, 0x01, 0x41]), bytes([0x83, 0x80, 0, 0, 0, 0])):
            raw = await RawClient.connect(server.port)
            await raw.stream.send_all(bad)
            code_and_reason = await raw.close_frame()
            assert code_and_reason is not None and code_and_reason[0] == 1002
            await raw.aclose()
        await wait_until(lambda: server.client_count == 0)


def _frames(data: bytes) -> list[bytes]:
    """Split unmasked server frames; assert ``data`` ends on a frame boundary."""
    frames = []
    while data:
        length, start = data[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        assert len(data) >= start + length, "a cut frame"
        frames.append(data[start : start + length])
        data = data[start + length :]
    return frames


@pytest.mark.trio
async def test_a_short_send_keeps_the_started_frame_and_discard_drops_only_the_rest() -> None:
    ours, peer = socket.socketpair()
    with peer:
        transport = SocketTransport(ours, None)
        frames = [text_frame(bytes([65 + i % 26]) * 3000) for i in range(2000)]  # ~6 MB
        for frame in frames:
            transport.queue(frame)
        assert not transport.flush()  # the kernel took only part of it
        left = transport.queued
        assert 0 < left < sum(map(len, frames))
        transport.discard()
        assert transport.queued < 3004  # at most the rest of one started frame
        peer.setblocking(False)
        received = b""
        with trio.fail_after(TIMEOUT):
            while True:
                try:
                    chunk = peer.recv(1 << 20)
                except BlockingIOError:
                    if not transport.queued:
                        break
                    await transport.drain()
                    continue
                received += chunk
        got = _frames(received)
        assert got == [frame[4:] for frame in frames[: len(got)]]
        transport.close()


@pytest.mark.trio
async def test_wss_carries_many_messages_each_way_and_large_ones() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with (
        open_signaling_server(ssl_context=server_context) as server,
        open_member(server.url, ssl_context=client_context) as a,
        open_member(server.url, ssl_context=client_context) as b,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        offer = Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer="v=0\r\n" * 2000)
        for port in range(1, 101):
            await a.send(Bind(id="10.0.0.1", alias=f"10.0.0.1:{port}"))
        await a.send(offer)  # 10 KB: with the binds, several TLS records
        for port in range(1, 101):
            bound = Alias(id="10.0.0.1", alias=f"10.0.0.1:{port}", set=True)
            await a.expect(bound)
            await b.expect(bound)
        await b.expect(offer)
