"""Datagram sockets on the asyncio runtime, over real aiortc and a real signaling server.

An asyncio node (:mod:`unisockets.aio`, aiortc in the test's loop) and a trio
node (:mod:`unisockets.net`, in the trio thread of tests/aio/conftest.py)
exchange datagrams both ways; the errnos and anyio's ``UDPSocket`` /
``ConnectedUDPSocket`` are checked on both anyio backends with the same code.

Datagrams may be lost (docs/concepts.md, "Datagram sockets"), so a test that
needs one to arrive sends it again until it does, as a UDP program would,
with a bound on the attempts.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trio

import unisockets
import unisockets.net as net
from unisockets.aio import AioNode
from unisockets.net.datagram_anyio import AnyioConnectedUDPSocket, AnyioUDPSocket
from unisockets.protocol.datagram import DEFAULT_MAX_PAYLOAD, MAX_PENDING_DATAGRAMS

from .test_end_to_end import LOOPBACK, TIMEOUT, server
from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio

#: Seconds to wait for an answer before sending a datagram again.
RESEND_AFTER = 2.0
#: Attempts before a test gives up on a datagram.
ATTEMPTS = 10
#: The trio node's echo port, and its two plain ports.
ECHO, RIGHT, WRONG = 5000, 5001, 5002


async def until_answered(
    send: Callable[[], Awaitable[Any]], receive: Callable[[], Awaitable[Any]]
) -> Any:
    """``send()`` then ``receive()``, again after :data:`RESEND_AFTER` without an answer.

    ``receive`` answering None is no answer either.
    """
    for _ in range(ATTEMPTS):
        await send()
        with anyio.move_on_after(RESEND_AFTER):
            result = await receive()
            if result is not None:
                return result
    raise AssertionError(f"no answer after {ATTEMPTS} attempts")


@asynccontextmanager
async def trio_peer(url: str) -> AsyncIterator[tuple[net.Node, dict[int, net.DatagramSocket]]]:
    """A trio node (runs in the trio thread) with an echo socket and two plain sockets."""
    async with net.open_node(url, **LOOPBACK) as node, trio.open_nursery() as nursery:
        sockets = {}
        for port in (ECHO, RIGHT, WRONG):
            sockets[port] = node.socket(unisockets.SOCK_DGRAM)
            await sockets[port].bind(("", port))

        async def echo() -> None:
            while True:
                data, source = await sockets[ECHO].recvfrom(65536)
                await sockets[ECHO].sendto(b"echo " + data, source)

        nursery.start_soon(echo)
        yield node, sockets
        nursery.cancel_scope.cancel()
        for sock in sockets.values():
            sock.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_asyncio_node_and_a_trio_node(trio_thread: TrioThread, anyio_backend: str) -> None:
    """Both directions over real aiortc, and a connected socket's filter (udp(7))."""

    def on_trio(function: Any, *args: Any) -> Any:
        return anyio.to_thread.run_sync(trio_thread.run, function, *args)

    with anyio.fail_after(TIMEOUT * 2):
        async with server(trio_thread) as url, AsyncExitStack() as stack:
            node = await stack.enter_async_context(unisockets.open_node(url, **LOOPBACK))
            assert isinstance(node, AioNode)
            (peer, sockets), leave = await anyio.to_thread.run_sync(
                trio_thread.enter, trio_peer(url)
            )
            stack.push_async_callback(anyio.to_thread.run_sync, leave)
            sock = stack.enter_context(node.socket(unisockets.SOCK_DGRAM))
            await sock.bind(("", 0))
            port = sock.getsockname()[1]
            assert sock.getsockname() == (node.address, port)

            # trio → asyncio: the trio node opens its datagram channel first.
            payload, source = await until_answered(
                lambda: on_trio(sockets[RIGHT].sendto, b"from trio", (node.address, port)),
                lambda: sock.recvfrom(100),
            )
            assert (payload, source) == (b"from trio", (peer.address, RIGHT))

            # asyncio → trio and back: 20 datagrams, each answered by the echo.
            for index in range(20):
                data = f"datagram {index:02} ".encode() * 50
                expected = b"echo " + data

                async def answer(expected: bytes = expected) -> tuple[str, int]:
                    while True:
                        got, source = await sock.recvfrom(2048)
                        if got == expected:
                            return source
                        assert got.startswith(b"echo datagram ")  # late: an earlier resend's

                source = await until_answered(
                    lambda data=data: sock.sendto(data, (peer.address, ECHO)), answer
                )
                assert source == (peer.address, ECHO)

            # A connected socket takes its peer's datagrams only.
            connected = stack.enter_context(node.socket(unisockets.SOCK_DGRAM))
            await connected.connect((peer.address, RIGHT))
            target = connected.getsockname()

            async def from_both() -> None:
                await on_trio(sockets[WRONG].sendto, b"wrong", target)
                await on_trio(sockets[RIGHT].sendto, b"right", target)

            filtered = node.driver.datagrams.statistics.filtered
            payload, source = await until_answered(from_both, lambda: connected.recvfrom(100))
            assert (payload, source) == (b"right", (peer.address, RIGHT))
            with anyio.fail_after(TIMEOUT):
                await node.driver.datagrams.wait_statistics(lambda s: s.filtered > filtered)
            connected.settimeout(0)
            while True:  # whatever else arrived is the peer's too
                try:
                    assert await connected.recvfrom(100) == (payload, source)
                except BlockingIOError:
                    break
            connected.settimeout(None)

            # send() goes to the peer.
            got = await until_answered(
                lambda: connected.send(b"to the peer"),
                lambda: on_trio(receive_within, sockets[RIGHT]),
            )
            assert got == (b"to the peer", target)


async def receive_within(sock: net.DatagramSocket) -> tuple[bytes, tuple[str, int]] | None:
    """(In the trio thread) the next datagram of ``sock``, or None after :data:`RESEND_AFTER`."""
    with trio.move_on_after(RESEND_AFTER):
        return await sock.recvfrom(100)
    return None


async def test_errnos_on_both_backends(trio_thread: TrioThread, anyio_backend: str) -> None:
    """The errnos of docs/concepts.md's table, from the asyncio driver as from trio's."""
    with anyio.fail_after(TIMEOUT):
        async with server(trio_thread) as url, unisockets.open_node(url, **LOOPBACK) as node:
            with node.socket(unisockets.SOCK_DGRAM) as sock:
                await sock.bind(("", 0))
                port = sock.getsockname()[1]
                with node.socket(unisockets.SOCK_DGRAM) as other:
                    cases: list[tuple[int, Callable[[], Awaitable[Any]]]] = [
                        (errno.EADDRINUSE, lambda: other.bind(("", port))),
                        (errno.EADDRNOTAVAIL, lambda: other.bind(("10.9.9.9", 0))),
                        (errno.EINVAL, lambda: sock.bind(("", 0))),
                        (errno.EDESTADDRREQ, lambda: sock.send(b"x")),
                        (errno.EINVAL, lambda: sock.sendto(b"x", ("10.0.0.9", 0))),
                        (
                            errno.EMSGSIZE,
                            lambda: sock.sendto(b"x" * (DEFAULT_MAX_PAYLOAD + 1), ("10.0.0.9", 9)),
                        ),
                    ]
                    for expected, call in cases:
                        with pytest.raises(OSError) as error:
                            await call()
                        assert error.value.errno == expected, call
                    with pytest.raises(OSError) as error:
                        sock.getpeername()
                    assert error.value.errno == errno.ENOTCONN
                # A payload of exactly the limit is taken (and dropped: no such peer).
                assert await sock.sendto(b"x" * DEFAULT_MAX_PAYLOAD, (node.address, 9)) == (
                    DEFAULT_MAX_PAYLOAD
                )
                sock.settimeout(0)
                with pytest.raises(BlockingIOError):
                    await sock.recvfrom(10)
                sock.settimeout(None)

                async def close_soon() -> None:
                    sock.close()

                async with anyio.create_task_group() as group:

                    async def wait() -> None:
                        with pytest.raises(OSError) as waiting:
                            await sock.recvfrom(10)
                        assert waiting.value.errno == errno.EBADF

                    group.start_soon(wait)
                    await anyio.wait_all_tasks_blocked()
                    group.start_soon(close_soon)
                for call in (lambda: sock.sendto(b"x", (node.address, port)), lambda: sock.recv(1)):
                    with pytest.raises(OSError) as error:
                        await call()
                    assert error.value.errno == errno.EBADF
            # The port is free again at once.
            with node.socket(unisockets.SOCK_DGRAM) as again:
                await again.bind(("", port))


async def test_anyio_udp_sockets_on_both_backends(
    trio_thread: TrioThread, anyio_backend: str
) -> None:
    """anyio's ``UDPSocket`` and ``ConnectedUDPSocket`` over two nodes, with typed attributes."""
    attribute = anyio.abc.SocketAttribute
    with anyio.fail_after(TIMEOUT * 2):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **LOOPBACK) as alice,
            unisockets.open_node(url, **LOOPBACK) as bob,
        ):
            plain = alice.socket(unisockets.SOCK_DGRAM)
            await plain.bind(("", 0))
            connected = bob.socket(unisockets.SOCK_DGRAM)
            await connected.connect((alice.address, plain.getsockname()[1]))
            async with AnyioUDPSocket(plain) as udp, AnyioConnectedUDPSocket(connected) as peer:
                assert isinstance(udp, anyio.abc.UDPSocket)
                assert isinstance(peer, anyio.abc.ConnectedUDPSocket)
                assert udp.extra(attribute.local_address) == plain.getsockname()
                assert udp.extra(attribute.local_port) == plain.getsockname()[1]
                assert udp.extra(attribute.family) == unisockets.AF_INET
                assert peer.extra(attribute.remote_address) == (
                    alice.address,
                    plain.getsockname()[1],
                )
                assert peer.extra(attribute.remote_port) == plain.getsockname()[1]
                local = peer.extra(attribute.local_address)
                assert local == (bob.address, connected.getsockname()[1])

                data, source = await until_answered(lambda: peer.send(b"hello"), udp.receive)
                assert (data, source) == (b"hello", local)
                answer = await until_answered(lambda: udp.send((b"hi back", source)), peer.receive)
                assert answer == b"hi back"
            for closed in (udp.receive(), peer.send(b"x")):
                with pytest.raises(anyio.ClosedResourceError):
                    await closed


async def test_datagrams_to_an_unreachable_node_wait_within_a_bound_then_drop(
    trio_thread: TrioThread, anyio_backend: str
) -> None:
    """The sans-IO send decisions (DatagramSenders), the same on both drivers."""
    extra = 10
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, link_timeout=2, **LOOPBACK) as node,
        ):
            layer = node.driver.datagrams if isinstance(node, AioNode) else node.datagrams
            with node.socket(unisockets.SOCK_DGRAM) as sock:
                # Nobody has 10.0.0.200; no sendto waits for its link: MAX_PENDING_DATAGRAMS
                # wait meanwhile, the rest are dropped at once.
                for _ in range(MAX_PENDING_DATAGRAMS + extra):
                    await sock.sendto(b"x", ("10.0.0.200", 9))
                assert layer.statistics.send_dropped == extra
                # The link fails: what waited is dropped.
                await layer.wait_statistics(
                    lambda s: s.send_dropped == MAX_PENDING_DATAGRAMS + extra
                )
                # Within RETRY_AFTER the peer is paused: dropped at once.
                await sock.sendto(b"x", ("10.0.0.200", 9))
                assert layer.statistics.send_dropped == MAX_PENDING_DATAGRAMS + extra + 1
