"""Bulk throughput: 64 MiB one way in 16 KiB writes, in MB/s (10**6 bytes per second).

The client sends a sink header, then the payload in writes of ``--chunk``
bytes; the clock runs from the first write until the server's one-byte
acknowledgement that every byte arrived (one extra round trip, negligible at
this size). Run: ``.venv/bin/python -m benchmarks.bulk [--quick] [--size MiB]``.
"""

from __future__ import annotations

import argparse
import os
from contextlib import AsyncExitStack

import trio

from . import common, raw_aiortc, streams

BACKENDS = ("tcp", "native", "aiortc", "webrtc", "str0m")
#: Seconds one measurement may take before it counts as hung.
HANG = 600


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=float, default=64, help="MiB to send (default 64)")
    parser.add_argument("--chunk", type=int, default=16 * 1024, help="bytes per write (16 KiB)")


def _cpu(pids: list[int | None]) -> float:
    return sum(common.cpu_seconds(pid) for pid in pids)


async def _trio_bulk(backend: str, processes: int, total: int, chunk: int) -> tuple[float, float]:
    with trio.fail_after(HANG):
        async with AsyncExitStack() as stack:
            url = None
            if backend in streams.OVERLAY_BACKENDS:
                url = await stack.enter_async_context(streams.open_signaling())
            pids: list[int | None] = [None]
            if processes == 1:
                info = await stack.enter_async_context(streams.open_server(backend, url=url))
            else:
                info, child = await stack.enter_async_context(
                    streams.open_remote_server(backend, url=url)
                )
                pids.append(child.process.pid)
            client = await stack.enter_async_context(streams.open_client(backend, info))
            stream = await client.connect()
            async with stream:
                await stream.send_all(b"s" + total.to_bytes(8, "big"))
                payload = os.urandom(chunk)
                cpu = _cpu(pids)
                started = common.now()
                for _ in range(total // chunk):
                    await stream.send_all(payload)
                if total % chunk:
                    await stream.send_all(payload[: total % chunk])
                await streams.receive_exactly(stream, 1)
                return common.now() - started, _cpu(pids) - cpu


async def _aiortc_bulk(processes: int, total: int, chunk: int) -> tuple[float, float]:
    async with AsyncExitStack() as stack:
        pids: list[int | None] = [None]
        if processes == 1:
            answer = await stack.enter_async_context(raw_aiortc.open_answerer())
        else:
            answer, child = await stack.enter_async_context(raw_aiortc.open_remote_answerer())
            pids.append(child.process.pid)
        pc, channel = await raw_aiortc.open_link(answer)
        try:
            await channel.send(b"s" + total.to_bytes(8, "big"))
            payload = os.urandom(chunk)
            cpu = _cpu(pids)
            started = common.now()
            for _ in range(total // chunk):
                await channel.send(payload)
            if total % chunk:
                await channel.send(payload[: total % chunk])
            await channel.receive()
            return common.now() - started, _cpu(pids) - cpu
        finally:
            await pc.close()


def main() -> None:
    """Run the bulk throughput benchmark."""
    args = common.parse_args(__doc__.splitlines()[0], BACKENDS, extra=_options)
    if args.quick:
        args.size = 1
    total = int(args.size * common.MIB)
    title = f"bulk throughput, {args.size:g} MiB one way in {args.chunk // 1024} KiB writes"
    common.print_header(title, args)
    report = common.Report(
        title,
        "MB/s",
        higher_is_better=True,
        labels=streams.LABELS,
        pairs=streams.PAIRS,
        targets={"webrtc": (0.9, ">= 0.9x raw aiortc")},
    )
    cpu_report = common.Report(
        f"{title}: CPU time of both sides per MB (robust to a busy machine)",
        "ms/MB",
        higher_is_better=False,
        labels=streams.LABELS,
        pairs=streams.PAIRS,
    )

    def measure(backend: str, processes: int) -> dict[str, float]:
        if backend == "aiortc":
            seconds, cpu = raw_aiortc.run(_aiortc_bulk, processes, total, args.chunk)
        else:
            seconds, cpu = trio.run(_trio_bulk, backend, processes, total, args.chunk)
        return {"throughput": total / seconds / common.MB, "cpu": 1e3 * cpu * common.MB / total}

    reports = {"throughput": report, "cpu": cpu_report}
    failures = common.run_matrix(args, reports, measure)
    common.finish("bulk", args, reports.values(), failures)


if __name__ == "__main__":
    main()
