"""A reused id: a late goodbye of an id's old owner spares the node that took the id.

A node that joins right after another left may get its id (the lowest free
one). Signaling's ``goodbye`` of the old owner can reach a peer after the new
node's first pipe did (the data plane does not wait for signaling); it used
to break that pipe, so the new node's first connection was reset. Goodbye is
not death (docs/protocol.md, "Goodbye is not death"): what the goodbye ends
is what died with the old owner, never a live pipe. In-memory transport,
deterministic (no scheduling race is needed: the goodbye is handed over late
on purpose).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from unisockets.protocol.rendezvous import PipeRendezvous
from unisockets.transport.memory import MemoryNetwork, open_memory_transport

A, B = "10.0.0.1", "10.0.0.2"


@pytest.mark.trio
async def test_a_late_goodbye_of_the_old_owner_spares_the_new_nodes_first_pipe() -> None:
    network = MemoryNetwork()
    async with open_memory_transport(network, A) as a:
        async with open_memory_transport(network, B) as old:
            await old.open_pipe(A, "old connection")
            held = await a.accept_pipe(B, "old connection")
            await old.open_pipe(A, "never accepted")  # queued at A when the old B leaves
        # The old B is gone; a new node takes its id and connects before A hears the goodbye.
        async with open_memory_transport(network, B) as new:
            first = await new.open_pipe(A, "first connection")
            await a.peer_left(B)  # the old owner's goodbye, late
            with trio.fail_after(5):
                accepted = await a.accept_pipe(B, "first connection")
                await first.send_message(b"hello")
                assert await accepted.receive_message() == b"hello"
                await accepted.send_message(b"back")
                assert await first.receive_message() == b"back"
            # What died with the old owner is gone: its pipes broken, its unclaimed one dropped.
            with pytest.raises(trio.BrokenResourceError):
                await held.receive_message()
            assert a._rendezvous.core.queued(B) == 0


@pytest.mark.trio
async def test_goodbye_of_a_node_that_is_gone_fails_the_accepts_waiting_for_it() -> None:
    network = MemoryNetwork()
    async with open_memory_transport(network, A) as a:
        async with open_memory_transport(network, B):
            pass

        async def waiting() -> None:
            with pytest.raises(trio.BrokenResourceError, match="left"):
                await a.accept_pipe(B, "never comes")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting)
            await trio.testing.wait_all_tasks_blocked()
            await a.peer_left(B)


def test_drop_queued_takes_only_the_pipes_of_the_failed_link() -> None:
    """The shared core: a failed link drops its own unclaimed pipes, not a newer link's."""
    core: PipeRendezvous[str] = PipeRendezvous(claim_timeout=10)
    core.arrive(B, "x", "old link's", 0.0)
    core.arrive(B, "x", "new link's", 0.0)
    core.arrive(B, "y", "old link's too", 0.0)
    assert core.drop_queued(B, which=lambda pipe: pipe.startswith("old")) == [
        "old link's",
        "old link's too",
    ]
    assert core.queued(B) == 1 and core.claim(B, "x") == "new link's"
    assert core.next_expiry() == float("inf")


def test_a_dead_links_goodbye_fails_only_the_accepts_that_began_before_it() -> None:
    """The shared core: an accept that began after the goodbye is for the id's new node."""
    core: PipeRendezvous[str] = PipeRendezvous(claim_timeout=10)
    old = core.claim(B, "for the old node")
    goodbye = core.peer_left(B)  # the old link is probed; the new node's connection arrives
    new = core.claim(B, "for the new node")
    failed = core.fail_waiters(B, lambda: RuntimeError("left"), before=goodbye)  # probe: dead
    assert failed == [old] and core.waiting(B) == 1
    assert core.arrive(B, "for the new node", "its pipe", 0.0).waiter is new
