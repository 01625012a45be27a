"""Hostile clients against the signaling server over real sockets.

Each test lets one client misbehave and asserts two things: the offender gets
the close code (and reason) the server promises, and everybody else carries
on: members learn that the offender left, and a fresh pair of nodes can still
join, bind, accept and connect (:func:`assert_healthy`).
"""

from __future__ import annotations

import json
import logging

import pytest
import trio
import trio.testing
import wsproto.events as ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed

from unisockets.protocol import (
    MESSAGE_TYPES,
    Accepting,
    Alias,
    Bind,
    Goodbye,
    Greeting,
    Knock,
    Offer,
)
from unisockets.protocol.messages import MAX_SDP_LENGTH
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.signaling.limits import ServerLimits
from unisockets.signaling.server import SignalingServer, open_signaling_server

from .server_helpers import (
    TIMEOUT,
    Peer,
    RawClient,
    assert_healthy,
    assert_spoofers_closed,
    open_member,
    open_peer,
    wait_until,
)

SDP = ("v=0\r\n" + "a=x\r\n" * 4000)[:MAX_SDP_LENGTH]  # as large as an offer may be


async def _wait_for_clients(server: SignalingServer, count: int) -> None:
    await wait_until(lambda: server.client_count == count)


@pytest.mark.trio
@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "not a JSON message"),
        ("[1, 2]", "a message must be a JSON object"),
        ('{"opcode": "teleport", "data": {}}', "unknown opcode 'teleport'"),
        ('{"opcode": "bind", "data": {"id": "10.0.0.1"}}', "bind: missing field 'alias'"),
        (
            '{"opcode": "bind", "data": {"id": 7, "alias": "x"}}',
            "bind: id must be a dotted IPv4 id",
        ),
        ('{"opcode": "goodbye", "data": {"id": "10.0.0.2"}}', "goodbye is sent by servers"),
        (
            '{"opcode": "knock", "data": {"subnet": "10.0.0"}}',
            "knock from 10.0.0.1: already joined",
        ),
    ],
)
async def test_invalid_messages_from_a_member_close_it_with_1008_and_the_error(
    frame: str, reason: str
) -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as bad,
        open_member(server.url) as good,
    ):
        await bad.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        await bad.send(frame)
        closed = await bad.closed()
        assert closed.code == 1008
        assert closed.reason is not None and reason in closed.reason
        await good.expect(Goodbye(id="10.0.0.1"))
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_a_message_before_knock_is_a_violation() -> None:
    async with open_signaling_server() as server, open_peer(server.url) as peer:
        await peer.send(Bind(id="10.0.0.1", alias="10.0.0.1:1"))
        closed = await peer.closed()
        assert (closed.code, closed.reason) == (
            1008,
            "bind before knock: a client must knock first",
        )
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_spoofed_ids_close_the_spoofer_and_nobody_gets_the_forgery() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as b,
        open_member(server.url) as c,
    ):
        await assert_spoofers_closed(a, b, c, SDP)
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_binary_frames_close_with_1003() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as bad,
        open_member(server.url) as good,
    ):
        await bad.send(b'{"opcode":"knock","data":{"subnet":"10.0.0"}}')
        closed = await bad.closed()
        assert closed.code == 1003
        assert closed.reason == "binary frames are not supported: send JSON text frames"
        await good.expect(Goodbye(id="10.0.0.1"))
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_oversize_messages_close_with_1009_and_the_limit_is_inclusive() -> None:
    async with (
        open_signaling_server(limits=ServerLimits(max_message_size=1000)) as server,
        open_member(server.url) as bad,
        open_member(server.url) as good,
    ):
        await bad.send("x" * 1001)
        closed = await bad.closed()
        assert closed.code == 1009
        assert closed.reason == "Exceeded maximum message size: 1000 bytes"
        await good.expect(Goodbye(id="10.0.0.1"))
        async with open_peer(server.url) as at_limit:
            await at_limit.send("y" * 1000)  # fits: refused as garbage, not for its size
            closed = await at_limit.closed()
            assert closed.code == 1008
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_default_limit_is_64_kib() -> None:
    async with open_signaling_server() as server, open_member(server.url) as bad:
        await bad.send('{"data":{"subnet":"' + "9" * (64 * 1024) + '"},"opcode":"knock"}')
        assert (await bad.closed()).code == 1009


@pytest.mark.trio
async def test_a_flood_closes_the_flooder_with_1008_after_the_burst() -> None:
    async with (
        open_signaling_server(
            limits=ServerLimits(max_messages_per_second=0.001, burst=5)
        ) as server,
        open_member(server.url) as bad,
        open_member(server.url) as good,
    ):
        await bad.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        # the knock took one token; four more messages are fine
        for _ in range(4):
            await bad.send(Accepting(id="10.0.0.1", alias="10.0.0.1:1"))
        await bad.send(Bind(id="10.0.0.1", alias="10.0.0.1:2"))
        closed = await bad.closed()
        assert closed.code == 1008
        assert closed.reason == "rate limit exceeded (0.001 messages/s, burst 5)"
        await good.expect(Goodbye(id="10.0.0.1"))  # the bind over the limit was not done


@pytest.mark.trio
async def test_invalid_utf8_and_broken_framing_close_with_1007_and_1002(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # RFC 6455 §7.1.7 and §8.1: fail the connection, with a close frame saying why.
    # (Under trio-websocket the server cut TCP without a close frame.)
    caplog.set_level(logging.INFO, logger="unisockets.signaling.server")
    async with open_signaling_server() as server, open_member(server.url) as good:
        raw = await RawClient.connect(server.port)
        # a masked text frame whose payload is not UTF-8
        await raw.stream.send_all(bytes([0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28]))
        assert await raw.close_frame() == (1007, "invalid UTF-8 in a text message")
        await raw.aclose()
        raw = await RawClient.connect(server.port)
        # the same, cut into a text frame and a continuation (wsproto's path)
        await raw.stream.send_all(bytes([0x01, 0x81, 0, 0, 0, 0, 0xC3, 0x80, 0x81, 0, 0, 0, 0]))
        await raw.stream.send_all(bytes([0x28]))
        code_and_reason = await raw.close_frame()
        assert code_and_reason is not None and code_and_reason[0] == 1007
        await raw.aclose()
        raw = await RawClient.connect(server.port)
        await raw.stream.send_all(b"\xff" * 64)  # no valid frame at all
        code_and_reason = await raw.close_frame()
        assert code_and_reason is not None and code_and_reason[0] == 1002
        await raw.aclose()
        await _wait_for_clients(server, 1)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("error close 1007: " in w for w in warnings), warnings
        assert any("error close 1002:" in w for w in warnings), warnings
        await good.send(Bind(id="10.0.0.1", alias="10.0.0.1:9"))
        await good.expect(Alias(id="10.0.0.1", alias="10.0.0.1:9", set=True))


@pytest.mark.trio
async def test_clients_vanishing_during_the_handshake_leave_no_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="unisockets.signaling.server")
    async with open_signaling_server(limits=ServerLimits(handshake_timeout=60)) as server:
        # connect and close at once
        raw = await RawClient.connect(server.port, handshake=False)
        await raw.aclose()
        # half an HTTP request, then close
        raw = await RawClient.connect(server.port, handshake=False)
        await raw.stream.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
        await raw.aclose()
        # half an HTTP request, then reset
        raw = await RawClient.connect(server.port, handshake=False)
        await raw.stream.send_all(b"GET / HTTP/1.1\r\n")
        raw.reset()
        # not HTTP at all: 400, then the server hangs up
        raw = await RawClient.connect(server.port, handshake=False)
        await raw.stream.send_all(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
        assert (await raw.receive_all()).startswith(b"HTTP/1.1 400 ")
        await raw.aclose()
        # the server let go of all four without waiting for the 60 s handshake timeout
        await wait_until(
            lambda: (
                sum("gone before the WebSocket handshake" in r.getMessage() for r in caplog.records)
                == 4
            )
        )
        assert server.client_count == 0
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_a_member_whose_tcp_connection_resets_leaves_with_goodbye() -> None:
    async with open_signaling_server() as server, open_member(server.url) as good:
        raw = await RawClient.connect(server.port)
        await raw.send_text('{"data":{"subnet":"10.0.0"},"opcode":"knock"}')
        event = await raw.next_event()
        assert isinstance(event, ev.TextMessage)
        await good.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        await raw.send_text('{"data":{"id":"10.0.0.2","alias":"10.0.0.2:7"},"opcode":"bind"}')
        await good.expect(Alias(id="10.0.0.2", alias="10.0.0.2:7", set=True))
        raw.reset()
        await good.expect(
            Goodbye(id="10.0.0.2"), Alias(id="10.0.0.2", alias="10.0.0.2:7", set=False)
        )
        await _wait_for_clients(server, 1)
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_handshake_timeout_drops_silent_connections_and_clients_that_never_knock() -> None:
    async with open_signaling_server(limits=ServerLimits(handshake_timeout=0.5)) as server:
        silent = await RawClient.connect(server.port, handshake=False)
        assert await silent.next_event() is None  # cut before any WebSocket
        await silent.aclose()
        async with open_peer(server.url) as lurker:
            closed = await lurker.closed()
            assert (closed.code, closed.reason) == (1008, "did not join within 0.5 s")
        # a member that knocked in time is not affected by the handshake timeout
        async with open_member(server.url) as member:
            await trio.sleep(0.7)
            await member.send(Bind(id="10.0.0.1", alias="10.0.0.1:1"))
            await member.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True))


@pytest.mark.trio
async def test_connections_beyond_max_handshakes_are_cut_and_members_are_not_affected() -> None:
    # Slowloris: TCP connections that never send the upgrade request hold a
    # handshake slot each until handshake_timeout; beyond max_handshakes more are
    # closed at once, and members that joined are not affected.
    async with (
        open_signaling_server(
            limits=ServerLimits(handshake_timeout=60, max_handshakes=3)
        ) as server,
        open_member(server.url) as member,
    ):
        idle = [await RawClient.connect(server.port, handshake=False) for _ in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        extra = await RawClient.connect(server.port, handshake=False)
        with trio.fail_after(TIMEOUT):  # cut at once, not after the 60 s timeout
            assert await extra.next_event() is None
        await extra.aclose()
        await member.send(Bind(id="10.0.0.1", alias="10.0.0.1:1"))
        await member.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True))
        # once the idle connections go, new clients get through again
        for connection in idle:
            await connection.aclose()
        await wait_until(lambda: server._handshaking == 0)
        async with open_member(server.url) as late:
            await late.send(Bind(id="10.0.0.2", alias="10.0.0.2:1"))
            await late.expect(Alias(id="10.0.0.2", alias="10.0.0.2:1", set=True))


@pytest.mark.trio
async def test_a_client_that_stops_answering_pings_is_dropped_with_1011() -> None:
    async with open_signaling_server(
        limits=ServerLimits(ping_interval=0.3, close_timeout=0.5)
    ) as server:
        silent = await RawClient.connect(server.port)
        await silent.send_text('{"data":{"subnet":"10.0.0"},"opcode":"knock"}')
        assert isinstance(await silent.next_event(), ev.TextMessage)
        async with open_member(server.url) as good:
            # good's WebSocket answers pings by itself; silent reads nothing more
            await good.expect(Goodbye(id="10.0.0.1"))
            events = []
            while (event := await silent.next_event()) is not None:
                events.append(event)
            pings = [e for e in events if isinstance(e, ev.Ping)]
            closes = [(e.code, e.reason) for e in events if isinstance(e, ev.CloseConnection)]
            assert pings
            assert closes == [(1011, "no pong within 0.3 s")]
            # good survives several ping intervals
            await trio.sleep(0.7)
            await good.send(Bind(id="10.0.0.2", alias="10.0.0.2:1"))
            await good.expect(Alias(id="10.0.0.2", alias="10.0.0.2:1", set=True))


@pytest.mark.trio
async def test_a_client_that_never_reads_is_closed_as_a_slow_consumer() -> None:
    async with open_signaling_server(
        limits=ServerLimits(
            send_queue_bytes=8 * MAX_SDP_LENGTH,
            max_messages_per_second=1e6,
            burst=10**6,
            close_timeout=TIMEOUT,
        ),
    ) as server:
        slow = await RawClient.connect(server.port)
        await slow.send_text('{"data":{"subnet":"10.0.0"},"opcode":"knock"}')
        assert isinstance(await slow.next_event(), ev.TextMessage)
        # slow reads nothing from now on
        async with open_member(server.url) as flooder, open_member(server.url) as observer:
            await flooder.expect(Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3"))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_flood_offers, flooder, "10.0.0.2", "10.0.0.1")
                await observer.expect(Goodbye(id="10.0.0.1"))
                nursery.cancel_scope.cancel()
            # once slow reads again, it gets what was already in flight, then the close
            assert await slow.close_frame() == (1008, "slow consumer")
            await slow.aclose()
        await assert_healthy(server.url)


async def _flood_offers(peer: Peer, sender: str, recipient: str) -> None:
    """Send offers until the recipient is gone (then the server may close the flooder too)."""
    offer = Offer(offerer_id=sender, answerer_id=recipient, offer=SDP)
    try:
        while True:
            await peer.send(offer)
    except ConnectionClosed:
        pass


@pytest.mark.trio
async def test_an_unexpected_exception_closes_only_that_client_with_1011(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    receive = SignalingServerProtocol.receive

    def broken_receive(self: SignalingServerProtocol[int], key: int, message: object) -> object:
        if isinstance(message, Knock) and message.subnet == "66.6.6":
            raise RuntimeError("injected bug")
        return receive(self, key, message)  # type: ignore[arg-type]

    monkeypatch.setattr(SignalingServerProtocol, "receive", broken_receive)
    async with open_signaling_server() as server, open_member(server.url) as good:
        async with open_peer(server.url) as victim:
            await victim.send(Knock(subnet="66.6.6"))
            closed = await victim.closed()
            assert (closed.code, closed.reason) == (1011, "internal server error")
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and errors[0].exc_info is not None
        assert "injected bug" in str(errors[0].exc_info[1])
        await good.send(Bind(id="10.0.0.1", alias="10.0.0.1:1"))
        await good.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True))
        await assert_healthy(server.url)


@pytest.mark.trio
async def test_many_hostile_clients_at_once_leave_the_server_healthy() -> None:
    async def garbage(url: str) -> None:
        async with open_member(url, "10.1.1") as peer:
            await peer.send("{")
            assert (await peer.closed()).code == 1008

    async def binary(url: str) -> None:
        async with open_peer(url) as peer:
            await peer.send(b"\x00")
            assert (await peer.closed()).code == 1003

    async def resetter(port: int) -> None:
        raw = await RawClient.connect(port)
        await raw.send_text('{"data":{"subnet":"10.1.1"},"opcode":"knock"}')
        raw.reset()

    async def half_open(port: int) -> None:
        raw = await RawClient.connect(port, handshake=False)
        await raw.aclose()

    async with open_signaling_server() as server:
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(garbage, server.url)
                nursery.start_soon(binary, server.url)
                nursery.start_soon(resetter, server.port)
                nursery.start_soon(half_open, server.port)
            nursery.start_soon(assert_healthy, server.url)
        # every offender is gone, the server serves on
        await _wait_for_clients(server, 0)
        await assert_healthy(server.url)


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(["10.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.1:1", "10.0.0.2:0", "-1", ""]),
    st.text(max_size=20),
)
_FIELDS = st.sampled_from(
    [
        *("id", "subnet", "alias", "set", "offererId", "answererId", "offer", "answer"),
        *("candidate", "remoteAlias", "clientConnectionId", "boundAlias", "clientAlias"),
        "rejected",
    ]
)
_FRAMES = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda opcode, data: json.dumps({"opcode": opcode, "data": data}),
        st.sampled_from([*MESSAGE_TYPES, "nope"]),
        st.dictionaries(_FIELDS, _VALUES, max_size=5),
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(_FRAMES, min_size=1, max_size=4))
def test_arbitrary_frames_from_a_member_never_hurt_the_server(frames: list[str]) -> None:
    async def scenario() -> None:
        async with (
            open_signaling_server() as server,
            open_member(server.url) as fuzzer,
            open_member(server.url) as other,
        ):
            for frame in frames:
                try:
                    await fuzzer.send(frame)
                except ConnectionClosed:
                    break
            # the fuzzer is either still a member or was closed with a policy code
            reason = None
            try:
                await fuzzer.send(Bind(id="10.0.0.1", alias="10.0.0.1:65535"))
            except ConnectionClosed as exc:  # the close may have arrived already
                reason = exc.reason
            while reason is None:
                try:
                    got = await fuzzer.frame()
                except ConnectionClosed as exc:
                    reason = exc.reason
                    break
                if '"alias":"10.0.0.1:65535"' in str(got):
                    break
            if reason is not None:
                assert reason.code == 1008, reason
            await assert_healthy(server.url)
            del other

    trio.run(scenario)
