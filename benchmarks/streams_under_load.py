"""Do 1,000 concurrent streams survive a busy CPU? Survivors and time, with and without a hog.

The issue "An overlay that holds" measured, under load (a second busy
process), 4 to 147 survivors of 1,000 concurrent streams, the others ending
with "the SCTP association closed" (links declared dead after 4 missed
consent checks at 1 s). This script runs the workload of
:mod:`benchmarks.many_streams` (two nodes in two processes, 1,000 streams
opened at once, each echoing 64 KiB), but counts what survives instead of
stopping at the first failure: a stream survives when its whole echo came
back and it closed cleanly. Each run is measured twice in fresh processes:
on the machine as it is, then with ``--hogs`` CPU-bound processes spinning
in pure Python beside both nodes (two by default, the cores of a CI machine).

Printed per run: survivors of N, the total time from the first connect to
the last stream done, and the failures by reason. A stream still running
after ``--bound`` seconds counts as hung (not a survivor).

Run: ``.venv/bin/python -m benchmarks.streams_under_load [--quick] [--streams N]
[--hogs 2] [--repeat 1] [--backend webrtc|str0m]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import replace
from typing import Any

import trio

from . import common, streams
from .many_streams import _one_stream

#: Seconds one measurement may take before the parent gives up on its process.
HANG = 1200
#: A hog's body: spin in pure Python until its parent is gone or it is killed.
_HOG = """
import os, time
parent = os.getppid()
print("spinning", flush=True)
while os.getppid() == parent:
    for _ in range(200_000):
        pass
"""


def _reason(exc: BaseException) -> str:
    """A short, stable name for why a stream failed (its type and the head of its message)."""
    return f"{type(exc).__name__}: {str(exc)[:70]}"


async def _guarded(
    client: streams.Client, size: int, payload: bytes, results: collections.Counter[str]
) -> None:
    try:
        await _one_stream(client, size, payload)
    except Exception as exc:  # counted, not raised: the other streams go on
        results[_reason(exc)] += 1
    else:
        results["ok"] += 1


async def _measure(backend: str, count: int, size: int, rate: float, bound: float) -> Any:
    from unisockets.signaling.limits import ServerLimits

    limits = replace(ServerLimits(max_clients=64), max_messages_per_second=rate, burst=int(rate))
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(streams.open_signaling(limits))
        info, _child = await stack.enter_async_context(
            streams.open_remote_server(backend, url=url, backlog=count)
        )
        client = await stack.enter_async_context(streams.open_client(backend, info))
        warm = await client.connect()  # the peer link is up before the clock starts
        await warm.aclose()
        results: collections.Counter[str] = collections.Counter()
        payload = bytes(size)
        started = common.now()
        with trio.move_on_after(bound):
            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(_guarded, client, size, payload, results)
        took = common.now() - started
        done = sum(results.values())
        if done < count:
            results[f"hung after {bound:g} s"] += count - done
        return {"seconds": took, "survivors": results.pop("ok", 0), "failures": dict(results)}


@contextmanager
def _hogs(count: int) -> Iterator[None]:
    """Run ``count`` CPU-bound processes for the duration of the block."""
    hogs = [
        subprocess.Popen(
            [sys.executable, "-c", _HOG], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        for _ in range(count)
    ]
    try:
        for hog in hogs:
            assert hog.stdout is not None
            hog.stdout.readline()  # "spinning"
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams (1000)")
    parser.add_argument("--echo", type=int, default=64, help="KiB each stream echoes (64)")
    parser.add_argument("--hogs", type=int, default=2, help="CPU-bound processes (2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each load (1)")
    parser.add_argument("--backend", choices=streams.OVERLAY_BACKENDS, default="webrtc")
    parser.add_argument(
        "--bound", type=float, default=600.0, help="seconds before a stream counts as hung"
    )
    parser.add_argument(
        "--signaling-rate", type=float, default=10_000, help="messages/s per client (10000)"
    )
    parser.add_argument("--hogged-only", action="store_true", help="only the run with the hogs")
    parser.add_argument("--quick", action="store_true", help="10 streams of 4 KiB")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    """Run the benchmark (or, with ``--child``, one measurement in this process)."""
    args = _options()
    if args.child is not None:
        params = json.loads(args.child)
        common.raise_fd_limit(20000)
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        result = trio.run(
            _measure,
            params["backend"],
            params["streams"],
            params["size"],
            params["rate"],
            params["bound"],
        )
        print(json.dumps(result), flush=True)
        return
    if args.quick:
        args.streams, args.echo = 10, 4
    title = f"{args.streams} concurrent streams each echoing {args.echo} KiB ({args.backend})"
    print(f"== {title}, with and without {args.hogs} CPU hog(s)", flush=True)
    print(f"   {common.machine_summary()}", flush=True)
    params = {
        "backend": args.backend,
        "streams": args.streams,
        "size": args.echo * 1024,
        "rate": args.signaling_rate,
        "bound": args.bound,
    }
    failed = 0
    print("| load | run | survivors | time (s) | failures |", flush=True)
    print("| --- | --- | --- | --- | --- |", flush=True)
    for run in range(1, args.repeat + 1):
        for hogs in (args.hogs,) if args.hogged_only else (0, args.hogs):
            command = common.child_command("benchmarks.streams_under_load", params)
            started = time.perf_counter()
            with _hogs(hogs):
                done = subprocess.run(
                    command,
                    cwd=common.ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                    timeout=HANG,
                    check=False,
                )
            load = f"{hogs} hog(s)" if hogs else "no hog"
            if done.returncode != 0:
                failed += 1
                print(f"| {load} | {run} | n/a | n/a | process exited {done.returncode} |")
                continue
            result = json.loads(done.stdout.splitlines()[-1])
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(result["failures"].items()))
            print(
                f"| {load} | {run} | {result['survivors']} / {args.streams} "
                f"| {result['seconds']:.1f} | {reasons or 'none'} |",
                flush=True,
            )
            logging.getLogger("benchmarks").debug("took %.1f s", time.perf_counter() - started)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
