"""The overlay through a SIGKILLed instance over Redis (issue 19, "Faults").

Real processes on 127.0.0.1: a ``redis-server``, two signaling instances
(``unisockets signaling-server --redis --rejoin-grace``) and 30 nodes over
real aiortc in three worker processes (tests/net/overlay_worker.py), 5 per
subnet and worker in 2 subnets, each given both instances' URLs, every node
listening on port 7, idle and beside two CPU hogs. Ten streams between
nodes of different processes carry checksummed random data. Then the
instance the nodes are on (which owns both subnets) is SIGKILLed, and the
nodes come back through the other, which takes the subnets over from their
snapshots in Redis (tokens included). Every node gets its id back, binds
its listener again and serves a fresh connect; no stream breaks and every
byte comes back as it was sent.

The kill comes while the subnets' full mesh is still being negotiated:
offers, answers and candidates inside the killed instance die with it, and
those links start over once their peers rejoin (docs/transport.md, "Peer
links"; before, a fresh connect over such a link failed after the link
timeout with "the peer sent no candidates"). A link can be connected on one
side and still connecting on the other at the kill: the connecting side
drops it and, once back, offers the peer a fresh link, which replaces the
peer's side (:mod:`unisockets.protocol.relinks`; before, the peer kept its
dead side when greeted again, nobody offered, and a fresh connect over it
failed in about 1 run of 20 with "no data channel within 15 s").
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import trio

from tests.net.workers import Lines, check_recovered, open_workers
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.trio, pytest.mark.slow]

SUBNETS = ["10.0.0", "10.0.1"]
WORKERS = 3
PER_SUBNET_PER_WORKER = 5
#: Only bounds against hangs (every wait is on a line a process prints), below
#: pytest's own timeout (120 s), so that a hang still kills the instances and workers.
JOIN_TIMEOUT = 60.0
#: A take-over waits for the dead owner's 5 s lease, and its presence (3 s) to expire.
STEP_TIMEOUT = 45.0
OVERALL_TIMEOUT = 115.0


async def start_instance(redis_url: str, port: int = 0) -> tuple[trio.Process, str]:
    process = await trio.lowlevel.open_process(
        [
            *(sys.executable, "-m", "unisockets", "signaling-server"),
            *("--host", "127.0.0.1", "--port", str(port), "--redis", redis_url),
            *("--rejoin-grace", "5", "--log-level", "warning"),
        ],
        stdout=subprocess.PIPE,
    )
    url = await Lines(process).line()
    return process, url


@pytest.mark.parametrize("loaded", [False, True], ids=["idle", "two-cpu-hogs"])
async def test_every_node_keeps_its_id_and_streams_through_a_sigkilled_owner(
    redis_server: RedisServer, loaded: bool, request: pytest.FixtureRequest
) -> None:
    if loaded:
        request.getfixturevalue("cpu_load")  # two CPU-bound processes beside the test
    a, url_a = await start_instance(redis_server.url)
    b, url_b = await start_instance(redis_server.url)
    subnets = [s for s in SUBNETS for _ in range(PER_SUBNET_PER_WORKER)]
    try:
        with trio.fail_after(OVERALL_TIMEOUT):
            arguments = [f"{url_a},{url_b}", *subnets]  # every node joins through a first
            async with open_workers(WORKERS, arguments, JOIN_TIMEOUT) as workers:
                every_id = [node_id for worker in workers for node_id in worker.ids]
                assert (
                    len(set(every_id))
                    == len(every_id)
                    == WORKERS * PER_SUBNET_PER_WORKER * len(SUBNETS)
                )

                seeds = 0
                started = [0] * WORKERS
                for index in range(0, len(subnets), PER_SUBNET_PER_WORKER):
                    for _ in range(WORKERS + 2):  # 5 streams per subnet, between processes
                        source = seeds % WORKERS
                        target = workers[(source + 1 + seeds // WORKERS % 2) % WORKERS]
                        seeds += 1
                        started[source] += 1
                        await workers[source].send(
                            op="stream", node=index + seeds % 2, peer=target.ids[index], seed=seeds
                        )
                with trio.fail_after(STEP_TIMEOUT):
                    for worker, count in zip(workers, started, strict=True):
                        for _ in range(count):  # a line once a stream's first round came back
                            line = await worker.receive()
                            assert "streaming" in line, line

                a.send_signal(signal.SIGKILL)
                await a.wait()

                # Every node rejoins through b and listens again; then a
                # fresh connect from every node to a node of the next process is served.
                with trio.fail_after(STEP_TIMEOUT):
                    results = await check_recovered(workers, len(subnets))
                assert len(results) == seeds
    finally:
        with trio.CancelScope(shield=True):
            for process in (a, b):
                if process.returncode is None:
                    process.kill()
                await process.wait()
