"""Many connections: 1,000 concurrent streams between two nodes, each echoing 64 KiB.

All streams are opened at once; each sends 64 KiB (in 16 KiB writes) and
reads it back while sending, then closes. Reported: the total time from the
first connect to the last stream done, and the peak RSS of each process
during the run (each measurement runs in fresh processes, and the peak is
reset just before the clock starts; the one-process figure holds both sides).
For unisockets over WebRTC the two nodes are linked before the clock starts,
so it compares with raw aiortc opening as many data channels on one peer
connection.

Each connect and each close is a signaling message, so 1,000 streams at once
exceed the signaling server's default per-client limit (100 messages/s, burst
500) and the server disconnects the node (close 1008); the embedded server is
therefore started with ``--signaling-rate`` (default 10,000/s) for this run.

Run: ``.venv/bin/python -m benchmarks.many_streams [--quick] [--streams N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import trio

from . import common, raw_aiortc, streams

BACKENDS = ("tcp", "native", "aiortc", "webrtc", "str0m")
#: Seconds one measurement may take before it counts as hung.
HANG = 900
#: Bytes per write.
CHUNK = 16 * 1024


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams (1000)")
    parser.add_argument("--echo", type=int, default=64, help="KiB each stream echoes (64)")
    parser.add_argument(
        "--signaling-rate",
        type=float,
        default=10_000,
        help="messages/s (and burst) per client the signaling server allows (10000); "
        "0 keeps the server's defaults (100/s, burst 500), under which 1,000 connects "
        "at once get the node disconnected",
    )


async def _one_stream(client: streams.Client, size: int, payload: bytes) -> None:
    stream = await client.connect()
    async with stream:
        await stream.send_all(b"e")

        async def send() -> None:
            view = memoryview(payload)  # slices without copies
            for offset in range(0, size, CHUNK):
                await stream.send_all(view[offset : offset + CHUNK])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            received = 0  # counted, not kept: RSS then measures the stack, not this test
            while received < size:
                chunk = await stream.receive_some(CHUNK)
                if not chunk:
                    raise EOFError(f"echo ended after {received} of {size} bytes")
                received += len(chunk)
        await stream.send_eof()


async def _trio_many(
    backend: str, processes: int, count: int, size: int, rate: float | None
) -> dict[str, float]:
    with trio.fail_after(HANG):
        async with AsyncExitStack() as stack:
            url = None
            if backend in streams.OVERLAY_BACKENDS:
                from unisockets.signaling.limits import ServerLimits

                limits = ServerLimits(max_clients=64)
                if rate:
                    limits = replace(limits, max_messages_per_second=rate, burst=int(rate))
                url = await stack.enter_async_context(streams.open_signaling(limits))
            child = None
            if processes == 1:
                info = await stack.enter_async_context(
                    streams.open_server(backend, url=url, backlog=count)
                )
            else:
                info, child = await stack.enter_async_context(
                    streams.open_remote_server(backend, url=url, backlog=count)
                )
            client = await stack.enter_async_context(streams.open_client(backend, info))
            if backend in streams.OVERLAY_BACKENDS:
                stream = await client.connect()  # the peer link is up before the clock starts
                await stream.aclose()
            payload = bytes(size)
            if child is not None:
                await child.send({"reset_peak_rss": True})
                await child.receive()
            common.reset_peak_rss()
            before = common.rss()
            started = common.now()
            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(_one_stream, client, size, payload)
            took = common.now() - started
            result = {"seconds": took, "rss_here": common.peak_rss() / common.MIB}
            result["growth_per_stream"] = (common.peak_rss() - before) / 1024 / count
            if child is not None:
                result["rss_child"] = await streams.child_peak_rss(child) / common.MIB
            return result


async def _aiortc_one(pc: Any, index: int, size: int, payload: bytes) -> None:
    channel = await raw_aiortc.open_channel(pc, f"s{index}")
    await channel.send(b"e")
    for offset in range(0, size, CHUNK):
        await channel.send(payload[offset : offset + CHUNK])
    await channel.receive_bytes(size)
    channel.close()


async def _aiortc_many(processes: int, count: int, size: int) -> dict[str, float]:
    import asyncio

    async with AsyncExitStack() as stack:
        child = None
        if processes == 1:
            answer = await stack.enter_async_context(raw_aiortc.open_answerer())
        else:
            answer, child = await stack.enter_async_context(raw_aiortc.open_remote_answerer())
        pc, _boot = await raw_aiortc.open_link(answer)
        try:
            payload = bytes(size)
            if child is not None:
                await child.send({"reset_peak_rss": True})
                await common.link_wait(child.receive(), "the child to reset its peak RSS")
            common.reset_peak_rss()
            before = common.rss()
            started = common.now()
            await asyncio.gather(*(_aiortc_one(pc, i, size, payload) for i in range(count)))
            took = common.now() - started
            result = {"seconds": took, "rss_here": common.peak_rss() / common.MIB}
            result["growth_per_stream"] = (common.peak_rss() - before) / 1024 / count
            if child is not None:
                result["rss_child"] = await raw_aiortc.child_peak_rss(child) / common.MIB
            return result
        finally:
            await pc.close()


def _measure_here(params: dict[str, Any]) -> None:
    """Take one measurement in this (fresh) process; print its result as a JSON line."""
    common.raise_fd_limit(20000)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    backend, processes = params["backend"], params["processes"]
    count, size = params["streams"], params["size"]
    if backend == "aiortc":
        result = raw_aiortc.run(_aiortc_many, processes, count, size)
    else:
        result = trio.run(_trio_many, backend, processes, count, size, params["rate"])
    print(json.dumps(result), flush=True)


def main() -> None:
    """Run the many-connections benchmark."""
    args = common.parse_args(__doc__.splitlines()[0], BACKENDS, extra=_options)
    if args.child is not None:
        _measure_here(args.child)
        return
    if args.quick:
        args.streams, args.echo = 10, 4
    common.raise_fd_limit(20000)
    size = args.echo * 1024
    title = f"{args.streams} concurrent streams each echoing {args.echo} KiB"
    common.print_header(title, args)

    def report(what: str, unit: str) -> common.Report:
        return common.Report(
            f"{title}: {what}",
            unit,
            higher_is_better=False,
            labels=streams.LABELS,
            pairs=streams.PAIRS,
        )

    reports = {
        "seconds": report("total time", "s"),
        "rss_here": report("peak RSS of the connecting process (both sides in 1p)", "MiB"),
        "rss_child": report("peak RSS of the accepting process", "MiB"),
        "growth_per_stream": report("RSS growth per stream, connecting process", "KiB"),
    }

    def measure(backend: str, processes: int) -> dict[str, float]:
        # A fresh process per measurement: peak RSS then owes nothing to earlier runs.
        params = {
            "backend": backend,
            "processes": processes,
            "streams": args.streams,
            "size": size,
            "rate": args.signaling_rate,
        }
        command = common.child_command("benchmarks.many_streams", params)
        done = subprocess.run(
            command, cwd=common.ROOT, stdout=subprocess.PIPE, text=True, timeout=HANG, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"measuring process exited with {done.returncode}")
        result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
        return result

    failures = common.run_matrix(args, reports, measure)
    common.finish("many_streams", args, reports.values(), failures)


if __name__ == "__main__":
    main()
