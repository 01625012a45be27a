"""The asyncio driver over aiortc against raw aiortc: bulk MB/s and echo round trip, one run.

Both sides of each measurement run in one process and one asyncio loop
(``asyncio.run``), or the answering side in a child process (``--processes
2``, the default runs both layouts), on loopback ICE:

- ``aiortc``: raw aiortc data channels (:mod:`benchmarks.raw_aiortc`: no
  unisockets layer on the data path);
- ``asyncio``: :func:`unisockets.open_node` under asyncio, i.e. the asyncio
  driver (:mod:`unisockets.aio`) with aiortc in this loop: two nodes on a real
  signaling server (``unisockets signaling-server`` in a child process, so no
  trio runs here), a listener serving like
  :func:`benchmarks.streams.serve_connection` and a client stream;
- ``native``: the same with ``webrtc_backend="native"`` (str0m driven by a
  task of each node, :mod:`unisockets.aio.native_rtc`).

The targets are the issue's: bulk >= 0.9x raw, echo round trip <= 1.2x raw
(there is no thread hand-off left to pay). Every wait on a link is bounded by
``common.LINK_TIMEOUT`` (a dead link fails the run instead of hanging it).
Run: ``python -m benchmarks.asyncio_driver [--quick] [--repeat N] [--size MiB]``.
The child (``--child '{"url": ...}'``) runs the serving node and prints
``{"ready": {"host": ..., "port": ...}}``; it serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio

from . import common, raw_aiortc

BACKENDS = ("asyncio", "native", "aiortc")
LABELS = {
    "asyncio": "unisockets asyncio driver",
    "native": "unisockets asyncio driver, str0m",
    "aiortc": "aiortc data channel (raw)",
}
PAIRS = (("asyncio", "aiortc"), ("native", "asyncio"))
PORT = 5000
CHUNK = 16 * 1024


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=float, default=32, help="MiB of bulk data (default 32)")
    parser.add_argument("--count", type=int, default=400, help="timed echoes (default 400)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed echoes first")
    parser.add_argument("--message", type=int, default=100, help="echo message bytes (100)")


# ---- ours ---------------------------------------------------------------------------------


@asynccontextmanager
async def _signaling_server() -> AsyncIterator[str]:
    """``unisockets signaling-server`` on 127.0.0.1 in a child process; yields its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "unisockets",
        "signaling-server",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=common.ROOT,
    )
    try:
        assert process.stdout is not None
        line = await common.link_wait(process.stdout.readline(), "the signaling server's URL")
        yield line.decode().split()[0]
    finally:
        process.terminate()
        await common.link_wait(process.wait(), "the signaling server to exit")


async def _serve(stream: Any) -> None:
    """Sink (``b"s"`` + 8-byte length, answered with ``b"k"``) or echo (``b"e"``)."""
    async with stream:
        first = await stream.receive(9)
        if first[:1] == b"s":
            remaining = int.from_bytes(first[1:9], "big") - (len(first) - 9)
            while remaining > 0:
                remaining -= len(await stream.receive())
            await stream.send(b"k")
        else:
            if first[1:]:
                await stream.send(first[1:])
            try:
                while True:
                    await stream.send(await stream.receive())
            except anyio.EndOfStream:
                pass


@asynccontextmanager
async def _serving_node(url: str, backend: str) -> AsyncIterator[tuple[str, int]]:
    """A node on ``backend`` ("asyncio": aiortc) serving on :data:`PORT`; yields its address."""
    import unisockets

    async with (
        unisockets.open_node(url, **_node_options(backend)) as server,
        server.listen(PORT) as listener,
        anyio.create_task_group() as group,
    ):

        async def accept() -> None:
            while True:
                group.start_soon(_serve, await listener.accept())

        group.start_soon(accept)
        yield (server.address, PORT)
        group.cancel_scope.cancel()


def _node_options(backend: str) -> dict[str, Any]:
    backend = "native" if backend == "native" else "aiortc"
    return {"ice_addresses": ["127.0.0.1"], "webrtc_backend": backend}


@asynccontextmanager
async def _ours(processes: int, backend: str) -> AsyncIterator[Any]:
    """A serving node (here or in a child) and a client node here; yields a client stream."""
    import unisockets

    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(_signaling_server())
        if processes == 1:
            address = await stack.enter_async_context(_serving_node(url, backend))
        else:
            child = await stack.enter_async_context(
                common.open_asyncio_child(
                    "benchmarks.asyncio_driver", {"url": url, "backend": backend}
                )
            )
            ready = await common.link_wait(child.receive(), "the child's node")
            address = (ready["ready"]["host"], ready["ready"]["port"])
        client = await stack.enter_async_context(
            unisockets.open_node(url, **_node_options(backend))
        )
        stream = await common.link_wait(client.connect(address), "a connection")
        try:
            yield stream
        finally:
            await stream.aclose()


async def _child_main(params: dict[str, Any]) -> None:
    """The child: serve until the parent closes our stdin."""
    parent = await common.AsyncioParent.open()
    async with _serving_node(params["url"], params["backend"]) as (host, port):
        parent.send({"ready": {"host": host, "port": port}})
        while await parent.receive() is not None:
            pass


async def _receive_exactly(stream: Any, size: int) -> None:
    received = 0
    while received < size:
        received += len(await common.link_wait(stream.receive(), "echoed bytes"))


async def _ours_bulk(processes: int, total: int, backend: str) -> float:
    async with _ours(processes, backend) as stream:
        await stream.send(b"s" + total.to_bytes(8, "big"))
        payload = os.urandom(CHUNK)
        started = common.now()
        for _ in range(total // CHUNK):
            await common.link_wait(stream.send(payload), "credit to send")
        await _receive_exactly(stream, 1)
        return common.now() - started


async def _ours_rtt(
    processes: int, count: int, warmup: int, size: int, backend: str
) -> list[float]:
    async with _ours(processes, backend) as stream:
        await stream.send(b"e")
        message = b"x" * size
        times = []
        for index in range(warmup + count):
            started = common.now()
            await stream.send(message)
            await _receive_exactly(stream, size)
            if index >= warmup:
                times.append(common.now() - started)
        return times


# ---- raw aiortc ---------------------------------------------------------------------------


@asynccontextmanager
async def _raw_answerer(processes: int) -> AsyncIterator[raw_aiortc.AnswerFn]:
    if processes == 1:
        async with raw_aiortc.open_answerer() as answer:
            yield answer
    else:
        async with raw_aiortc.open_remote_answerer() as (answer, _):
            yield answer


async def _raw_bulk(processes: int, total: int) -> float:
    async with _raw_answerer(processes) as answer:
        pc, channel = await raw_aiortc.open_link(answer)
        try:
            await channel.send(b"s" + total.to_bytes(8, "big"))
            payload = os.urandom(CHUNK)
            started = common.now()
            for _ in range(total // CHUNK):
                await channel.send(payload)
            await channel.receive_bytes(1)
            return common.now() - started
        finally:
            await pc.close()


async def _raw_rtt(processes: int, count: int, warmup: int, size: int) -> list[float]:
    async with _raw_answerer(processes) as answer:
        pc, channel = await raw_aiortc.open_link(answer)
        try:
            await channel.send(b"e")
            message = b"x" * size
            times = []
            for index in range(warmup + count):
                started = common.now()
                await channel.send(message)
                await channel.receive_bytes(size)
                if index >= warmup:
                    times.append(common.now() - started)
            return times
        finally:
            await pc.close()


def main() -> None:
    """Run the comparison and print the tables (exit 1 if a measurement failed)."""
    args = common.parse_args(__doc__.splitlines()[0], BACKENDS, extra=_options)
    if args.child is not None:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        asyncio.run(_child_main(args.child))
        return
    if args.quick:
        args.size, args.count, args.warmup = 2, 50, 5
    total = int(args.size * common.MIB) // CHUNK * CHUNK
    title = (
        f"asyncio driver vs raw aiortc: {total / common.MIB:g} MiB bulk in "
        f"{CHUNK // 1024} KiB writes, {args.count} echoes of {args.message} B"
    )
    common.print_header(title, args)
    reports = {
        "throughput": common.Report(
            f"{title}: bulk throughput",
            "MB/s",
            higher_is_better=True,
            labels=LABELS,
            pairs=PAIRS,
            targets={"asyncio": (0.9, ">= 0.9x raw aiortc")},
        ),
        "median": common.Report(
            f"{title}: echo round trip median",
            "us",
            higher_is_better=False,
            labels=LABELS,
            pairs=PAIRS,
            targets={"asyncio": (1.2, "<= 1.2x raw aiortc")},
        ),
        "p99": common.Report(
            f"{title}: echo round trip p99",
            "us",
            higher_is_better=False,
            labels=LABELS,
            pairs=PAIRS,
        ),
    }

    def measure(backend: str, processes: int) -> dict[str, float]:
        if backend == "aiortc":
            seconds = raw_aiortc.run(_raw_bulk, processes, total)
            times = raw_aiortc.run(_raw_rtt, processes, args.count, args.warmup, args.message)
        else:
            seconds = raw_aiortc.run(_ours_bulk, processes, total, backend)
            times = raw_aiortc.run(
                _ours_rtt, processes, args.count, args.warmup, args.message, backend
            )
        return {
            "throughput": total / seconds / common.MB,
            "median": 1e6 * common.median(times),
            "p99": 1e6 * common.percentile(times, 99),
        }

    failures = common.run_matrix(args, reports, measure)
    common.finish("asyncio_driver", args, reports.values(), failures)


if __name__ == "__main__":
    main()
