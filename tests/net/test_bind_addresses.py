"""Which overlay addresses a node's socket may bind, and where a connect to them goes.

docs/protocol.md, "Bind": a node may bind its own id or any address that is
no other node's id (the original's C echo server binds ``127.0.0.1:1234``
whatever its node's id); the first to bind an alias holds it, and a connect
to it reaches the holder. Nodes on a real signaling server, each test over
the in-memory transport and over real WebRTC (issue 15).
"""

from __future__ import annotations

import errno

import pytest
import trio

from .conftest import NodeFactory

pytestmark = pytest.mark.trio


async def test_127_0_0_1_is_an_overlay_address_held_by_its_binder(
    node_factory: NodeFactory,
) -> None:
    async with node_factory() as alice, node_factory() as bob, node_factory() as carol:
        server = bob.socket()
        await server.bind(("127.0.0.1", 1234))
        await server.listen(5)
        assert server.getsockname() == ("127.0.0.1", 1234)
        # the alias is bob's now: nobody else binds it
        late = carol.socket()
        with pytest.raises(OSError) as info:
            await late.bind(("127.0.0.1", 1234))
        assert info.value.errno == errno.EADDRINUSE
        late.close()
        with trio.fail_after(60):
            for node in (alice, bob):  # another node, and the holder itself
                client = node.socket()
                await client.connect(("127.0.0.1", 1234))
                connection, peer = await server.accept()
                assert peer[0] == node.address
                assert client.getpeername() == ("127.0.0.1", 1234)
                await client.sendall(b"to bob")
                assert await connection.recv(100) == b"to bob"
                client.close()
                connection.close()
        server.close()


async def test_another_nodes_address_is_never_taken(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob:
        # alice was greeted with bob: she knows his address and refuses at once
        sock = alice.socket()
        with pytest.raises(OSError) as info:
            await sock.bind((bob.address, 80))
        assert info.value.errno == errno.EADDRNOTAVAIL
        await sock.bind(("", 80))  # the socket is still usable
        assert sock.getsockname() == (alice.address, 80)
        sock.close()
        # bob may not have heard of alice yet: the server refuses, with a reason
        sock = bob.socket()
        with pytest.raises(OSError) as info:
            await sock.bind((alice.address, 80))
        assert info.value.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE)
        assert f"{alice.address} is another node's address" in str(info.value)
        sock.close()


async def test_a_free_id_bound_by_a_node_is_not_handed_to_a_new_node(
    node_factory: NodeFactory,
) -> None:
    async with node_factory() as alice:
        sock = alice.socket()
        await sock.bind(("10.0.0.2", 80))
        async with node_factory() as bob:
            assert bob.address == "10.0.0.3"
        sock.close()


async def test_aclose_returns_once_the_server_released_the_address(
    node_factory: NodeFactory,
) -> None:
    async with node_factory() as alice, node_factory() as bob:
        with trio.fail_after(60):
            listener = await alice.bind(1234, "127.0.0.1")
            listening = listener.listen()
            await listening.wait_ready()
            await listening.aclose()
            # the server forgot alice's alias already: bob binds it at once, no retrying
            taken = await bob.bind(1234, "127.0.0.1")
            await taken.aclose()
            # the same for an address that was bound and never listened on
            binding = await alice.bind(80, "10.0.0.50")
            await binding.aclose()
            again = await bob.bind(80, "10.0.0.50")
            await again.aclose()
            assert again.address == ("10.0.0.50", 80)
