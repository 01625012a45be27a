"""A plain-asyncio driver for unisockets' sans-IO signaling client.

`SignalingClientProtocol` (unisockets.protocol.client) is the whole signaling
client without I/O: it takes the server's frames and returns events, and its
request methods return the messages to send. This file is everything asyncio
needs around it: a WebSocket (the `websockets` library), one reader task, one
lock for writes, and a future per request. No trio is imported.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.client import ClientConnection, connect

from unisockets.protocol import Message, RemoteProtocolError, encode
from unisockets.protocol import events as ev
from unisockets.protocol.client import SignalingClientProtocol


class SignalingSession:
    """One node's session with a signaling server, driven from asyncio."""

    def __init__(self, websocket: ClientConnection, subnet: str) -> None:
        self.protocol = SignalingClientProtocol(subnet=subnet)
        self.websocket = websocket
        self.joined: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.incoming: asyncio.Queue[ev.IncomingConnection] = asyncio.Queue()
        self.others: asyncio.Queue[ev.Event] = asyncio.Queue()  # peers, alias table
        self._answers: dict[ev.Request, asyncio.Future[ev.Event]] = {}
        self._write_lock = asyncio.Lock()

    @property
    def id(self) -> str:
        """Our node id, e.g. ``"10.0.0.1"`` (valid once joined)."""
        assert self.protocol.id is not None
        return self.protocol.id

    async def send(self, messages: list[Message]) -> None:
        """Send messages in order (one lock keeps every sender's batch whole)."""
        async with self._write_lock:
            for message in messages:
                await self.websocket.send(encode(message))

    async def read_frames(self) -> None:
        """The reader task: feed every frame to the protocol and dispatch its events."""
        try:
            async for frame in self.websocket:
                try:
                    events = self.protocol.receive_data(frame)
                except RemoteProtocolError as exc:  # the server broke the protocol
                    await self.websocket.close(exc.close_code, str(exc)[:120])
                    break
                for event in events:
                    await self._dispatch(event)
        finally:
            for event in self.protocol.connection_lost():
                await self._dispatch(event)
            if not self.joined.done():
                self.joined.set_exception(ConnectionError("the server closed the session"))

    async def _dispatch(self, event: ev.Event) -> None:
        if isinstance(event, ev.Joined):
            self.joined.set_result(event.id)
        elif isinstance(event, ev.JoinRejected):
            self.joined.set_exception(OSError(errno.EADDRNOTAVAIL, "the subnet is full"))
        elif isinstance(event, ev.IncomingConnection):
            self.incoming.put_nowait(event)
        elif isinstance(event, ev.CancelledRequestSucceeded):
            await self.send([event.undo])  # a request we gave up on succeeded: undo it
        elif (request := getattr(event, "request", None)) in self._answers:
            self._answers.pop(request).set_result(event)
        else:
            self.others.put_nowait(event)

    async def _request(self, request: ev.Request, messages: list[Message]) -> ev.Event:
        """Send a request and wait for its answer; on cancellation tell the protocol."""
        answer: asyncio.Future[ev.Event] = asyncio.get_running_loop().create_future()
        self._answers[request] = answer
        await self.send(messages)
        try:
            return await answer
        except asyncio.CancelledError:
            if self._answers.pop(request, None) is not None:
                await asyncio.shield(self.send(self.protocol.cancel(request)))
            raise

    async def bind(self, alias: str) -> None:
        """Claim ``alias`` (``"<our id>:<port>"``); OSError(EADDRINUSE) if it is taken."""
        answer = await self._request(*self.protocol.bind(alias))
        if isinstance(answer, ev.BindRejected):
            raise OSError(errno.EADDRINUSE, f"{alias} is already bound")
        _raise_if_failed(answer)

    async def listen(self, alias: str) -> None:
        """Accept connections on our bound ``alias``; each arrives on :attr:`incoming`.

        The server accepts one connection per ``accepting``: send it again
        after each one to keep listening (docs/protocol.md, "Bind and listen").
        """
        await self.send(self.protocol.accept(alias))

    async def connect(self, remote_alias: str) -> tuple[str, str]:
        """Connect to ``remote_alias``; return ``(our connection alias, remote alias)``."""
        answer = await self._request(*self.protocol.connect(remote_alias))
        if isinstance(answer, ev.ConnectRefused):
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"nobody accepts on {remote_alias}")
        _raise_if_failed(answer)
        assert isinstance(answer, ev.ConnectSucceeded)
        return answer.local_alias, answer.remote_alias

    async def shutdown(self, alias: str) -> None:
        """Release one of our aliases (bound or a connection's)."""
        _raise_if_failed(await self._request(*self.protocol.shutdown(alias)))


def _raise_if_failed(answer: ev.Event) -> None:
    if isinstance(answer, ev.RequestFailed):
        raise ConnectionError(answer.reason)
    if isinstance(answer, ev.ShutdownRejected):
        raise OSError(errno.EINVAL, f"{answer.alias} is not ours")


@asynccontextmanager
async def open_session(url: str, subnet: str = "10.0.0") -> AsyncIterator[SignalingSession]:
    """Join ``subnet`` on the signaling server at ``url`` for the body of an ``async with``."""
    async with connect(url) as websocket, asyncio.TaskGroup() as tasks:
        session = SignalingSession(websocket, subnet)
        reader = tasks.create_task(session.read_frames())
        await session.send([session.protocol.knock()])
        try:
            await session.joined
            yield session
        finally:
            reader.cancel()  # leaving closes the WebSocket: the server says goodbye for us
