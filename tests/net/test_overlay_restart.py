"""The overlay holds through a kill -9 of its signaling server (issue 16, "Stable addresses").

Real processes on 127.0.0.1: a signaling server (``unisockets
signaling-server --rejoin-grace``), and 54 nodes over real aiortc in three
worker processes (tests/net/overlay_worker.py), 9 per subnet in 6 subnets
(so not one full mesh of 54), every node listening on port 7. Twelve streams
between nodes of different processes carry checksummed random data, round
after round. Then the server is killed with SIGKILL and started again on the
same port. Every node rejoins with its old id (it asks for it; the grace
keeps newcomers off), binds its listener again and serves a fresh connect;
no stream breaks and every byte comes back as it was sent.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import trio

from .workers import Lines, check_recovered, open_workers

pytestmark = [pytest.mark.trio, pytest.mark.slow]

SUBNETS = [f"10.0.{k}" for k in range(6)]
WORKERS = 3
PER_SUBNET_PER_WORKER = 3
#: Only bounds against hangs (every wait is on a line a process prints), below
#: pytest's own timeout (120 s), so that a hang still kills the server and workers.
JOIN_TIMEOUT = 60.0
STEP_TIMEOUT = 40.0
OVERALL_TIMEOUT = 110.0


async def start_server(port: int = 0) -> tuple[trio.Process, str]:
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "unisockets",
            "signaling-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--rejoin-grace",
            "5",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
    )
    url = await Lines(process).line()
    return process, url


@pytest.mark.parametrize("loaded", [False, True], ids=["idle", "two-cpu-hogs"])
async def test_every_node_keeps_its_id_and_every_stream_through_a_server_kill_9(
    loaded: bool, request: pytest.FixtureRequest
) -> None:
    if loaded:
        request.getfixturevalue("cpu_load")  # two CPU-bound processes beside the test
    server, url = await start_server()
    port = int(url.rsplit(":", 1)[1])
    subnets = [s for s in SUBNETS for _ in range(PER_SUBNET_PER_WORKER)]
    try:
        with trio.fail_after(OVERALL_TIMEOUT):
            async with open_workers(WORKERS, [url, *subnets], JOIN_TIMEOUT) as workers:
                every_id = [node_id for worker in workers for node_id in worker.ids]
                assert len(set(every_id)) == len(every_id) == 54

                # Twelve streams, each between two processes, inside one subnet.
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

                server.send_signal(signal.SIGKILL)
                await server.wait()
                server, url = await start_server(port)

                # Every node rejoins and listens again; then a fresh connect from every node
                # to a node of the next process reaches that node's listener.
                with trio.fail_after(STEP_TIMEOUT):
                    results = await check_recovered(workers, len(subnets))
                assert len(results) == seeds
    finally:
        with trio.CancelScope(shield=True):
            server.kill()
            await server.wait()
