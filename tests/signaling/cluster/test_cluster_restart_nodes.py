"""Every instance of a cluster SIGKILLed and started again, under real WebRTC nodes (issue 19).

Real processes on 127.0.0.1: a ``redis-server`` (it stays up), two signaling
instances (``unisockets signaling-server --redis --rejoin-grace``) and 18
nodes over real aiortc in three worker processes
(tests/net/overlay_worker.py), 3 per subnet and worker in 2 subnets; the
workers list the instances in different orders, so members of one subnet sit
on both instances. Six streams between nodes of different processes carry
checksummed random data. Then both instances are SIGKILLed and started again
on their ports (new instance ids: the old ones' leases and presence expire in
Redis, and the new instances take the subnets over from their snapshots).
Every node rejoins with its old id, binds its listener again and serves a
fresh connect; no stream breaks and every byte comes back as it was sent.
"""

from __future__ import annotations

import signal

import pytest
import trio

from tests.net.workers import check_recovered, open_workers
from tests.redis_server import RedisServer

from .test_cluster_overlay import JOIN_TIMEOUT, OVERALL_TIMEOUT, STEP_TIMEOUT, start_instance

pytestmark = [pytest.mark.trio, pytest.mark.slow]

SUBNETS = ["10.0.0", "10.0.1"]
WORKERS = 3
PER_SUBNET_PER_WORKER = 3


async def test_every_node_keeps_its_id_listener_and_streams_through_a_restart_of_every_instance(
    redis_server: RedisServer,
) -> None:
    a, url_a = await start_instance(redis_server.url)
    b, url_b = await start_instance(redis_server.url)
    instances = [a, b]
    subnets = [s for s in SUBNETS for _ in range(PER_SUBNET_PER_WORKER)]
    try:
        with trio.fail_after(OVERALL_TIMEOUT):
            orders = [f"{url_a},{url_b}", f"{url_b},{url_a}", f"{url_a},{url_b}"]
            async with open_workers(WORKERS, ["", *subnets], JOIN_TIMEOUT, orders) as workers:
                every_id = [node_id for worker in workers for node_id in worker.ids]
                assert len(set(every_id)) == len(every_id) == len(subnets) * WORKERS

                seeds = 0
                started = [0] * WORKERS
                for index in range(0, len(subnets), PER_SUBNET_PER_WORKER):
                    for shift in (1, 2):
                        source = seeds % WORKERS
                        target = workers[(source + shift) % WORKERS]
                        seeds += 1
                        started[source] += 1
                        await workers[source].send(
                            op="stream", node=index, peer=target.ids[index], seed=seeds
                        )
                with trio.fail_after(STEP_TIMEOUT):
                    for worker, count in zip(workers, started, strict=True):
                        for _ in range(count):  # a line once a stream's first round came back
                            line = await worker.receive()
                            assert "streaming" in line, line

                for process in instances:
                    process.send_signal(signal.SIGKILL)
                for process in instances:
                    await process.wait()
                port_a, port_b = (int(url.rsplit(":", 1)[1]) for url in (url_a, url_b))
                instances[0], _ = await start_instance(redis_server.url, port_a)
                instances[1], _ = await start_instance(redis_server.url, port_b)

                with trio.fail_after(STEP_TIMEOUT):
                    results = await check_recovered(workers, len(subnets))
                assert len(results) == seeds
    finally:
        with trio.CancelScope(shield=True):
            for process in instances:
                if process.returncode is None:
                    process.kill()
                await process.wait()
