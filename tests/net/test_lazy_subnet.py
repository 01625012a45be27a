"""One subnet of 100 nodes with lazy peer links: each node links only to the peers it talks to.

Issue 16, "Lazy peer links". Real processes on 127.0.0.1: our signaling
server in-process, 100 nodes over real aiortc in four worker processes
(tests/net/overlay_worker.py), all in subnet 10.0.0 (the original's eager
mesh would negotiate 4,950 links). Twenty random pairs of nodes in different
processes stream checksummed data; then every node's links are exactly the
peers it streamed with.
"""

from __future__ import annotations

import random

import pytest
import trio

from unisockets.signaling.server import open_signaling_server

from .workers import open_workers, stop_streams

pytestmark = [pytest.mark.trio, pytest.mark.slow]

WORKERS = 4
PER_WORKER = 25
PAIRS = 20
#: Only a bound against hangs (every wait is on a line a process prints), below
#: pytest's own timeout (120 s), so that a hang still kills the workers.
TIMEOUT = 50.0


@pytest.mark.parametrize("loaded", [False, True], ids=["idle", "two-cpu-hogs"])
async def test_a_hundred_lazy_nodes_in_one_subnet_link_only_to_whom_they_talk(
    loaded: bool, request: pytest.FixtureRequest
) -> None:
    if loaded:
        request.getfixturevalue("cpu_load")  # two CPU-bound processes beside the test
    async with (
        open_signaling_server(host="127.0.0.1", port=0) as server,
        open_workers(WORKERS, [server.url, "--lazy", *["10.0.0"] * PER_WORKER], TIMEOUT) as workers,
    ):
        with trio.fail_after(TIMEOUT):
            assert len({i for w in workers for i in w.ids}) == WORKERS * PER_WORKER
            rng = random.Random(16)
            expected: dict[str, set[str]] = {i: set() for w in workers for i in w.ids}
            started = [0] * WORKERS
            used: set[tuple[int, int]] = set()
            for seed in range(1, PAIRS + 1):
                while True:
                    source, target = rng.sample(range(WORKERS), 2)
                    index, other = rng.randrange(PER_WORKER), rng.randrange(PER_WORKER)
                    if (source, index) not in used and (target, other) not in used:
                        break
                used |= {(source, index), (target, other)}
                peer = workers[target].ids[other]
                mine = workers[source].ids[index]
                expected[mine].add(peer)
                expected[peer].add(mine)
                started[source] += 1
                await workers[source].send(op="stream", node=index, peer=peer, seed=seed)
            for worker, count in zip(workers, started, strict=True):
                for _ in range(count):
                    line = await worker.receive()
                    assert "streaming" in line, line
            for worker in workers:
                await worker.send(op="links")
                links = (await worker.receive())["links"]
                for node_id, linked in zip(worker.ids, links, strict=True):
                    assert set(linked) == expected[node_id], node_id
            results = await stop_streams(workers)
            assert len(results) == PAIRS
            assert [r for r in results if r["error"] is not None] == []
