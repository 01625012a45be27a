"""The signaling server over real WebSockets: PROTOCOL.md's flows, frame by frame.

Every test runs a real server on 127.0.0.1 (port 0) and raw WebSocket
clients (:mod:`tests.signaling.server_helpers`), and asserts the exact text
frames each client receives.
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path

import pytest
import trio
import trustme
import wsproto.events as ev

from unisockets.protocol import (
    REJECTED_ID,
    Accept,
    Accepting,
    Acknowledged,
    Alias,
    Answer,
    Bind,
    Candidate,
    Connect,
    Goodbye,
    Greeting,
    Knock,
    Offer,
    Shutdown,
    encode,
)
from unisockets.signaling.limits import ServerLimits
from unisockets.signaling.server import SignalingServer, open_signaling_server, serve_signaling

from .server_helpers import (
    RawClient,
    assert_healthy,
    open_member,
    open_peer,
    replay_original_session,
    wait_until,
)

CID = "20bc5a15-9db6-4a4f-b4f1-c04ed0d9b7ec"
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
ICE = json.dumps({"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"})


@pytest.mark.trio
async def test_join_acknowledges_and_greets_every_existing_member() -> None:
    async with open_signaling_server() as server:
        assert server.url == f"ws://127.0.0.1:{server.port}"
        assert server.port > 0
        async with (
            open_peer(server.url) as a,
            open_peer(server.url) as b,
            open_peer(server.url) as c,
        ):
            await a.send(Knock(subnet="10.0.0"))
            await a.expect(Acknowledged(id="10.0.0.1", rejected=False))
            await b.send(Knock(subnet="10.0.0"))
            await b.expect(Acknowledged(id="10.0.0.2", rejected=False))
            await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
            await c.send(Knock(subnet="10.0.0"))
            await c.expect(Acknowledged(id="10.0.0.3", rejected=False))
            await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.3"))
            await b.expect(Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3"))
            assert server.client_count == 3
            assert server.member_ids == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


@pytest.mark.trio
async def test_subnets_are_separate_and_a_full_subnet_rejects_the_knock() -> None:
    async with (
        open_signaling_server(suffixes=range(7, 8)) as server,
        open_member(server.url, "10.0.0") as a,
        open_member(server.url, "10.0.1") as b,
    ):
        assert (a.id, b.id) == ("10.0.0.7", "10.0.1.7")
        async with open_peer(server.url) as c:
            await c.send(Knock(subnet="10.0.0"))
            await c.expect(Acknowledged(id=REJECTED_ID, rejected=True))
            # a rejected client may knock again elsewhere
            await c.send(Knock(subnet="10.0.2"))
            await c.expect(Acknowledged(id="10.0.2.7", rejected=False))
        # no greeting crossed subnets: each one's next frame answers its own bind
        await b.send(Bind(id="10.0.1.7", alias="10.0.1.7:1"))
        await b.expect(Alias(id="10.0.1.7", alias="10.0.1.7:1", set=True))
        await a.send(Bind(id="10.0.0.7", alias="10.0.0.7:1"))
        await a.expect(Alias(id="10.0.0.7", alias="10.0.0.7:1", set=True))


@pytest.mark.trio
async def test_offer_answer_and_candidates_are_relayed_unchanged() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as b,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        offer = Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer=SDP)
        await a.send(offer)
        await b.expect(offer)
        answer = Answer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", answer=SDP)
        await b.send(answer)
        await a.expect(answer)
        to_b = Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate=ICE)
        to_a = Candidate(offerer_id="10.0.0.2", answerer_id="10.0.0.1", candidate=ICE)
        await a.send(to_b)
        await b.send(to_a)
        await b.expect(to_b)
        await a.expect(to_a)


@pytest.mark.trio
async def test_a_relay_spelled_otherwise_arrives_as_encode_writes_it() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as b,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        candidate = Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate="a/é\n")
        canonical = encode(candidate)
        respelled = [
            canonical.replace("a/", "a\\/"),  # an escape encode() does not write
            canonical.replace("é", "\\u00e9"),
            json.dumps(json.loads(canonical)),  # spaces, ASCII only
            json.dumps({"opcode": "candidate", "data": json.loads(canonical)["data"]}),
        ]
        for text in [*respelled, canonical]:
            assert json.loads(text) == json.loads(canonical)
            await a.send(text)
            assert await b.frame() == canonical


@pytest.mark.trio
async def test_bind_goes_to_every_member_and_a_taken_bind_only_to_the_binder() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as b,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        bound = Alias(id="10.0.0.1", alias="10.0.0.1:1234", set=True)
        await a.send(Bind(id="10.0.0.1", alias="10.0.0.1:1234"))
        await a.expect(bound)
        await b.expect(bound)
        await a.send(Bind(id="10.0.0.1", alias="10.0.0.1:1234"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1234", set=False))
        # b got nothing for the refused bind: its next frame is for its own bind
        await b.send(Bind(id="10.0.0.2", alias="10.0.0.2:1234"))
        await b.expect(Alias(id="10.0.0.2", alias="10.0.0.2:1234", set=True))
        await a.expect(Alias(id="10.0.0.2", alias="10.0.0.2:1234", set=True))


@pytest.mark.trio
async def test_the_original_echo_programs_addresses_with_the_originals_range() -> None:
    """Issue 15: the original's C server binds 127.0.0.1:1234 on node 127.0.0.0; its client
    connects there. Served as the original serves it, and every bind is answered."""
    async with (
        open_signaling_server(suffixes=range(256)) as server,
        open_member(server.url, "127.0.0") as c_server,
    ):
        assert c_server.id == "127.0.0.0"
        bound = Alias(id="127.0.0.0", alias="127.0.0.1:1234", set=True)
        await c_server.send(Bind(id="127.0.0.0", alias="127.0.0.1:1234"))
        await c_server.expect(bound)
        await c_server.send(Accepting(id="127.0.0.0", alias="127.0.0.1:1234"))
        async with open_member(server.url, "127.0.0") as c_client:
            assert c_client.id == "127.0.0.2"  # 127.0.0.1 is held by the C server's node
            await c_server.expect(Greeting(offerer_id="127.0.0.0", answerer_id="127.0.0.2"))
            # a bind of the address of a live member is answered, not closed nor left hanging
            await c_client.send(Bind(id="127.0.0.2", alias="127.0.0.0:1234"))
            await c_client.expect(  # ours says why (isMemberAddress); originals ignore it
                Alias(id="127.0.0.2", alias="127.0.0.0:1234", set=False, is_member_address=True)
            )
            await c_client.send(
                Connect(id="127.0.0.2", client_connection_id=CID, remote_alias="127.0.0.1:1234")
            )
            await c_client.expect(
                Alias(
                    id="127.0.0.2",
                    alias="127.0.0.2:0",
                    set=True,
                    client_connection_id=CID,
                    is_connection_alias=True,
                ),
                Alias(id="127.0.0.0", alias="127.0.0.1:1234", set=True, client_connection_id=CID),
            )
            await c_server.expect(
                Alias(id="127.0.0.2", alias="127.0.0.2:0", set=True),
                Accept(bound_alias="127.0.0.1:1234", client_alias="127.0.0.2:0"),
            )


@pytest.mark.trio
async def test_connect_to_an_accepting_alias_sends_the_four_messages_in_order() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as b,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        await a.send(Bind(id="10.0.0.1", alias="10.0.0.1:1234"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1234", set=True))
        await b.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1234", set=True))
        await a.send(Accepting(id="10.0.0.1", alias="10.0.0.1:1234"))
        await b.send(Connect(id="10.0.0.2", client_connection_id=CID, remote_alias="10.0.0.1:1234"))
        await b.expect(
            Alias(
                id="10.0.0.2",
                alias="10.0.0.2:0",
                set=True,
                client_connection_id=CID,
                is_connection_alias=True,
            )
        )
        await a.expect(
            Alias(id="10.0.0.2", alias="10.0.0.2:0", set=True),
            Accept(bound_alias="10.0.0.1:1234", client_alias="10.0.0.2:0"),
        )
        await b.expect(
            Alias(id="10.0.0.1", alias="10.0.0.1:1234", set=True, client_connection_id=CID)
        )
        # a second connection gets the next connection alias
        await b.send(Connect(id="10.0.0.2", client_connection_id="x", remote_alias="10.0.0.1:1234"))
        await b.expect(
            Alias(
                id="10.0.0.2",
                alias="10.0.0.2:1",
                set=True,
                client_connection_id="x",
                is_connection_alias=True,
            )
        )


@pytest.mark.trio
async def test_connect_to_an_alias_that_does_not_accept_is_refused() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as b,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        await a.send(Bind(id="10.0.0.1", alias="10.0.0.1:1234"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1234", set=True))
        await b.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1234", set=True))
        # bound but not accepting
        await b.send(Connect(id="10.0.0.2", client_connection_id=CID, remote_alias="10.0.0.1:1234"))
        await b.expect(
            Alias(id="10.0.0.2", alias="10.0.0.2:0", set=False, client_connection_id=CID)
        )
        # nobody there at all; the refused connection alias 0 was released
        await b.send(Connect(id="10.0.0.2", client_connection_id=CID, remote_alias="10.0.0.9:1"))
        await b.expect(
            Alias(id="10.0.0.2", alias="10.0.0.2:0", set=False, client_connection_id=CID)
        )
        # a heard nothing of either: its next frame answers its own request
        await a.send(Bind(id="10.0.0.1", alias="10.0.0.1:1"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True))


@pytest.mark.trio
async def test_shutdown_releases_an_alias_and_a_refused_shutdown_answers_only_the_requester() -> (
    None
):
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as b,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        await a.send(Bind(id="10.0.0.1", alias="10.0.0.1:80"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:80", set=True))
        await b.expect(Alias(id="10.0.0.1", alias="10.0.0.1:80", set=True))
        await a.send(Shutdown(id="10.0.0.1", alias="10.0.0.1:80"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:80", set=False))
        await b.expect(Alias(id="10.0.0.1", alias="10.0.0.1:80", set=False))
        await a.send(Shutdown(id="10.0.0.1", alias="10.0.0.1:80"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:80", set=True))
        # the port is free again
        await a.send(Bind(id="10.0.0.1", alias="10.0.0.1:80"))
        await a.expect(Alias(id="10.0.0.1", alias="10.0.0.1:80", set=True))
        await b.expect(Alias(id="10.0.0.1", alias="10.0.0.1:80", set=True))


@pytest.mark.trio
async def test_leave_sends_goodbye_then_removes_every_alias_of_the_member() -> None:
    async with (
        open_signaling_server() as server,
        open_member(server.url) as a,
        open_member(server.url) as c,
    ):
        await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        async with open_member(server.url) as b:
            await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.3"))
            await c.expect(Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3"))
            for port in (5, 6):
                bound = Alias(id="10.0.0.3", alias=f"10.0.0.3:{port}", set=True)
                await b.send(Bind(id="10.0.0.3", alias=f"10.0.0.3:{port}"))
                await b.expect(bound)
                await a.expect(bound)
                await c.expect(bound)
        for member in (a, c):
            await member.expect(
                Goodbye(id="10.0.0.3"),
                Alias(id="10.0.0.3", alias="10.0.0.3:5", set=False),
                Alias(id="10.0.0.3", alias="10.0.0.3:6", set=False),
            )
        assert server.member_ids == ["10.0.0.1", "10.0.0.2"]
        # the freed id is handed out again
        async with open_member(server.url) as d:
            assert d.id == "10.0.0.3"


@pytest.mark.trio
async def test_replay_of_the_original_session_gets_exactly_the_recorded_frames(
    vectors_dir: Path,
) -> None:
    async with open_signaling_server(suffixes=range(0, 256)) as server:
        await replay_original_session(
            vectors_dir, lambda conn: server.url, lambda: server.client_count
        )


@pytest.mark.trio
async def test_serve_signaling_supports_nursery_start_and_stops_when_cancelled() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_signaling, "127.0.0.1", 0)
        assert isinstance(server, SignalingServer)
        await assert_healthy(server.url)
        nursery.cancel_scope.cancel()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", server.port)


@pytest.mark.trio
async def test_server_exit_sends_1001_to_members_and_to_clients_that_never_knocked() -> None:
    reasons = []
    async with trio.open_nursery() as nursery:
        server_done = trio.Event()

        async def run_server(
            task_status: trio.TaskStatus[SignalingServer] = trio.TASK_STATUS_IGNORED,
        ) -> None:
            async with open_signaling_server() as server:
                task_status.started(server)
                await server_done.wait()

        server = await nursery.start(run_server)
        async with open_member(server.url) as a, open_peer(server.url) as b:
            await wait_until(lambda: server.client_count == 2)
            server_done.set()
            reasons = [await a.closed(), await b.closed()]
    assert [(r.code, r.reason) for r in reasons] == [(1001, "server shutting down")] * 2


@pytest.mark.trio
async def test_max_clients_closes_one_more_with_1013_and_frees_the_slot_on_leave() -> None:
    async with (
        open_signaling_server(limits=ServerLimits(max_clients=2)) as server,
        open_member(server.url) as a,
    ):
        async with open_member(server.url), open_peer(server.url) as c:
            reason = await c.closed()
            assert reason.code == 1013
            assert reason.reason == "server full (2 clients)"
        await wait_until(lambda: server.client_count == 1)
        async with open_member(server.url) as d:
            assert (a.id, d.id) == ("10.0.0.1", "10.0.0.2")


@pytest.mark.trio
async def test_wss_with_a_self_signed_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with open_signaling_server(ssl_context=server_context) as server:
        assert server.url == f"wss://127.0.0.1:{server.port}"
        async with (
            open_member(server.url, ssl_context=client_context) as a,
            open_member(server.url, ssl_context=client_context) as b,
        ):
            assert (a.id, b.id) == ("10.0.0.1", "10.0.0.2")
            await a.expect(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"))
        # a plain ws:// client is cut off (its HTTP request is no TLS), and the server goes on
        plain = await RawClient.connect(server.port, handshake=False)
        await plain.send_event(ev.Request(host="127.0.0.1", target="/"))
        assert await plain.next_event() is None
        await plain.aclose()
        async with open_member(server.url, ssl_context=client_context) as c:
            assert c.id == "10.0.0.1"


@pytest.mark.trio
async def test_joins_binds_connects_and_leaves_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="unisockets.signaling.server")
    async with open_signaling_server() as server:
        await assert_healthy(server.url, subnet="10.9.9")
        async with open_member(server.url, "10.9.8") as lonely:
            await lonely.send(
                Connect(id="10.9.8.1", client_connection_id=CID, remote_alias="10.9.8.9:1")
            )
            await lonely.expect(
                Alias(id="10.9.8.1", alias="10.9.8.1:0", set=False, client_connection_id=CID)
            )
    text = "\n".join(
        r.getMessage() for r in caplog.records if r.name == "unisockets.signaling.server"
    )
    assert "join 10.9.9.1 (127.0.0.1:" in text
    assert "bind 10.9.9.1 10.9.9.1:8080: ok" in text
    assert "connect 10.9.9.2:0 -> 10.9.9.1:8080: accepted" in text
    assert "leave 10.9.9.2 (127.0.0.1:" in text
    assert "connect 10.9.8.1 -> 10.9.8.9:1: refused" in text


@pytest.mark.trio
async def test_bad_limits_and_busy_ports_raise_plain_errors() -> None:
    with pytest.raises(ValueError, match="max_clients"):
        ServerLimits(max_clients=0)
    with pytest.raises(ValueError, match="ping_interval"):
        ServerLimits(ping_interval=float("nan"))
    with pytest.raises(TypeError, match=r"ServerLimits\(max_clients=100\), got dict"):
        async with open_signaling_server(limits={"max_clients": 2}):  # type: ignore[arg-type]
            pass
    with pytest.raises(TypeError, match="max_clients"):  # the limits go in `limits` only
        async with open_signaling_server(max_clients=2):  # type: ignore[call-arg]
            pass
    async with open_signaling_server() as server:
        with pytest.raises(OSError):
            async with open_signaling_server(port=server.port):
                pass
        # an error in the body propagates as it is, and the server stops
        with pytest.raises(KeyError):
            async with open_signaling_server() as inner:
                raise KeyError(inner.url)
