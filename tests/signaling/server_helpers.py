"""Raw WebSocket clients for the signaling server tests: nodes without any node logic.

:class:`Peer` is a well-behaved raw node over trio-websocket; it sends
:mod:`unisockets.protocol` messages and reads frames as exact text.
:class:`RawClient` speaks WebSocket by hand (wsproto over a trio TCP stream)
for the hostile cases: it sends anything, answers pings only when asked to,
and shows every frame the server sends, close frames included.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import wsproto
import wsproto.events as ev
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection, open_websocket_url

from unisockets.protocol import (
    Accept,
    Accepting,
    Acknowledged,
    Alias,
    Bind,
    Connect,
    Goodbye,
    Greeting,
    Knock,
    Message,
    Offer,
    Shutdown,
    encode,
)

_HEALTHY_SUBNETS = itertools.count(1)

#: Generous bound on any single wait, so that a broken server fails a test instead of hanging it.
TIMEOUT = 10.0


class Peer:
    """A raw node: a trio-websocket client that sends messages and reads exact frames.

    Attributes:
        ws: the WebSocket.
        id: the node's id once :meth:`knock` got one, else ``None``.
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.id: str | None = None

    async def send(self, message: Message | str | bytes) -> None:
        """Send a message (encoded), or a raw text/binary frame."""
        if isinstance(message, str | bytes):
            await self.ws.send_message(message)
        else:
            await self.ws.send_message(encode(message))

    async def frame(self) -> str | bytes:
        """The next frame the server sent (fails the test after TIMEOUT)."""
        with trio.fail_after(TIMEOUT):
            return await self.ws.get_message()

    async def expect(self, *messages: Message) -> None:
        """Assert that the next frames are exactly ``messages``, encoded, in order."""
        for message in messages:
            frame = await self.frame()
            assert frame == encode(message), f"{self.id} got {frame!r:.300}"

    async def knock(self, subnet: str = "10.0.0") -> str:
        """Join ``subnet``; return the id the server gave."""
        await self.send(Knock(subnet=subnet))
        frame = await self.frame()
        assert isinstance(frame, str)
        assert '"opcode":"acknowledged"' in frame, frame
        assert '"rejected":false' in frame, frame
        self.id = frame.split('"id":"', 1)[1].split('"', 1)[0]
        assert frame == encode(Acknowledged(id=self.id, rejected=False))
        return self.id

    async def closed(self) -> CloseReason:
        """Read until the server closes; return its close code and reason (skipping frames)."""
        with trio.fail_after(TIMEOUT):
            while True:
                try:
                    await self.ws.get_message()
                except ConnectionClosed as exc:
                    assert exc.reason is not None
                    return exc.reason


@asynccontextmanager
async def open_peer(url: str, **kwargs: Any) -> AsyncIterator[Peer]:
    """Connect a :class:`Peer` to ``url`` for the body of an ``async with``."""
    kwargs.setdefault("connect_timeout", TIMEOUT)
    kwargs.setdefault("disconnect_timeout", TIMEOUT)
    async with open_websocket_url(url, **kwargs) as ws:
        yield Peer(ws)


@asynccontextmanager
async def open_member(url: str, subnet: str = "10.0.0", **kwargs: Any) -> AsyncIterator[Peer]:
    """A :class:`Peer` that has joined ``subnet`` (``kwargs`` go to :func:`open_peer`)."""
    async with open_peer(url, **kwargs) as peer:
        await peer.knock(subnet)
        yield peer


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` until it holds (the server's state has no event to wait on)."""
    with trio.fail_after(TIMEOUT):
        while not predicate():  # noqa: ASYNC110 - polling the server's counters
            await trio.sleep(0.01)


async def assert_healthy(url: str, subnet: str | None = None) -> None:
    """Two fresh nodes join, bind, accept and connect through the server at ``url``.

    Asserts every frame of PROTOCOL.md's join, bind and connect flows; used to
    show the server still works after hostile clients. Each call uses a subnet
    of its own (unless given one), so that members of an earlier call that the
    server has not yet seen leave cannot interfere.
    """
    if subnet is None:
        subnet = f"172.16.{next(_HEALTHY_SUBNETS)}"
    async with open_member(url, subnet) as a, open_member(url, subnet) as b:
        assert a.id is not None and b.id is not None
        await a.expect(Greeting(offerer_id=a.id, answerer_id=b.id))
        alias = f"{a.id}:8080"
        await a.send(Bind(id=a.id, alias=alias))
        await a.expect(Alias(id=a.id, alias=alias, set=True))
        await b.expect(Alias(id=a.id, alias=alias, set=True))
        await a.send(Accepting(id=a.id, alias=alias))
        cid = str(uuid.uuid4())
        await b.send(Connect(id=b.id, client_connection_id=cid, remote_alias=alias))
        local = f"{b.id}:0"
        await b.expect(
            Alias(
                id=b.id, alias=local, set=True, client_connection_id=cid, is_connection_alias=True
            ),
            Alias(id=a.id, alias=alias, set=True, client_connection_id=cid),
        )
        await a.expect(
            Alias(id=b.id, alias=local, set=True),
            Accept(bound_alias=alias, client_alias=local),
        )


async def replay_original_session(
    vectors_dir: Path, url_of: Callable[[str], str], client_count: Callable[[], int]
) -> None:
    """Replay the recorded original session; assert every frame the server sends, in order.

    Args:
        vectors_dir: where ``original-session.jsonl`` is.
        url_of: the server URL each recorded connection (``"ws1"``, ``"ws2"``) opens.
        client_count: the WebSocket clients the server (or servers) hold now,
            to wait for a recorded close to be seen before going on.
    """
    records = [
        json.loads(line)
        for line in (vectors_dir / "original-session.jsonl").read_text().splitlines()
        if line.strip()
    ]
    expected: dict[str, list[str]] = {}
    for record in records:
        if record.get("dir") == "server->client":
            expected.setdefault(record["conn"], []).append(record["frame"])
    received: dict[str, list[str | bytes]] = {conn: [] for conn in expected}
    peers: dict[str, Peer] = {}
    async with trio.open_nursery() as nursery:
        closers: dict[str, trio.Event] = {}
        for record in records:
            conn = record["conn"]
            if record.get("event") == "open":
                done = trio.Event()
                closers[conn] = done
                peers[conn] = await nursery.start(_replay_client, url_of(conn), done)
            elif record.get("event") == "close":
                closers[conn].set()
                await wait_until(
                    lambda: client_count() == sum(not d.is_set() for d in closers.values())
                )
            elif record["dir"] == "client->server":
                await peers[conn].send(record["frame"])
            else:
                # wait for the recorded frame before sending anything that follows it
                frame = await peers[conn].frame()
                received[conn].append(frame)
                assert frame == record["frame"]
    assert received == expected


async def _replay_client(
    url: str, done: trio.Event, *, task_status: trio.TaskStatus[Peer] = trio.TASK_STATUS_IGNORED
) -> None:
    async with open_peer(url) as peer:
        task_status.started(peer)
        await done.wait()


async def assert_spoofers_closed(a: Peer, b: Peer, c: Peer, sdp: str = "v=0\r\n") -> None:
    """Members ``10.0.0.1..3`` that just joined in order: spoofers are closed, nobody is fooled.

    ``c`` offers in ``a``'s name and ``b`` releases an alias of ``a``'s
    address: each is closed with 1008 and the reason a single server gives,
    and the others get its goodbye, never the forgery. ``b`` binding a port
    of ``a``'s address first is only refused (original programs do it).
    ``sdp`` is the forged offer's.
    """
    await a.expect(
        Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"),
        Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.3"),
    )
    await b.expect(Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3"))
    # c pretends to be a, offering to b
    await c.send(Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer=sdp))
    closed = await c.closed()
    assert closed.code == 1008
    assert closed.reason == "offer from 10.0.0.3 claims offererId 10.0.0.1 (spoofed)"
    await a.expect(Goodbye(id="10.0.0.3"))
    await b.expect(Goodbye(id="10.0.0.3"))  # and not the forged offer
    # b tries to bind an alias of a's address: refused (original programs do
    # bind addresses other than their own), a's address stays a's
    await b.send(Bind(id="10.0.0.2", alias="10.0.0.1:80"))
    await b.expect(Alias(id="10.0.0.2", alias="10.0.0.1:80", set=False, is_member_address=True))
    # ... and to release one of a's aliases: spoofing, closed
    await b.send(Shutdown(id="10.0.0.2", alias="10.0.0.1:80"))
    closed = await b.closed()
    assert closed.code == 1008
    assert closed.reason == "shutdown from 10.0.0.2 of 10.0.0.1:80: another member's address"
    await a.expect(Goodbye(id="10.0.0.2"))


class RawClient:
    """A WebSocket client written by hand: wsproto over a trio TCP stream.

    It never answers pings or close frames on its own, so a test can play a
    client that goes silent, floods, resets or sends malformed frames.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self._events: list[ev.Event] = []

    @classmethod
    async def connect(cls, port: int, *, handshake: bool = True) -> RawClient:
        """Open a TCP connection to 127.0.0.1:``port`` and (optionally) upgrade it."""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = cls(stream)
        if handshake:
            await client.send_event(ev.Request(host=f"127.0.0.1:{port}", target="/"))
            event = await client.next_event()
            assert isinstance(event, ev.AcceptConnection), event
        return client

    async def send_event(self, event: ev.Event) -> None:
        """Send one wsproto event."""
        await self.stream.send_all(self.ws.send(event))

    async def send_text(self, text: str) -> None:
        """Send one text frame."""
        await self.send_event(ev.TextMessage(data=text))

    async def next_event(self) -> ev.Event | None:
        """The next event from the server, or ``None`` at EOF (fails after TIMEOUT)."""
        with trio.fail_after(TIMEOUT):
            while not self._events:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    return None
                self.ws.receive_data(data)
                self._events.extend(self.ws.events())
            return self._events.pop(0)

    async def close_frame(self) -> tuple[int, str] | None:
        """Read (without answering anything) until the server's close frame or EOF.

        Returns:
            ``(code, reason)`` of the close frame, or ``None`` if the server
            cut the connection without one.
        """
        while True:
            event = await self.next_event()
            if event is None:
                return None
            if isinstance(event, ev.CloseConnection):
                return event.code, event.reason or ""

    async def receive_all(self) -> bytes:
        """Every byte the server sends until it closes the connection (no WebSocket parsing)."""
        chunks: list[bytes] = []
        with trio.fail_after(TIMEOUT):
            while True:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    chunk = b""
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    def reset(self) -> None:
        """Abort the TCP connection with a RST (SO_LINGER 0), as a crashed host would."""
        sock = self.stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    async def aclose(self) -> None:
        """Close the TCP connection (no close frame)."""
        await trio.aclose_forcefully(self.stream)
