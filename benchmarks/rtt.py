"""Echo round trip of 100-byte messages: median and p99 in microseconds.

One connection; the client sends a message, waits until all of it came back,
and times that, ``--count`` times (default 2,000) after ``--warmup`` untimed
round trips. Run: ``.venv/bin/python -m benchmarks.rtt [--quick]``.
"""

from __future__ import annotations

import argparse
from contextlib import AsyncExitStack

import trio

from . import common, raw_aiortc, streams

BACKENDS = ("tcp", "native", "aiortc", "webrtc", "str0m")
#: Seconds one measurement may take before it counts as hung.
HANG = 600


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=2000, help="timed round trips (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed round trips first (200)")
    parser.add_argument("--size", type=int, default=100, help="message size in bytes (100)")


async def _trio_rtt(
    backend: str, processes: int, count: int, warmup: int, size: int
) -> list[float]:
    with trio.fail_after(HANG):
        async with AsyncExitStack() as stack:
            url = None
            if backend in streams.OVERLAY_BACKENDS:
                url = await stack.enter_async_context(streams.open_signaling())
            if processes == 1:
                info = await stack.enter_async_context(streams.open_server(backend, url=url))
            else:
                info, _ = await stack.enter_async_context(
                    streams.open_remote_server(backend, url=url)
                )
            client = await stack.enter_async_context(streams.open_client(backend, info))
            stream = await client.connect()
            async with stream:
                await stream.send_all(b"e")
                message = (b"x" * size)[:size]
                times = []
                for index in range(warmup + count):
                    started = common.now()
                    await stream.send_all(message)
                    await streams.receive_exactly(stream, size)
                    if index >= warmup:
                        times.append(common.now() - started)
                return times


async def _aiortc_rtt(processes: int, count: int, warmup: int, size: int) -> list[float]:
    async with AsyncExitStack() as stack:
        if processes == 1:
            answer = await stack.enter_async_context(raw_aiortc.open_answerer())
        else:
            answer, _ = await stack.enter_async_context(raw_aiortc.open_remote_answerer())
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
    """Run the round-trip benchmark."""
    args = common.parse_args(__doc__.splitlines()[0], BACKENDS, extra=_options)
    if args.quick:
        args.count, args.warmup = 50, 5
    title = f"echo round trip of {args.size}-byte messages, {args.count} timed"
    common.print_header(title, args)
    reports = {
        key: common.Report(
            f"{title}: {key}",
            "us",
            higher_is_better=False,
            labels=streams.LABELS,
            pairs=streams.PAIRS,
            targets={"webrtc": (1.2, "<= 1.2x raw aiortc")} if key == "median" else {},
        )
        for key in ("median", "p99")
    }

    def measure(backend: str, processes: int) -> dict[str, float]:
        if backend == "aiortc":
            times = raw_aiortc.run(_aiortc_rtt, processes, args.count, args.warmup, args.size)
        else:
            times = trio.run(_trio_rtt, backend, processes, args.count, args.warmup, args.size)
        return {
            "median": 1e6 * common.median(times),
            "p99": 1e6 * common.percentile(times, 99),
        }

    failures = common.run_matrix(args, reports, measure)
    common.finish("rtt", args, reports.values(), failures)


if __name__ == "__main__":
    main()
