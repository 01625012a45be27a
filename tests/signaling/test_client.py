"""The signaling client over real WebSockets on 127.0.0.1.

Most tests run the real signaling server (port 0) and real clients. A few
run a scripted server (a raw trio-websocket server the test plays by hand):
to hold an answer back while a request is cancelled or times out, to break
the connection at a chosen moment, and to replay the original TypeScript
server's recorded session (shared/vectors) frame by frame.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import trio
import trio_websocket
import trustme
from trio_websocket import WebSocketConnection, WebSocketRequest, serve_websocket

from unisockets.protocol import (
    Accept,
    Accepting,
    Acknowledged,
    Alias,
    Bind,
    Connect,
    Knock,
    Message,
    Shutdown,
    decode,
    encode,
)
from unisockets.protocol.consent import ConsentPolicy
from unisockets.protocol.events import (
    AnswerReceived,
    CandidateReceived,
    Disconnected,
    Event,
    IdChanged,
    OfferReceived,
    PeerGreeted,
    PeerLeft,
    Reconnected,
)
from unisockets.signaling.client import SignalingClient, open_signaling_client
from unisockets.signaling.errors import JoinRejectedError, SignalingError
from unisockets.signaling.limits import ServerLimits
from unisockets.signaling.server import open_signaling_server

from ..restartable_server import start_server
from ..silent_relay import start_relay

#: Generous bound on any single wait, so that a bug fails a test instead of hanging it.
TIMEOUT = 10.0
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
ICE = json.dumps({"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"})
FAST = (0.02, 0.1)  # reconnection backoff for tests, in seconds

E = TypeVar("E", bound=Event)


async def next_event(client: SignalingClient, kind: type[E]) -> E:
    """The next event of type ``kind`` on ``client.events`` (others are skipped)."""
    with trio.fail_after(TIMEOUT):
        async for event in client.events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"events ended before a {kind.__name__}")


# --- the real server --------------------------------------------------------------------


@pytest.mark.trio
async def test_join_bind_accept_connect_shutdown() -> None:
    async with (
        open_signaling_server() as server,
        open_signaling_client(server.url) as a,
        open_signaling_client(server.url) as b,
    ):
        assert (a.id, b.id, a.subnet, a.connected) == ("10.0.0.1", "10.0.0.2", "10.0.0", True)
        listening = f"{a.id}:80"
        await a.bind(listening)
        accepted: list[str] = []

        async def accept_one() -> None:
            accepted.append(await a.accept(listening))

        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept_one)
                await trio.testing.wait_all_tasks_blocked()
                first = await b.connect(listening)
            assert first == (f"{b.id}:0", listening, a.id)
            assert accepted == [first[0]]
            # The listener keeps accepting: a connection with nobody waiting is queued.
            second = await b.connect(listening)
            assert second == (f"{b.id}:1", listening, a.id)
            assert await a.accept(listening) == second[0]
            # Releasing a connection alias frees its port for the next connection.
            await b.shutdown(first[0])
            third = await b.connect(listening)
            assert third[0] == f"{b.id}:0"
            assert await a.accept(listening) == third[0]
            waiting_failed = trio.Event()

            async def wait_and_fail() -> None:
                with pytest.raises(SignalingError):
                    await a.accept(listening)
                waiting_failed.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_and_fail)
                await trio.testing.wait_all_tasks_blocked()
                await a.shutdown(listening)  # the waiting accept fails
            assert waiting_failed.is_set()
            with pytest.raises(ConnectionRefusedError) as refused:
                await b.connect(listening)
            assert refused.value.errno == errno.ECONNREFUSED
            with pytest.raises(OSError) as not_bound:
                await a.accept(listening)
            assert not_bound.value.errno == errno.EINVAL
            with pytest.raises(OSError) as not_held:
                await a.shutdown(listening)
            assert not_held.value.errno == errno.EINVAL


@pytest.mark.trio
async def test_peer_messages_and_leaving() -> None:
    async with open_signaling_server() as server, open_signaling_client(server.url) as a:
        async with open_signaling_client(server.url) as b:
            assert await next_event(a, PeerGreeted) == PeerGreeted(peer_id=b.id)
            await a.send_offer(b.id, SDP)
            assert await next_event(b, OfferReceived) == OfferReceived(peer_id=a.id, sdp=SDP)
            await b.send_answer(a.id, SDP + "a=answer\r\n")
            answer = await next_event(a, AnswerReceived)
            assert answer == AnswerReceived(peer_id=b.id, sdp=SDP + "a=answer\r\n")
            await a.send_candidate(b.id, ICE)
            await b.send_candidate(a.id, ICE)
            assert await next_event(b, CandidateReceived) == CandidateReceived(
                peer_id=a.id, candidate=ICE
            )
            assert await next_event(a, CandidateReceived) == CandidateReceived(
                peer_id=b.id, candidate=ICE
            )
            left = b.id
            with pytest.raises(ValueError):
                await a.send_offer(a.id, SDP)  # to ourselves
            with pytest.raises(ValueError):
                await a.send_candidate(b.id, "")
        assert await next_event(a, PeerLeft) == PeerLeft(peer_id=left)
    # Leaving closes the events channel and every later request fails.
    with pytest.raises(trio.EndOfChannel):
        while True:
            await a.events.receive()
    with pytest.raises(SignalingError):
        await a.bind(f"{a.id}:1")
    assert not a.connected


@pytest.mark.trio
async def test_bind_errors_and_refusals() -> None:
    async with (
        open_signaling_server() as server,
        open_signaling_client(server.url) as a,
        open_signaling_client(server.url) as b,
    ):
        await a.bind(f"{a.id}:80")
        with pytest.raises(OSError) as taken:
            await a.bind(f"{a.id}:80")
        assert taken.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError) as not_ours:
            await a.bind(f"{b.id}:80")
        assert not_ours.value.errno == errno.EADDRNOTAVAIL
        with pytest.raises(OSError) as malformed:
            await b.connect("10.0.0.1")
        assert malformed.value.errno == errno.EINVAL
        with pytest.raises(OSError) as accept_unbound:
            await a.accept(f"{a.id}:81")
        assert accept_unbound.value.errno == errno.EINVAL
        # Bound but not accepting, and not bound at all: both refused.
        for target in (f"{a.id}:80", f"{a.id}:81", "10.0.0.9:1"):
            with pytest.raises(ConnectionRefusedError):
                await b.connect(target)
        # listen() returns once the alias accepts: a connect right after it succeeds, and
        # the connection waits for accept(). A refused connect held no alias: port 0 again.
        await a.listen(f"{a.id}:80")
        local, _, _ = await b.connect(f"{a.id}:80")
        assert local == f"{b.id}:0"
        assert await a.accept(f"{a.id}:80") == local
        with pytest.raises(OSError) as not_bound:
            await a.listen(f"{a.id}:81")
        assert not_bound.value.errno == errno.EINVAL


@pytest.mark.trio
async def test_unreachable_rejected_and_bad_arguments() -> None:
    async with open_signaling_server(suffixes=range(1, 2)) as server:
        port = server.port
        async with open_signaling_client(server.url) as a:
            assert a.id == "10.0.0.1"
            with pytest.raises(JoinRejectedError):
                async with open_signaling_client(server.url):
                    pytest.fail("joined a full subnet")
    with pytest.raises(SignalingError) as unreachable:
        async with open_signaling_client(f"ws://127.0.0.1:{port}", request_timeout=2.0):
            pytest.fail("joined a stopped server")
    assert isinstance(unreachable.value, ConnectionError)
    for kwargs in (
        {"subnet": "10.0"},
        {"request_timeout": 0},
        {"backoff": (1.0, 0.5)},
        {"event_buffer": 0},
    ):
        with pytest.raises(ValueError):
            async with open_signaling_client(f"ws://127.0.0.1:{port}", **kwargs):
                pass


@pytest.mark.trio
async def test_wss() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with (
        open_signaling_server(ssl_context=server_context) as server,
        open_signaling_client(server.url, ssl_context=client_context) as a,
    ):
        await a.bind(f"{a.id}:443")


@pytest.mark.trio
async def test_cancelled_connect_leaves_no_alias_behind() -> None:
    """Cancel a connect as its answers arrive: a success the caller never got is undone."""
    async with (
        open_signaling_server() as server,
        open_signaling_client(server.url) as a,
        open_signaling_client(server.url) as b,
    ):
        listening = f"{a.id}:80"
        await a.bind(listening)
        returned: list[tuple[str, str]] = []
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                with trio.CancelScope() as connecting:

                    async def accept_and_cancel() -> None:
                        await a.accept(listening)
                        connecting.cancel()

                    nursery.start_soon(accept_and_cancel)
                    await trio.testing.wait_all_tasks_blocked()
                    returned.append(await b.connect(listening))
                    await trio.sleep_forever()  # the accepting side cancels us
            if returned:  # the race went the other way: the alias is ours to release
                await b.shutdown(returned[0][0])
            # Either way port 0 is free again for the next connection.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.accept, listening)
                await trio.testing.wait_all_tasks_blocked()
                assert (await b.connect(listening))[0] == f"{b.id}:0"


async def wait_for(event: trio.Event) -> None:
    """Wait for another task to set ``event`` (failing the test after TIMEOUT)."""
    with trio.fail_after(TIMEOUT):
        await event.wait()


@pytest.mark.trio
async def test_server_restart_rejoins_and_binds_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "unisockets.signaling.client")
    async with trio.open_nursery() as nursery:
        first = await start_server(nursery)
        async with (
            open_signaling_client(first.url, backoff=FAST) as a,
            # b reconnects later than a, so that each gets its own id back
            open_signaling_client(first.url, backoff=(1.5, 1.5)) as b,
        ):
            listening = f"{a.id}:80"
            await a.bind(listening)
            accepted: list[str] = []
            accepted_two, bound_later = trio.Event(), trio.Event()

            async def accept_two() -> None:
                accepted.append(await a.accept(listening))
                accepted.append(await a.accept(listening))
                accepted_two.set()

            async def bind_later() -> None:
                await a.bind(f"{a.id}:81")
                bound_later.set()

            nursery.start_soon(accept_two)
            await trio.testing.wait_all_tasks_blocked()
            assert (await b.connect(listening))[0] == f"{b.id}:0"
            await first.stop()
            assert (await next_event(a, Disconnected)).id == "10.0.0.1"
            assert not a.connected
            nursery.start_soon(bind_later)  # made while disconnected: waits for the next session
            second = await start_server(nursery, first.port)
            assert second.url == first.url
            assert await next_event(a, Reconnected) == Reconnected(id="10.0.0.1")
            assert await next_event(b, Reconnected) == Reconnected(id="10.0.0.2")
            # a's alias is bound and accepting again: b connects to it.
            local, _, _ = await b.connect(listening)
            await wait_for(accepted_two)
            await wait_for(bound_later)
            assert accepted[1] == local
            with pytest.raises(OSError) as taken:
                await a.bind(f"{a.id}:81")  # bound by the request made while disconnected
            assert taken.value.errno == errno.EADDRINUSE
        nursery.cancel_scope.cancel()
    assert "bound 10.0.0.1:80 again" in caplog.text


@pytest.mark.trio
async def test_a_connection_alias_is_never_released_in_a_later_session() -> None:
    # b connects in session 1 and gets 10.0.0.2:0; the server restarts, b rejoins and
    # its next connection gets 10.0.0.2:0 again. The first connection's late shutdown
    # must not release the second one's alias.
    async with trio.open_nursery() as nursery:
        first = await start_server(nursery)
        async with (
            open_signaling_client(first.url, backoff=FAST) as a,
            open_signaling_client(first.url, backoff=(1.5, 1.5)) as b,
        ):
            listening = f"{a.id}:80"
            await a.bind(listening)
            await a.listen(listening)
            old_alias, _, _, old_session = await b.connect_in_session(listening)
            assert old_alias == f"{b.id}:0" and old_session == b.session
            await first.stop()
            await next_event(b, Disconnected)
            await start_server(nursery, first.port)
            assert await next_event(b, Reconnected) == Reconnected(id="10.0.0.2")
            await next_event(a, Reconnected)
            new_alias, _, _, new_session = await b.connect_in_session(listening)
            assert new_alias == old_alias and new_session == old_session + 1
            with trio.fail_after(TIMEOUT):
                await b.shutdown(old_alias, session=old_session)  # sends nothing
            # the server still holds 10.0.0.2:0 for the new connection: the next gets :1
            third_alias, _, _, _ = await b.connect_in_session(listening)
            assert third_alias == f"{b.id}:1"
            # within its own session a connection alias is released as before
            await b.shutdown(new_alias, session=new_session)
            fourth_alias, _, _ = await b.connect(listening)
            assert fourth_alias == new_alias
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_rejoin_reconnects_before_the_backoff_ends() -> None:
    # A backoff far longer than the test: only rejoin() can bring the client back in time.
    async with trio.open_nursery() as nursery:
        first = await start_server(nursery)
        async with open_signaling_client(first.url, backoff=(3600.0, 3600.0)) as client:
            client.rejoin()  # joined: nothing to do
            await first.stop()
            await next_event(client, Disconnected)
            await start_server(nursery, first.port)
            client.rejoin()
            assert await next_event(client, Reconnected) == Reconnected(id="10.0.0.1")
            assert client.connected
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_server_that_never_answers_the_upgrade_fails_the_join() -> None:
    # It accepts TCP and says nothing: the join must fail with a reason, not hang.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    held: list[trio.SocketStream] = []

    async def accept_and_hold() -> None:
        while True:
            held.append(await listeners[0].accept())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_and_hold)
        with trio.fail_after(TIMEOUT), pytest.raises(SignalingError) as failed:
            async with open_signaling_client(f"ws://127.0.0.1:{port}", request_timeout=0.5):
                pass
        assert "no WebSocket handshake" in str(failed.value)
        assert held  # it did connect over TCP
        nursery.cancel_scope.cancel()
    for stream in held:
        await stream.aclose()
    await listeners[0].aclose()


@pytest.mark.trio
async def test_a_connection_that_goes_silent_is_noticed_and_rejoined() -> None:
    # A proxy between client and server that stops forwarding (a NAT that forgot the
    # connection): no close, no error, just silence. The client's pings go unanswered,
    # it ends the session and, once the path works again, rejoins with the same id:
    # the server still holds the silent connection (its own ping has not found it
    # dead yet), and the knock with that id and the node's token replaces it.
    fast = ConsentPolicy(interval=0.1, jitter=0.2, lifetime=0.5, unanswered_checks=2)
    async with (
        open_signaling_server(host="127.0.0.1", port=0) as server,
        trio.open_nursery() as nursery,
    ):
        relay = await start_relay(nursery, server.port)
        async with open_signaling_client(relay.url, keepalive=fast, backoff=FAST) as client:
            first = client.id
            relay.silent = True
            reason = (await next_event(client, Disconnected)).reason
            assert "no answer from the signaling server" in reason, reason
            assert server.member_ids == [first]  # the server has not noticed
            relay.silent = False  # new connections go through the relay again
            assert await next_event(client, Reconnected) == Reconnected(id=first)
            assert client.connected and client.id == first
            assert server.member_ids == [first]  # the old connection was replaced
        nursery.cancel_scope.cancel()


# --- a scripted server ------------------------------------------------------------------


class Scripted:
    """A raw WebSocket server on 127.0.0.1; the test sends and checks every frame by hand.

    Attributes:
        url: where clients connect.
        ws: the connection :meth:`join` served last.
    """

    def __init__(self, port: int, connections: trio.MemoryReceiveChannel[WebSocketConnection]):
        self.url = f"ws://127.0.0.1:{port}"
        self._connections = connections
        self.ws: WebSocketConnection | None = None

    async def connection(self) -> WebSocketConnection:
        """The next client connection."""
        with trio.fail_after(TIMEOUT):
            return await self._connections.receive()

    async def join(self, node_id: str = "10.0.0.1", previous_id: str | None = None) -> None:
        """Serve the join of the next client: expect its knock, acknowledge it as ``node_id``.

        ``previous_id`` is the id the knock must ask for (a rejoin).
        """
        ws = await self.connection()
        await expect_knock(ws, previous_id)
        self.ws = ws
        await ws.send_message(encode(Acknowledged(id=node_id, rejected=False)))


@asynccontextmanager
async def open_scripted_server() -> AsyncIterator[Scripted]:
    send, receive = trio.open_memory_channel[WebSocketConnection](16)

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await send.send(ws)
        await trio.sleep_forever()  # the test closes the connection, or the server ends

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        yield Scripted(server.port, receive)
        nursery.cancel_scope.cancel()


async def expect(ws: WebSocketConnection, message: Message) -> None:
    """Assert that the client's next frame is exactly ``message``, encoded."""
    assert await frame(ws) == encode(message)


async def expect_knock(
    ws: WebSocketConnection, previous_id: str | None = None, token: str | None = None
) -> str:
    """Assert that the client's next frame is its knock for 10.0.0; return its rejoin token.

    Our knock carries a rejoin token (32 hex digits) and, once the node had an
    id, that id (docs/protocol.md, "Stable addresses").
    """
    knock = decode(await frame(ws))
    assert isinstance(knock, Knock)
    assert (knock.subnet, knock.id) == ("10.0.0", previous_id)
    assert knock.token is not None and len(knock.token) == 32
    int(knock.token, 16)
    if token is not None:
        assert knock.token == token
    return knock.token


async def frame(ws: WebSocketConnection) -> str:
    with trio.fail_after(TIMEOUT):
        text = await ws.get_message()
    assert isinstance(text, str)
    return text


async def send(ws: WebSocketConnection, *messages: Message) -> None:
    for message in messages:
        await ws.send_message(encode(message))


@pytest.mark.trio
async def test_cancelled_connect_is_undone_when_its_answer_comes_late() -> None:
    async with open_scripted_server() as fake, trio.open_nursery() as nursery:
        nursery.start_soon(fake.join)
        async with open_signaling_client(fake.url) as client:
            ws = fake.ws
            assert ws is not None
            sent: list[Message] = []

            async def cancel_once_sent() -> None:
                sent.append(decode(await frame(ws)))
                connecting.cancel()

            with trio.CancelScope() as connecting:
                nursery.start_soon(cancel_once_sent)
                await client.connect("10.0.0.2:80")
            assert connecting.cancelled_caught
            connect = sent[0]
            assert isinstance(connect, Connect) and connect.remote_alias == "10.0.0.2:80"
            cid = connect.client_connection_id
            await send(
                ws,
                Alias(
                    id="10.0.0.1",
                    alias="10.0.0.1:0",
                    set=True,
                    client_connection_id=cid,
                    is_connection_alias=True,
                ),
                Alias(id="10.0.0.2", alias="10.0.0.2:80", set=True, client_connection_id=cid),
            )
            await expect(ws, Shutdown(id="10.0.0.1", alias="10.0.0.1:0"))


@pytest.mark.trio
async def test_timed_out_bind_is_undone_when_its_answer_comes_late() -> None:
    async with open_scripted_server() as fake, trio.open_nursery() as nursery:
        nursery.start_soon(fake.join)
        async with open_signaling_client(fake.url, request_timeout=0.3) as client:
            ws = fake.ws
            assert ws is not None
            with pytest.raises(TimeoutError):
                await client.bind("10.0.0.1:80")  # the scripted server does not answer in time
            await expect(ws, Bind(id="10.0.0.1", alias="10.0.0.1:80"))
            await send(ws, Alias(id="10.0.0.1", alias="10.0.0.1:80", set=True))
            await expect(ws, Shutdown(id="10.0.0.1", alias="10.0.0.1:80"))
            # Nonsense from the server is logged and ignored; the client goes on.
            await ws.send_message("{")
            await send(ws, Accept(bound_alias="10.0.0.1:9", client_alias="10.0.0.2:0"))
            async with trio.open_nursery() as binding:
                binding.start_soon(client.bind, "10.0.0.1:81")
                await expect(ws, Bind(id="10.0.0.1", alias="10.0.0.1:81"))
                await send(ws, Alias(id="10.0.0.1", alias="10.0.0.1:81", set=True))


@pytest.mark.trio
async def test_lost_connection_carries_requests_over_then_rebinds() -> None:
    async with open_scripted_server() as fake, trio.open_nursery() as nursery:
        nursery.start_soon(fake.join)
        async with open_signaling_client(fake.url, request_timeout=60, backoff=FAST) as client:
            ws = fake.ws
            assert ws is not None
            alias = "10.0.0.1:80"
            async with trio.open_nursery() as binding:
                binding.start_soon(client.bind, alias)
                await expect(ws, Bind(id="10.0.0.1", alias=alias))
                await send(ws, Alias(id="10.0.0.1", alias=alias, set=True))
            accepted: list[str] = []
            accepted_one, bound_81 = trio.Event(), trio.Event()

            async def accept_one() -> None:
                accepted.append(await client.accept(alias))
                accepted_one.set()

            nursery.start_soon(accept_one)
            await expect(ws, Accepting(id="10.0.0.1", alias=alias))

            async def bind_81() -> None:
                await client.bind("10.0.0.1:81")  # no SignalingError: the next session binds it
                bound_81.set()

            nursery.start_soon(bind_81)
            await expect(ws, Bind(id="10.0.0.1", alias="10.0.0.1:81"))
            nursery.start_soon(fake.join, "10.0.0.1", "10.0.0.1")  # the reconnection, same id
            await ws.aclose()  # the bind of :81 is unanswered
            assert (await next_event(client, Disconnected)).id == "10.0.0.1"
            assert await next_event(client, Reconnected) == Reconnected(id="10.0.0.1")
            again = fake.ws
            assert again is not None and again is not ws
            await expect(again, Bind(id="10.0.0.1", alias=alias))  # bound again
            await expect(again, Bind(id="10.0.0.1", alias="10.0.0.1:81"))  # carried over
            await send(again, Alias(id="10.0.0.1", alias=alias, set=True))
            await expect(again, Accepting(id="10.0.0.1", alias=alias))
            assert not bound_81.is_set()
            await send(again, Alias(id="10.0.0.1", alias="10.0.0.1:81", set=True))
            await wait_for(bound_81)  # well before the 60 s request timeout
            # The accept that waited all along gets the new session's connection.
            await send(again, Accept(bound_alias=alias, client_alias="10.0.0.2:0"))
            await expect(again, Accepting(id="10.0.0.1", alias=alias))
            await wait_for(accepted_one)
            assert accepted == ["10.0.0.2:0"]


@pytest.mark.trio
async def test_new_id_after_reconnection(caplog: pytest.LogCaptureFixture) -> None:
    async with open_scripted_server() as fake, trio.open_nursery() as nursery:
        nursery.start_soon(fake.join)
        async with open_signaling_client(fake.url, backoff=FAST) as client:
            ws = fake.ws
            assert ws is not None
            alias = "10.0.0.1:80"
            async with trio.open_nursery() as binding:
                binding.start_soon(client.bind, alias)
                await expect(ws, Bind(id="10.0.0.1", alias=alias))
                await send(ws, Alias(id="10.0.0.1", alias=alias, set=True))
            lost = trio.Event()

            async def accept_one() -> None:
                with pytest.raises(SignalingError):
                    await client.accept(alias)
                lost.set()

            nursery.start_soon(accept_one)
            await expect(ws, Accepting(id="10.0.0.1", alias=alias))
            # An original server: it reads no more than the subnet of our knock.
            nursery.start_soon(fake.join, "10.0.0.2", "10.0.0.1")
            await ws.aclose()
            assert (await next_event(client, Disconnected)).id == "10.0.0.1"
            assert await next_event(client, IdChanged) == IdChanged(
                old_id="10.0.0.1", new_id="10.0.0.2"
            )
            assert await next_event(client, Reconnected) == Reconnected(id="10.0.0.2")
            assert client.id == "10.0.0.2"
            await wait_for(lost)
            # Nothing was bound again: the first frame of the new session is our next request.
            again = fake.ws
            assert again is not None
            async with trio.open_nursery() as binding:
                binding.start_soon(client.bind, "10.0.0.2:5")
                await expect(again, Bind(id="10.0.0.2", alias="10.0.0.2:5"))
                await send(again, Alias(id="10.0.0.2", alias="10.0.0.2:5", set=True))
    assert "id changed from 10.0.0.1 to 10.0.0.2" in caplog.text


@pytest.mark.trio
async def test_without_reconnect_a_lost_connection_closes_the_client() -> None:
    async with open_scripted_server() as fake, trio.open_nursery() as nursery:
        nursery.start_soon(fake.join)
        async with open_signaling_client(fake.url, reconnect=False) as client:
            ws = fake.ws
            assert ws is not None
            await ws.aclose()
            assert (await next_event(client, Disconnected)).id == "10.0.0.1"
            with pytest.raises(trio.EndOfChannel):
                await client.events.receive()
            with pytest.raises(SignalingError):
                await client.connect("10.0.0.2:80")
            assert not client.connected


@pytest.mark.trio
async def test_no_acknowledgement_is_a_signaling_error() -> None:
    async with open_scripted_server() as fake, trio.open_nursery() as nursery:

        async def never_answer() -> None:
            await expect_knock(await fake.connection())

        nursery.start_soon(never_answer)
        with pytest.raises(SignalingError):
            async with open_signaling_client(fake.url, request_timeout=0.3):
                pytest.fail("joined without an acknowledgement")
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_compatible_with_the_original_server(vectors_dir: Path) -> None:
    """Replay the original server's side of the recorded session to two of our clients.

    Every frame our clients send must equal the recorded one (but for the
    random clientConnectionId), and they must understand every frame the
    original server sent: suffix 0, ``goodbye`` before the alias removal.
    """
    lines = (vectors_dir / "original-session.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    sent = {
        conn: [
            decode(r["frame"])
            for r in records
            if r.get("conn") == conn and "frame" in r and r["dir"] == "client->server"
        ]
        for conn in ("ws1", "ws2")
    }
    offer = next(m.offer for m in sent["ws1"] if m.OPCODE == "offer")  # type: ignore[union-attr]
    answer = next(m.answer for m in sent["ws2"] if m.OPCODE == "answer")  # type: ignore[union-attr]
    ws1_ice = [m.candidate for m in sent["ws1"] if m.OPCODE == "candidate"]  # type: ignore[union-attr]
    ws2_ice = [m.candidate for m in sent["ws2"] if m.OPCODE == "candidate"]  # type: ignore[union-attr]
    replayed = trio.Event()

    async def replay(fake: Scripted) -> None:
        connections: dict[str, WebSocketConnection] = {}
        ids: dict[str, str] = {}  # recorded clientConnectionId -> ours
        for record in records:
            conn = record["conn"]
            if record.get("event") == "open":
                connections[conn] = await fake.connection()
                continue
            if record.get("event") == "close":
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await frame(connections[conn])
                continue
            text = record["frame"]
            if record["dir"] == "client->server":
                got = await frame(connections[conn])
                message = decode(got)
                if isinstance(message, Connect):
                    recorded = decode(text)
                    assert isinstance(recorded, Connect)
                    ids[recorded.client_connection_id] = message.client_connection_id
            for recorded_id, our_id in ids.items():
                text = text.replace(recorded_id, our_id)
            if record["dir"] == "client->server" and isinstance(message, Knock):
                # ours adds its rejoin token, which the original server does not read
                assert message == Knock(subnet=decode(text).subnet, token=message.token)  # type: ignore[union-attr]
                assert message.token is not None
            elif record["dir"] == "client->server":
                assert got == text
            else:
                await connections[conn].send_message(text)
        replayed.set()

    async with open_scripted_server() as fake, trio.open_nursery() as nursery:
        nursery.start_soon(replay, fake)
        accepted: list[str] = []
        async with open_signaling_client(fake.url) as ws1:
            assert ws1.id == "10.0.0.0"
            await ws1.bind("10.0.0.0:1234")

            async def accept_one() -> None:
                accepted.append(await ws1.accept("10.0.0.0:1234"))

            nursery.start_soon(accept_one)
            async with open_signaling_client(fake.url) as ws2:
                assert ws2.id == "10.0.0.1"
                assert await next_event(ws1, PeerGreeted) == PeerGreeted(peer_id="10.0.0.1")
                assert await ws2.connect("10.0.0.0:1234") == (
                    "10.0.0.1:0",
                    "10.0.0.0:1234",
                    "10.0.0.0",
                )
                await ws1.send_offer("10.0.0.1", offer)
                assert await next_event(ws2, OfferReceived) == OfferReceived(
                    peer_id="10.0.0.0", sdp=offer
                )
                for candidate in ws1_ice:
                    await ws1.send_candidate("10.0.0.1", candidate)
                for candidate in ws1_ice:
                    assert (await next_event(ws2, CandidateReceived)).candidate == candidate
                await ws2.send_answer("10.0.0.0", answer)
                assert (await next_event(ws1, AnswerReceived)).sdp == answer
                for candidate in ws2_ice:
                    await ws2.send_candidate("10.0.0.0", candidate)
                for candidate in ws2_ice:
                    assert (await next_event(ws1, CandidateReceived)).candidate == candidate
            assert accepted == ["10.0.0.1:0"]
            assert await next_event(ws1, PeerLeft) == PeerLeft(peer_id="10.0.0.1")
        with trio.fail_after(TIMEOUT):
            await replayed.wait()


# --- pacing under the server's rate limit -------------------------------------------------


async def _relay_candidates(send_rate: tuple[float, int] | None, count: int) -> int:
    """``count`` candidates from A to B through a server allowing 40 messages/s, bursts of 8.

    Returns how many B received before A's client closed or all arrived.
    """
    async with (
        open_signaling_server(limits=ServerLimits(max_messages_per_second=40.0, burst=8)) as server,
        open_signaling_client(server.url, reconnect=False) as b,
        open_signaling_client(server.url, reconnect=False, send_rate=send_rate) as a,
    ):
        received = 0
        with trio.move_on_after(TIMEOUT):
            async with trio.open_nursery() as nursery:

                async def send_all() -> None:
                    with contextlib.suppress(SignalingError):
                        for _ in range(count):
                            await a.send_candidate(b.id, ICE)

                nursery.start_soon(send_all)
                while received < count:
                    with trio.move_on_after(1.0) as idle:
                        event = await next_event(b, CandidateReceived)
                        assert event.peer_id == a.id
                        received += 1
                    if idle.cancelled_caught and not a.connected:
                        break
        return received


@pytest.mark.trio
async def test_a_paced_client_stays_under_the_servers_rate_limit() -> None:
    # 30 messages at 36/s with bursts of 7: about 0.6 s, never over the server's bucket.
    assert await _relay_candidates((36.0, 7), 30) == 30


@pytest.mark.trio
async def test_an_unpaced_client_is_closed_by_the_rate_limit() -> None:
    # The control: the same flood without pacing is cut off by the server (close 1008).
    assert await _relay_candidates(None, 30) < 30


def test_the_default_pace_is_under_the_default_server_limits() -> None:
    from unisockets.signaling.client import DEFAULT_SEND_RATE
    from unisockets.signaling.limits import ServerLimits

    rate, burst = DEFAULT_SEND_RATE
    limits = ServerLimits()
    assert rate < limits.max_messages_per_second and burst < limits.burst


@pytest.mark.parametrize("send_rate", [(0.0, 5), (10.0, 0), (float("inf"), 5), (10.0, 2.5)])
def test_a_bad_send_rate_is_a_value_error(send_rate: tuple[float, int]) -> None:
    with pytest.raises(ValueError, match="send_rate"):
        SignalingClient(
            "ws://127.0.0.1:1",
            "10.0.0",
            ssl_context=None,
            request_timeout=1.0,
            reconnect=False,
            backoff=FAST,
            event_buffer=8,
            send_rate=send_rate,
        )
