"""The designs considered for several signaling instances, measured on Redis alone.

What each design costs per signaling input, against one ``redis-server``
started for the run, from trio through coredis (the project's client):

- *pub/sub hop* (chosen): one ``PUBLISH`` to another connection's
  subscription, one message at a time (latency) and batched as the cluster
  batches them (``--batch`` items per message, throughput).
- *stream hop*: the same through a Redis Stream (``XADD`` / blocking
  ``XREAD``), which would survive a subscriber's reconnection.
- *shared state, lock per input*: no owner; every instance applies each
  input itself: take the subnet's lock (``SET NX PX``), load its snapshot,
  apply it with the sans-IO machine, store it, release the lock. Measured
  with a subnet of ``--members`` members (the snapshot grows with it).

Run: ``.venv/bin/python -m benchmarks.signaling_cluster_alternatives [--quick]``.
Figures go to docs/signaling-server.md ("Why one owner per subnet").
"""

from __future__ import annotations

import argparse
import json
import statistics

import coredis
import trio

from tests.redis_server import running_redis
from unisockets.protocol import Bind, Knock
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.server_snapshot import restore_subnet, snapshot_subnet

from . import common

ITEM = json.dumps(
    ["o", 17, '{"data":{"id":"10.0.0.1","alias":"10.0.0.1:80","set":true},"opcode":"alias"}']
)


async def _pubsub(
    redis: coredis.Redis[str], rounds: int, messages: int, batch: int
) -> dict[str, float]:
    got = 0
    arrived = trio.Event()
    result: dict[str, float] = {}
    async with trio.open_nursery() as nursery:

        async def listen(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            nonlocal got, arrived
            async with redis.pubsub(channels=["bench"], ignore_subscribe_messages=True) as ps:
                task_status.started()
                async for _ in ps:
                    got += 1
                    arrived.set()

        await nursery.start(listen)
        times = []
        for _ in range(rounds):
            arrived = trio.Event()
            started = common.now()
            await redis.publish("bench", ITEM)
            await arrived.wait()
            times.append(common.now() - started)
        result["pubsub_hop_ms"] = 1e3 * statistics.median(times)
        got = 0
        payload = "[" + ",".join([ITEM] * batch) + "]"
        started = common.now()
        for _ in range(0, messages, 100):
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.publish("bench", payload)
        while got < messages:
            arrived = trio.Event()
            await arrived.wait()
        result["pubsub_items_per_s"] = messages * batch / (common.now() - started)
        nursery.cancel_scope.cancel()
    return result


async def _streams(
    redis: coredis.Redis[str], rounds: int, messages: int, batch: int
) -> dict[str, float]:
    result: dict[str, float] = {}
    await redis.delete(["bench-stream"])
    last = "0-0"
    times = []
    for _ in range(rounds):
        started = common.now()
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                nonlocal last
                entries = await redis.xread({"bench-stream": last}, count=1, block=5000)
                assert entries
                last = next(iter(entries.values()))[-1].identifier

            nursery.start_soon(read)
            await redis.xadd("bench-stream", {"m": ITEM})
        times.append(common.now() - started)
    result["stream_hop_ms"] = 1e3 * statistics.median(times)
    payload = "[" + ",".join([ITEM] * batch) + "]"
    await redis.delete(["bench-stream"])
    started = common.now()
    for _ in range(0, messages, 100):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(100):
                pipe.xadd("bench-stream", {"m": payload})
    read = 0
    cursor = "0-0"
    while read < messages:
        entries = await redis.xread({"bench-stream": cursor}, count=1000)
        batch_entries = next(iter(entries.values()))
        read += len(batch_entries)
        cursor = batch_entries[-1].identifier
    result["stream_items_per_s"] = messages * batch / (common.now() - started)
    await redis.delete(["bench-stream"])
    return result


async def _locked(redis: coredis.Redis[str], members: int, inputs: int) -> dict[str, float]:
    machine: SignalingServerProtocol[str] = SignalingServerProtocol()
    for index in range(members):
        machine.client_connected(f"i/{index}")
        machine.receive(f"i/{index}", Knock(subnet="10.0.0"))
    await redis.set("bench-subnet", json.dumps(snapshot_subnet(machine, "10.0.0")))
    times = []
    for index in range(inputs):
        started = common.now()
        taken = await redis.set("bench-lock", "me", condition=coredis.PureToken.NX, px=5000)
        assert taken
        text = await redis.get("bench-subnet")
        assert text is not None
        fresh: SignalingServerProtocol[str] = SignalingServerProtocol()
        restore_subnet(fresh, json.loads(text))
        member = index % members
        fresh.receive(
            f"i/{member}", Bind(id=f"10.0.0.{member + 1}", alias=f"10.0.0.{member + 1}:{index}")
        )
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set("bench-subnet", json.dumps(snapshot_subnet(fresh, "10.0.0")))
            pipe.delete(["bench-lock"])
        times.append(common.now() - started)
    return {
        "locked_input_ms": 1e3 * statistics.median(times),
        "locked_inputs_per_s": 1 / statistics.median(times),
    }


async def _main(url: str, args: argparse.Namespace) -> dict[str, float]:
    redis = coredis.Redis.from_url(url, decode_responses=True)
    async with redis:
        result = await _pubsub(redis, args.rounds, args.messages, args.batch)
        result |= await _streams(redis, args.rounds, args.messages, args.batch)
        result |= await _locked(redis, args.members, args.rounds)
    return result


def main() -> None:
    """Measure the designs and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--rounds", type=int, default=500, help="one-at-a-time rounds (500)")
    parser.add_argument("--messages", type=int, default=20_000, help="batched messages (20000)")
    parser.add_argument("--batch", type=int, default=10, help="items per message (10)")
    parser.add_argument("--members", type=int, default=254, help="members of the subnet (254)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.messages, args.members = 20, 200, 8
    print(common.machine_summary())
    with running_redis() as redis:
        values = trio.run(_main, redis.url, args)
    for key, value in values.items():
        print(f"{key}: {value:.3f}")


if __name__ == "__main__":
    main()
