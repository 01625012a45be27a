"""Several signaling server instances over one Redis: joins/s, relayed/s, relay latency, memory.

Each instance is ``unisockets signaling-server --redis URL`` in a process of
its own, on one ``redis-server`` started for the run (no persistence); the
load generator is this process, with the lean WebSocket clients of
:mod:`benchmarks.signaling_load`. For each layout (``0``: one instance
without Redis, the baseline; then 1, 2, 4 instances over Redis):

1. *join*: N nodes knock, spread round-robin over the instances, each
   subnet's first member (its owner) on the next instance (at most
   ``--join-concurrency`` at a time), in subnets of ``--subnet-size``; joins/s
   until the last ``acknowledged``, then until every ``greeting`` arrived.
2. *memory*: RSS per node of the instances (sum of their growth / N) and
   Redis's ``used_memory`` growth / N (the stored subnet states).
3. *relay*: pairs of members of a subnet, on different instances where there
   are several, relay ``candidate`` messages with at most ``--window`` in
   flight; relayed messages/s, the CPU of the instances and of Redis, how
   long the instances were runnable but had no core (``instances_waiting``,
   % of the time, summed over instances: the machine's other work), and
   Redis commands (all, and ``PUBLISH``) per relayed message.
4. *latency*: one ``candidate`` at a time between two members, 300 times each
   way, median one-way time = round trip / 2: both on the subnet's owner (no
   Redis on the way), one on the owner and one not (one hop through Redis),
   both on one non-owner instance (two hops: to the owner and back).

Run: ``.venv/bin/python -m benchmarks.signaling_cluster [--quick] [--nodes 1000]
[--instances 0,1,2,4]``. Figures go to docs/signaling-server.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import coredis
import trio

from tests.redis_server import running_redis
from unisockets.protocol import Candidate, encode

from . import common
from .signaling_load import (
    CANDIDATE,
    _client_frame,
    _Counters,
    _join,
    _Node,
    _send_all,
    flood,
    pair_partners,
)

#: Seconds one layout may take before it counts as hung.
HANG = 900


@asynccontextmanager
async def _instances(
    count: int, redis_url: str, nodes: int
) -> AsyncIterator[list[tuple[str, int]]]:
    """``count`` CLI instances (0: one without Redis); yields ``(url, pid)`` of each."""
    processes: list[trio.Process] = []
    found: list[tuple[str, int]] = []
    try:
        for _ in range(max(count, 1)):
            command = [
                sys.executable,
                *("-m", "unisockets", "signaling-server", "--host", "127.0.0.1", "--port", "0"),
                *("--max-clients", str(nodes + 64), "--rate", "1000000", "--burst", "1000000"),
                *("--log-level", "warning"),
                *(("--redis", redis_url) if count else ()),
            ]
            process = await trio.lowlevel.open_process(
                command, stdout=subprocess.PIPE, cwd=common.ROOT
            )
            processes.append(process)
            assert process.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                if not chunk:
                    raise RuntimeError("an instance exited before printing its URL")
                line += chunk
            found.append((line.decode().strip(), process.pid))
        yield found
    finally:
        for process in processes:
            process.kill()
        with trio.CancelScope(shield=True):
            for process in processes:
                await process.wait()


def _instance_of(index: int, size: int, instances: int) -> int:
    """The instance node ``index`` joins through: round-robin, starting one further per subnet.

    The first member of each subnet (its first knock makes that instance the
    owner) is on the next instance, so that the subnets' owners are spread
    over the instances as a load balancer would spread them (plain
    round-robin made instance 0 the owner of every subnet of 254: all the
    applying on one instance, the others only forwarding); consecutive
    members, the relay partners, are still on different instances.
    """
    return (index + index // size) % instances


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    return host, int(port)


async def _redis_memory(redis: coredis.Redis[str] | None) -> int:
    if redis is None:
        return 0
    info = await redis.info("memory")
    return int(info["used_memory"])


async def _redis_calls(redis: coredis.Redis[str] | None) -> dict[str, int]:
    """Redis's command counts so far (``INFO commandstats``): command name -> calls."""
    if redis is None:
        return {}
    info = await redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in info.items()
        if isinstance(stats, dict)
    }


async def _owner_index(redis: coredis.Redis[str] | None, subnet: str, ids: list[str]) -> int:
    """Which of the instances owns ``subnet`` (0 without Redis)."""
    if redis is None:
        return 0
    owner = await redis.get(f"unisockets:owner:{subnet}")
    for index, instance in enumerate(ids):
        if instance == owner:
            return index
    raise RuntimeError(f"no instance owns {subnet}")


async def _latency(pair: tuple[_Node, _Node], counters: _Counters, rounds: int) -> float:
    """Median one-way relay time in ms: one candidate at a time, ``rounds`` each way."""
    times = []
    for _ in range(rounds):
        for sender, receiver in (pair, pair[::-1]):
            assert sender.sock is not None
            message = Candidate(offerer_id=sender.id, answerer_id=receiver.id, candidate=CANDIDATE)
            expected = counters.candidates + 1
            counters.candidates_expected = expected
            counters.candidates_done = trio.Event()
            counters.in_flight += 1
            started = common.now()
            await _send_all(sender.sock, _client_frame(1, encode(message).encode()))
            await counters.candidates_done.wait()
            times.append(common.now() - started)
    return 1e3 * statistics.median(times)


async def _measure(
    layout: int, args: argparse.Namespace, redis_url: str, redis_pid: int
) -> dict[str, float]:
    count = args.nodes
    redis: coredis.Redis[str] | None = None
    async with AsyncExitStack() as stack:
        if layout:
            redis = coredis.Redis.from_url(redis_url, decode_responses=True)
            await stack.enter_async_context(redis)
            await redis.flushall()
        servers = await stack.enter_async_context(_instances(layout, redis_url, count))
        nursery = await stack.enter_async_context(trio.open_nursery())
        pids = [pid for _, pid in servers]
        idle = sum(common.rss(pid) for pid in pids)
        redis_idle = await _redis_memory(redis)
        counters = _Counters()
        size = args.subnet_size
        nodes = [_Node(i, f"10.{i // size // 256}.{i // size % 256}") for i in range(count)]
        counters.greetings_expected = sum(
            k * (k - 1) // 2 for k in (min(size, count - start) for start in range(0, count, size))
        )
        result: dict[str, float] = {}
        latencies: list[float] = []
        with trio.fail_after(HANG):
            limiter = trio.CapacityLimiter(args.join_concurrency)
            cpu = sum(common.cpu_seconds(pid) for pid in pids)
            started = common.now()
            async with trio.open_nursery() as joins:
                for node in nodes:
                    url = servers[_instance_of(node.index, size, len(servers))][0]
                    joins.start_soon(
                        _join, nursery, _address(url), node, counters, limiter, latencies
                    )
            result["join_rate"] = count / (common.now() - started)
            result["join_p50"] = 1e3 * common.percentile(latencies, 50)
            if counters.greetings_expected:
                await counters.greetings_done.wait()
            result["fanout_seconds"] = common.now() - started
            result["join_cpu"] = 1e3 * (sum(common.cpu_seconds(pid) for pid in pids) - cpu) / count
            await trio.sleep(0.5)  # let queues drain before sampling memory
            result["kib_per_node"] = (sum(common.rss(pid) for pid in pids) - idle) / 1024 / count
            result["redis_bytes_per_node"] = (await _redis_memory(redis) - redis_idle) / count

            # relay: partners in one subnet, on different instances where there are several
            paired = pair_partners(nodes, size)
            per_node = max(1, args.relay_total // max(1, len(paired)))
            counters.candidates_expected = per_node * len(paired)
            counters.window = args.window
            cpu = sum(common.cpu_seconds(pid) for pid in pids)
            waited = sum(common.run_queue_seconds(pid) for pid in pids)
            redis_cpu, own_cpu = common.cpu_seconds(redis_pid), common.cpu_seconds()
            calls = await _redis_calls(redis)
            started = common.now()
            await flood(paired, per_node, args.senders, counters)
            took = common.now() - started
            after = await _redis_calls(redis)
            if redis is not None:
                relayed = counters.candidates_expected
                publishes = after.get("publish", 0) - calls.get("publish", 0)
                result["publish_per_msg"] = publishes / relayed
                result["redis_calls_per_msg"] = (
                    sum(after.values()) - sum(calls.values()) - 1  # the INFO itself
                ) / relayed
            result["relay_rate"] = counters.candidates_expected / took
            result["instances_cpu"] = (
                100 * (sum(common.cpu_seconds(pid) for pid in pids) - cpu) / took
            )
            result["instances_waiting"] = (
                100 * (sum(common.run_queue_seconds(pid) for pid in pids) - waited) / took
            )
            result["instances_cpu_us_per_msg"] = (
                1e6 * (sum(common.cpu_seconds(pid) for pid in pids) - cpu)
            ) / counters.candidates_expected
            result["redis_cpu"] = 100 * (common.cpu_seconds(redis_pid) - redis_cpu) / took
            result["loadgen_cpu"] = 100 * (common.cpu_seconds() - own_cpu) / took

            # latency: members of the first subnet by where they sit relative to its owner
            counters.window = 1 << 30
            first = nodes[: min(size, count)]
            ids = [] if redis is None else await _instance_ids(redis, pids)
            owner = await _owner_index(redis, first[0].subnet, ids)
            where = {n.index: _instance_of(n.index, size, len(servers)) for n in first}
            on = [n for n in first if where[n.index] == owner]
            off = [n for n in first if where[n.index] != owner]
            result["latency_owner_ms"] = await _latency((on[0], on[1]), counters, args.rounds)
            if off:
                result["latency_one_hop_ms"] = await _latency(
                    (on[0], off[0]), counters, args.rounds
                )
                same_off = [n for n in off if where[n.index] == where[off[0].index]]
                result["latency_two_hops_ms"] = await _latency(
                    (same_off[0], same_off[1]), counters, args.rounds
                )
        if counters.closed:
            raise RuntimeError(f"{counters.closed} clients were closed by the server")
        nursery.cancel_scope.cancel()
    for node in nodes:
        if node.sock is not None:
            node.sock.close()
    return result


async def _instance_ids(redis: coredis.Redis[str], pids: list[int]) -> list[str]:
    """The cluster id of each instance process, from the presence keys ("<host> <pid>")."""
    by_pid: dict[int, str] = {}
    async for key in redis.scan_iter(match="unisockets:alive:*"):
        value = await redis.get(key)
        if value is not None:
            by_pid[int(value.rsplit(" ", 1)[1])] = key.rsplit(":", 1)[1]
    return [by_pid[pid] for pid in pids]


def main() -> None:
    """Run the multi-instance signaling benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--nodes", type=int, default=1000, help="N nodes (1000)")
    parser.add_argument("--instances", default="0,1,2,4", help="layouts; 0 = no Redis")
    parser.add_argument("--subnet-size", type=int, default=254)
    parser.add_argument("--join-concurrency", type=int, default=100)
    parser.add_argument("--relay-total", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300, help="latency round trips (300)")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.subnet_size, args.relay_total, args.rounds = 24, 8, 400, 20
    common.raise_fd_limit(args.nodes * 2 + 1024)
    gc.set_threshold(50_000, 20, 10)
    layouts = [int(n) for n in args.instances.split(",") if n]
    print(common.machine_summary())
    print(f"N = {args.nodes}, subnets of {args.subnet_size}")
    with running_redis() as redis:
        for layout in layouts:
            values = trio.run(_measure, layout, args, redis.url, redis.process.pid)
            gc.collect()
            name = "1 instance, no Redis" if layout == 0 else f"{layout} instance(s) over Redis"
            print(f"{name}: {json.dumps({k: round(v, 3) for k, v in values.items()})}", flush=True)


if __name__ == "__main__":
    main()
