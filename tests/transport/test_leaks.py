"""Nothing outlives a WebRTC transport's ``async with``: threads, tasks, sockets, peer connections.

Checked after a normal exit, after cancellation (mid-setup and mid-transfer)
and after an error raised inside the block. Linux only (reads /proc).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from aiortc import RTCPeerConnection

from .conftest import Mesh, open_mesh

A, B = "10.0.0.1", "10.0.0.2"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _udp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            inodes.add(line.split()[9])
    return inodes


def _socket_inodes() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (e.g. the listdir's own fd)
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


@dataclass
class Snapshot:
    """What the process holds at one moment."""

    threads: set[threading.Thread]
    udp_sockets: set[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(set(threading.enumerate()), _socket_inodes() & _udp_inodes())


def _open_peer_connections() -> list[RTCPeerConnection]:
    gc.collect()
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, RTCPeerConnection) and obj.connectionState != "closed"
    ]


def assert_nothing_left(before: Snapshot, loops: list[asyncio.AbstractEventLoop]) -> None:
    """Fail if a thread, UDP socket, asyncio task or open peer connection remains."""
    after = Snapshot.take()
    assert after.threads - before.threads == set()
    assert after.udp_sockets - before.udp_sockets == set()
    for loop in loops:
        assert loop.is_closed()
        assert asyncio.all_tasks(loop) == set()
    assert _open_peer_connections() == []


def _loops(mesh: Mesh) -> list[asyncio.AbstractEventLoop]:
    return [transport._bridge.loop for transport in mesh.transports.values()]


async def _traffic(mesh: Mesh, label: str) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mesh[B].accept_pipe, A, label)
        pipe = await mesh[A].open_pipe(B, label)
    for _ in range(200):
        await pipe.send_message(b"x" * 8192)


@pytest.mark.trio
async def test_clean_exit_leaves_nothing() -> None:
    before = Snapshot.take()
    with trio.fail_after(30):
        async with open_mesh(A, B) as mesh:
            loops = _loops(mesh)
            await _traffic(mesh, "a")
            # while open, the transport does hold sockets and a thread (the check can fail)
            during = Snapshot.take()
            assert during.udp_sockets - before.udp_sockets
            # each transport owns its asyncio loop thread (no registry shares them)
            assert len(during.threads - before.threads) == 2
            assert _open_peer_connections()
    assert_nothing_left(before, loops)


@pytest.mark.trio
@pytest.mark.parametrize("when", ["during-setup", "during-transfer"])
async def test_cancellation_leaves_nothing(when: str) -> None:
    before = Snapshot.take()
    loops: list[asyncio.AbstractEventLoop] = []
    with trio.CancelScope() as scope:
        async with open_mesh(A, B) as mesh:
            loops = _loops(mesh)
            if when == "during-setup":
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(mesh[A].open_pipe, B, "never")
                    await trio.sleep(0.005)  # the link is negotiating
                    scope.cancel()
            else:
                await _traffic(mesh, "warm-up")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_traffic, mesh, "busy")
                    await trio.sleep(0.05)
                    scope.cancel()
    assert scope.cancelled_caught
    assert_nothing_left(before, loops)


@pytest.mark.trio
async def test_error_inside_leaves_nothing_and_surfaces_unchanged() -> None:
    class Boom(Exception):
        pass

    before = Snapshot.take()
    loops: list[asyncio.AbstractEventLoop] = []
    with pytest.raises(Boom):  # the body's own exception, not an ExceptionGroup
        async with open_mesh(A, B) as mesh:
            loops = _loops(mesh)
            await _traffic(mesh, "before-error")
            raise Boom
    assert_nothing_left(before, loops)


@pytest.mark.trio
async def test_failed_and_replaced_links_leave_nothing() -> None:
    before = Snapshot.take()
    async with open_mesh(A, B) as mesh:
        loops = _loops(mesh)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(mesh[A].open_pipe, B, "one")
                at_b = await mesh[B].accept_pipe(A, "one")
            mesh[A].links[B].fail(trio.BrokenResourceError("failed by the test"))
            with pytest.raises(trio.BrokenResourceError):
                await at_b.receive_message()  # B saw the link close
            # glare: both sides offer; B drops its own peer connection for A's
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_traffic, mesh, "two")
                nursery.start_soon(mesh[B].open_pipe, A, "three")
                nursery.start_soon(mesh[A].accept_pipe, B, "three")
            assert ("offer", A) in mesh.signals[B].sent
            # a stale link: B's side still looks up when A's new offer comes
            mesh[B].links[A].fail(trio.BrokenResourceError("failed by the test"))
            await _traffic(mesh, "four")
    assert_nothing_left(before, loops)
