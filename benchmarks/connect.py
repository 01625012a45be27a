"""Connect latency: ``connect()`` until the first echoed byte, warm and cold, median of 20.

- *warm*: the peer link is already up (one connection was made and closed
  before); each sample opens a new connection (a new data channel) on it.
- *cold*: no peer link yet. For unisockets over WebRTC each sample joins a
  fresh client node (untimed), then times ``node.connect()`` to the echo byte,
  peer link set-up included. For raw aiortc each sample sets up a new peer
  connection (offer, answer, ICE, DTLS, SCTP) and its first channel: this is
  the "raw link setup" the cold target compares with.
- TCP has no link: every connect is alike; its figure is printed in both tables.

Run: ``.venv/bin/python -m benchmarks.connect [--quick] [--samples N]``.
"""

from __future__ import annotations

import argparse
from contextlib import AsyncExitStack
from typing import Any

import trio

from . import common, raw_aiortc, streams

BACKENDS = ("tcp", "native", "aiortc", "webrtc", "str0m")
#: Seconds one measurement (all its samples) may take before it counts as hung.
HANG = 600


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=20, help="connects per run (20)")


async def _first_echo(client: streams.Client) -> float:
    """Time one connect until the first echoed byte; close the connection after."""
    started = common.now()
    stream = await client.connect()
    async with stream:
        await stream.send_all(b"e!")
        await streams.receive_exactly(stream, 1)
        took = common.now() - started
        await stream.send_eof()
    return took


async def _trio_connect(backend: str, processes: int, samples: int) -> dict[str, list[float]]:
    with trio.fail_after(HANG):
        async with AsyncExitStack() as stack:
            url = None
            if backend in streams.OVERLAY_BACKENDS:
                url = await stack.enter_async_context(streams.open_signaling())
            info: dict[str, Any]
            if processes == 1:
                info = await stack.enter_async_context(streams.open_server(backend, url=url))
            else:
                info, _ = await stack.enter_async_context(
                    streams.open_remote_server(backend, url=url)
                )
            warm: list[float] = []
            cold: list[float] = []
            async with streams.open_client(backend, info) as client:
                await _first_echo(client)  # brings the peer link up
                for _ in range(samples):
                    warm.append(await _first_echo(client))
            if backend not in streams.OVERLAY_BACKENDS:
                return {"warm": warm, "cold": warm}
            for _ in range(samples):
                async with streams.open_client(backend, info) as client:
                    cold.append(await _first_echo(client))
            return {"warm": warm, "cold": cold}


async def _aiortc_first_echo(channel: raw_aiortc.Channel) -> None:
    await channel.send(b"e")
    await channel.send(b"!")
    await channel.receive()


async def _aiortc_connect(processes: int, samples: int) -> dict[str, list[float]]:
    async with AsyncExitStack() as stack:
        if processes == 1:
            answer = await stack.enter_async_context(raw_aiortc.open_answerer())
        else:
            answer, _ = await stack.enter_async_context(raw_aiortc.open_remote_answerer())
        cold: list[float] = []
        for _ in range(samples):
            started = common.now()
            pc, channel = await raw_aiortc.open_link(answer)
            await _aiortc_first_echo(channel)
            cold.append(common.now() - started)
            await pc.close()
        warm: list[float] = []
        pc, _boot = await raw_aiortc.open_link(answer)
        try:
            for index in range(samples):
                started = common.now()
                channel = await raw_aiortc.open_channel(pc, f"c{index}")
                await _aiortc_first_echo(channel)
                warm.append(common.now() - started)
                channel.close()
        finally:
            await pc.close()
        return {"warm": warm, "cold": cold}


def main() -> None:
    """Run the connect-latency benchmark."""
    args = common.parse_args(__doc__.splitlines()[0], BACKENDS, extra=_options)
    if args.quick:
        args.samples = 3
    common.print_header(f"connect latency, median of {args.samples} connects", args)
    reports = {
        "warm": common.Report(
            "connect until first echoed byte, peer link up (warm)",
            "ms",
            higher_is_better=False,
            labels=streams.LABELS,
            pairs=streams.PAIRS,
            targets={"webrtc": (5.0, "abs <= 5 ms")},
        ),
        "cold": common.Report(
            "connect until first echoed byte, no peer link yet (cold)",
            "ms",
            higher_is_better=False,
            labels=streams.LABELS,
            pairs=streams.PAIRS,
            targets={"webrtc": (2.0, "<= 2x raw link setup")},
        ),
    }

    def measure(backend: str, processes: int) -> dict[str, float]:
        if backend == "aiortc":
            times = raw_aiortc.run(_aiortc_connect, processes, args.samples)
        else:
            times = trio.run(_trio_connect, backend, processes, args.samples)
        return {key: 1e3 * common.median(values) for key, values in times.items()}

    failures = common.run_matrix(args, reports, measure)
    common.finish("connect", args, reports.values(), failures)


if __name__ == "__main__":
    main()
