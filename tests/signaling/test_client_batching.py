"""The signaling client under a slow trio scheduler: many requests at once all complete.

A busy data plane in the same trio run (1,000 streams over the native
WebRTC backend) makes every scheduler round slow. The client must then read
and handle every message that one read brought in one step (not one message
per round), write what its outbox holds with one write, and count a
request's deadline from when it is written (not from when it was queued
behind the others). Here the busy data plane is played by tasks that each
burn the CPU for a while before every checkpoint, in the same trio run as
the real signaling server and the real clients (WebSockets on 127.0.0.1).
"""

from __future__ import annotations

import time

import pytest
import trio

from unisockets.signaling.client import open_signaling_client
from unisockets.signaling.server import open_signaling_server

from ..cpu_load import cpu_load  # noqa: F401 - a fixture for this file's tests

#: Tasks that burn the CPU between checkpoints, and how long each burns per turn.
BURNERS = 20
BURN_SECONDS = 0.002  # so a scheduler round takes at least BURNERS * BURN_SECONDS = 40 ms
#: Concurrent requests: answered one per round, they would take REQUESTS * 40 ms = 16 s.
REQUESTS = 400
REQUEST_TIMEOUT = 6.0


async def _burn(rounds: list[int]) -> None:
    """Hold the CPU for BURN_SECONDS, then let the others run; forever."""
    while True:
        end = time.perf_counter() + BURN_SECONDS
        while time.perf_counter() < end:
            pass
        rounds[0] += 1
        await trio.lowlevel.checkpoint()


@pytest.mark.trio
@pytest.mark.timeout(180)
@pytest.mark.parametrize("busy_machine", [False, True], ids=["idle", "cpu_load"])
async def test_many_requests_complete_while_every_scheduler_round_is_slow(
    busy_machine: bool, request: pytest.FixtureRequest
) -> None:
    if busy_machine:  # and two CPU-bound processes take the cores as well
        request.getfixturevalue("cpu_load")
    async with (
        open_signaling_server() as server,
        open_signaling_client(server.url, request_timeout=REQUEST_TIMEOUT) as listener,
        open_signaling_client(server.url, request_timeout=REQUEST_TIMEOUT) as client,
        trio.open_nursery() as busy,
    ):
        await listener.bind(f"{listener.id}:7")
        await listener.listen(f"{listener.id}:7")
        rounds = [0]
        for _ in range(BURNERS):
            busy.start_soon(_burn, rounds)
        outcomes: dict[str, str] = {}

        async def bind(port: int) -> None:
            alias = f"{client.id}:{1000 + port}"
            try:
                await client.bind(alias)
            except Exception as exc:  # counted below, with its type
                outcomes[alias] = type(exc).__name__
            else:
                outcomes[alias] = "bound"

        async def connect(index: int) -> None:
            try:
                await client.connect(f"{listener.id}:7")
            except ConnectionRefusedError:
                outcomes[f"connect {index}"] = "answered"  # refused: the alias accepts once
            except Exception as exc:
                outcomes[f"connect {index}"] = type(exc).__name__
            else:
                outcomes[f"connect {index}"] = "answered"

        started = trio.current_time()
        async with trio.open_nursery() as requests:
            for index in range(REQUESTS):
                requests.start_soon(bind if index % 2 else connect, index)
        elapsed = trio.current_time() - started
        busy.cancel_scope.cancel()
    failed = {key: value for key, value in outcomes.items() if value not in ("bound", "answered")}
    assert len(outcomes) == REQUESTS
    assert not failed, f"{len(failed)} of {REQUESTS} failed in {elapsed:.1f} s: {failed}"
    # The rounds were slow indeed: the burners ran (and each round held them all).
    assert rounds[0] >= BURNERS


@pytest.mark.trio
@pytest.mark.timeout(120)
async def test_a_request_waiting_in_the_paced_outbox_is_not_timed_out() -> None:
    # 400 binds at once through an outbox paced at 100 messages/s (bursts of 10)
    # take 4 s to write; each is answered right after its write, so none may time
    # out with a 2 s request timeout: the deadline counts from the write.
    count, timeout = 400, 2.0
    async with (
        open_signaling_server() as server,
        open_signaling_client(server.url, request_timeout=timeout, send_rate=(100, 10)) as client,
    ):
        outcomes: dict[int, str] = {}

        async def bind(port: int) -> None:
            try:
                await client.bind(f"{client.id}:{port}")
            except Exception as exc:
                outcomes[port] = type(exc).__name__
            else:
                outcomes[port] = "bound"

        started = trio.current_time()
        async with trio.open_nursery() as requests:
            for port in range(count):
                requests.start_soon(bind, port)
        elapsed = trio.current_time() - started
    assert elapsed > timeout  # the pacing held them back longer than the timeout
    assert outcomes == dict.fromkeys(range(count), "bound")
