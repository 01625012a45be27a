"""Guests on overlay nodes: a real signaling server and real WebRTC data channels on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from unisockets import net
from unisockets.wasm import run_wasm

from .conftest import Programs
from .test_native import Output, start_guest

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@asynccontextmanager
async def overlay_nodes(count: int) -> AsyncIterator[list[net.Node]]:
    """``count`` WebRTC nodes (10.0.0.1, 10.0.0.2, ...) on one signaling server."""
    from unisockets.signaling.server import open_signaling_server

    async with open_signaling_server(host="127.0.0.1", port=0) as server:
        nodes: list[net.Node] = []
        async with _nodes(server.url, count, nodes):
            yield nodes


@asynccontextmanager
async def _nodes(url: str, count: int, nodes: list[net.Node]) -> AsyncIterator[None]:
    if count == 0:
        yield
        return
    async with net.open_node(url, ice_addresses=["127.0.0.1"]) as node:
        nodes.append(node)
        async with _nodes(url, count - 1, nodes):
            yield


@pytest.mark.trio
async def test_wasm_client_talks_to_python_server(programs: Programs) -> None:
    out, err = Output(), Output()
    async with overlay_nodes(2) as (server_node, client_node):
        assert server_node.address == "10.0.0.1"

        async def echo_once(listener: trio.abc.Listener[net.SocketStream]) -> None:
            stream = await listener.accept()
            async with stream:
                while data := await stream.receive_some(65536):
                    await stream.send_all(data.upper())

        async with server_node.listen(1234) as listener, trio.open_nursery() as nursery:
            nursery.start_soon(echo_once, listener)
            status = await run_wasm(
                client_node,
                programs.echo_client,  # type: ignore[arg-type]
                ["10.0.0.1", "1234"],
                stdin=b"hello\nover webrtc\n",
                stdout=out,
                stderr=err,
            )
    assert status == 0, err.text
    assert out.lines() == ["HELLO", "OVER WEBRTC"]
    assert err.lines()[0] == "connected to 10.0.0.1:1234"


@pytest.mark.trio
async def test_python_client_talks_to_wasm_server(programs: Programs) -> None:
    out = Output()
    async with overlay_nodes(2) as (server_node, client_node), trio.open_nursery() as nursery:
        # The program binds its node's own address (0.0.0.0 = 10.0.0.1).
        start_guest(nursery, server_node, programs.echo_server, "0.0.0.0", "1234", "1", stdout=out)
        await out.wait_for("listening on 0.0.0.0:1234")
        # The guest's listen() returned only once signaling knew: no refusal race.
        stream = await client_node.connect(("10.0.0.1", 1234))
        async with stream:
            await stream.send_all(b"one\n")
            received = b""
            while len(received) < 4:
                received += await stream.receive_some(100)
            assert received == b"one\n"
            await stream.send_eof()
            assert await stream.receive_some(100) == b""
        with trio.fail_after(30):
            await out.wait_for("closed 10.0.0.2:0")
    assert out.lines()[1] == "accepted 10.0.0.2:0"


@pytest.mark.trio
async def test_the_originals_echo_addresses_work_across_two_nodes(programs: Programs) -> None:
    """Issue 15: the original's C server binds 127.0.0.1:1234 and its client connects to
    127.0.0.1:1234, on two nodes. On the overlay that is one ordinary address: the
    server's node (10.0.0.1) holds it, and the client's node (10.0.0.2) reaches it."""
    server_out, client_out, client_err = Output(), Output(), Output()
    async with overlay_nodes(2) as (server_node, client_node), trio.open_nursery() as nursery:
        assert (server_node.address, client_node.address) == ("10.0.0.1", "10.0.0.2")
        start_guest(nursery, server_node, programs.echo_server, stdout=server_out)  # defaults
        await server_out.wait_for("listening on 127.0.0.1:1234")
        with trio.fail_after(60):
            status = await run_wasm(
                client_node,
                programs.echo_client,  # type: ignore[arg-type]
                [],  # defaults: 127.0.0.1 1234, as the original's client
                stdin=b"hello\nover two nodes\n",
                stdout=client_out,
                stderr=client_err,
            )
            await server_out.wait_for("closed 10.0.0.2:0")
        nursery.cancel_scope.cancel()
    assert status == 0, client_err.text
    assert client_out.lines() == ["hello", "over two nodes"]
    assert client_err.lines()[0] == "connected to 127.0.0.1:1234"
    assert server_out.lines()[1] == "accepted 10.0.0.2:0"


@pytest.mark.trio
async def test_a_bind_of_another_nodes_address_fails_at_once(programs: Programs) -> None:
    """bind() of another live node's address returns EADDRNOTAVAIL; it never hangs."""
    out = Output()
    async with overlay_nodes(2) as (first, second):
        with trio.fail_after(30):
            # With lazy links (the default) the second node has never heard of the
            # first: its bind goes to our server, whose refusal says the address is a
            # member's (isMemberAddress, docs/protocol.md "Bind and listen").
            assert first.address not in second.signaling._protocol.peers  # type: ignore[attr-defined]
            status = await run_wasm(
                second,
                programs.echo_server,  # type: ignore[arg-type]
                [first.address, "1234"],
                stdout=out,
                stderr=out,
            )
    assert status != 0
    assert "Address not available" in out.text or "EADDRNOTAVAIL" in out.text, out.text


@pytest.mark.trio
async def test_overlay_errnos_refused_and_bind_taken(programs: Programs) -> None:
    refused, bound = Output(), Output()
    async with overlay_nodes(2) as (first, second):
        await run_wasm(first, programs.probe, ["refused", "10.0.0.2", "4321"], stdout=refused)  # type: ignore[arg-type]
        await run_wasm(second, programs.probe, ["bind-twice", "4321"], stdout=bound)  # type: ignore[arg-type]
    assert refused.lines() == ["connect -1 ECONNREFUSED"]
    assert bound.lines()[4:] == ["bind -1 EADDRINUSE", "listen -1 EINVAL"]


@pytest.mark.trio
async def test_peer_node_gone_ends_the_guests_recv(programs: Programs) -> None:
    out = Output()
    from unisockets.signaling.server import open_signaling_server

    # Nested on purpose: the peer node closes while the guest still runs.
    async with (  # noqa: SIM117
        open_signaling_server(host="127.0.0.1", port=0) as server,
        net.open_node(server.url, ice_addresses=["127.0.0.1"]) as guest_node,
        trio.open_nursery() as nursery,
    ):
        async with (
            net.open_node(server.url, ice_addresses=["127.0.0.1"]) as peer,
            peer.listen(1234) as listener,
        ):
            start_guest(
                nursery, guest_node, programs.probe, "connect", peer.address, "1234", stdout=out
            )
            stream = await listener.accept()
            assert await stream.receive_some(4) == b"ping"
        # The peer node is gone (closed with its stream and peer link).
    assert out.lines()[:2] == ["connect 0", "send 4"]
    assert out.lines()[2:] == ["recv -1 ECONNRESET"]
