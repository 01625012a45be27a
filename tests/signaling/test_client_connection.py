"""The signaling client's own WebSocket (``_client_connection``) against a wsproto server.

The server here is wsproto driven by hand over a real TCP connection on
127.0.0.1, so a test chooses exactly which bytes arrive in one read: several
messages at once (handed over together), a fragmented message, a ping, a
close, an end without a close, a message over the size limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from unisockets.signaling._client_connection import (
    ClientWebSocket,
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    open_client_websocket,
)

TIMEOUT = 10.0


class Peer:
    """The server side of one connection: wsproto by hand."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)

    async def next_event(self) -> Event:
        while True:
            for event in self.ws.events():
                return event
            data = await self.stream.receive_some()
            self.ws.receive_data(data or None)

    async def next_text(self) -> str:
        """The next text message, its frames joined."""
        parts: list[str] = []
        while True:
            event = await self.next_event()
            assert isinstance(event, TextMessage), event
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts)

    async def accept(self) -> None:
        assert isinstance(await self.next_event(), Request)
        await self.stream.send_all(self.ws.send(AcceptConnection()))


Script = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def serving(script: Script) -> AsyncIterator[str]:
    """A one-connection server on 127.0.0.1 that plays ``script``; yields its URL."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def serve() -> None:
        stream = await listeners[0].accept()
        async with stream:
            await script(Peer(stream))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        yield f"ws://127.0.0.1:{port}/path?q=1"
        nursery.cancel_scope.cancel()
    await listeners[0].aclose()


@asynccontextmanager
async def client(url: str, max_message_size: int = 65536) -> AsyncIterator[ClientWebSocket]:
    async with open_client_websocket(
        url, None, connect_timeout=TIMEOUT, close_timeout=1.0, max_message_size=max_message_size
    ) as ws:
        yield ws


@pytest.mark.trio
async def test_every_message_of_one_read_comes_at_once_and_fragments_are_joined() -> None:
    done = trio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        frames = b"".join(peer.ws.send(Message(data=f"m{i}")) for i in range(3))
        frames += peer.ws.send(TextMessage(data="frag", message_finished=False))
        frames += peer.ws.send(TextMessage(data="mented", message_finished=True))
        await peer.stream.send_all(frames)  # one write: one read for the client
        assert await peer.next_text() == "a" * 70000  # one write of two messages
        assert await peer.next_text() == "b"
        done.set()
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with serving(script) as url, client(url) as ws:
            assert await ws.receive() == ["m0", "m1", "m2", "fragmented"]
            await ws.send(["a" * 70000, "b"])
            await done.wait()


@pytest.mark.trio
async def test_pings_are_answered_and_ours_are_ponged() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.stream.send_all(peer.ws.send(Ping(payload=b"hi")))
        events = [await peer.next_event(), await peer.next_event()]  # in either order
        [pong] = [event for event in events if isinstance(event, Pong)]
        [ping] = [event for event in events if isinstance(event, Ping)]  # the client's own
        assert pong.payload == b"hi"
        await peer.stream.send_all(peer.ws.send(ping.response()))
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with serving(script) as url, client(url) as ws, trio.open_nursery() as nursery:
            nursery.start_soon(ws.receive)  # someone reads, as the client's reader does
            await ws.ping()  # returns on the pong
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_close_from_the_server_is_echoed_and_reported() -> None:
    echoed = trio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        frames = peer.ws.send(Message(data="last")) + peer.ws.send(
            CloseConnection(code=1008, reason="too fast")
        )
        await peer.stream.send_all(frames)
        event = await peer.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1008
        echoed.set()

    with trio.fail_after(TIMEOUT):
        async with serving(script) as url, client(url) as ws:
            assert await ws.receive() == ["last"]  # what came before the close first
            with pytest.raises(ConnectionClosed) as closed:
                await ws.receive()
            assert (closed.value.reason.code, closed.value.reason.reason) == (1008, "too fast")
            assert closed.value.reason.name == "POLICY_VIOLATION"
            await echoed.wait()
            with pytest.raises(ConnectionClosed):
                await ws.send(["late"])


@pytest.mark.trio
async def test_an_end_without_close_is_1006_and_a_big_message_is_1009() -> None:
    async def hang_up(peer: Peer) -> None:
        await peer.accept()

    async def too_big(peer: Peer) -> None:
        await peer.accept()
        await peer.stream.send_all(peer.ws.send(Message(data="x" * 2000)))
        event = await peer.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1009
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with serving(hang_up) as url, client(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.receive()
            assert closed.value.reason.code == 1006
        async with serving(too_big) as url, client(url, max_message_size=1000) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.receive()
            assert closed.value.reason.code == 1009


@pytest.mark.trio
async def test_the_handshake_fails_clearly() -> None:
    async def refuse(peer: Peer) -> None:
        assert isinstance(await peer.next_event(), Request)
        await peer.stream.send_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        await trio.sleep_forever()

    async def silent(peer: Peer) -> None:
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        async with serving(refuse) as url:
            with pytest.raises(ConnectionRejected) as rejected:
                async with client(url):
                    pass
            assert rejected.value.status_code == 404
        async with serving(silent) as url:
            with pytest.raises(ConnectionTimeout):
                async with open_client_websocket(
                    url, None, connect_timeout=0.3, close_timeout=1.0, max_message_size=100
                ):
                    pass
        with pytest.raises(ValueError, match="not a ws"):
            async with client("http://127.0.0.1:1/"):
                pass
