"""Join time, memory and links per node against subnet size, eager full mesh and lazy links.

Each measurement runs in a fresh child process: ``N`` nodes (WebRTC on
loopback) join one subnet of an in-process signaling server, one after the
other; the join time is until the last node joined *and* every link the
server's greetings started is connected (eager) or, lazy, until the last
node joined (no link is made until a node connects). Then the peak RSS of
the process divided by ``N`` (memory per node; the signaling server's share
included), and the links per node. Eager sizes stop at 30 nodes: 100 nodes
are 4,950 peer connections (issue 16 saw 0 of 20 streams set up there).

Run: ``.venv/bin/python -m benchmarks.overlay_links [--quick]``.
Figures go to docs/benchmarks.md ("Overlay recovery").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
#: Only a bound against hangs.
HANG = 900.0


def _connected(node: object) -> int:
    """How many of ``node``'s peer links are connected."""
    from unisockets.transport.webrtc_link import LinkState

    links = node.transport.links.values()  # type: ignore[attr-defined]
    return sum(link.state is LinkState.CONNECTED for link in links)


async def child(mode: str, count: int) -> dict[str, float]:
    import unisockets.net as net
    from unisockets.net.overlay import OverlayNode
    from unisockets.signaling.server import open_signaling_server

    lazy = mode == "lazy"
    with trio.fail_after(HANG):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            AsyncExitStack() as stack,
        ):
            started = time.perf_counter()
            nodes = []
            for _ in range(count):
                node = await stack.enter_async_context(
                    net.open_node(server.url, ice_addresses=["127.0.0.1"], lazy_links=lazy)
                )
                assert isinstance(node, OverlayNode)
                nodes.append(node)
            if not lazy:  # every greeting's link up (polled: a benchmark, not a test)
                while any(_connected(node) < count - 1 for node in nodes):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            took = time.perf_counter() - started
            links = sum(len(node.transport.links) for node in nodes) / count  # type: ignore[attr-defined]
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            return {"seconds": took, "mib_per_node": rss / count / 2**20, "links": links}


def main(quick: bool) -> None:
    runs = (
        [("eager", 10), ("lazy", 10)]
        if quick
        else [("eager", 10), ("eager", 30), ("lazy", 10), ("lazy", 100), ("lazy", 200)]
    )
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("| links | nodes | join time (s) | peak RSS per node (MiB) | links per node |")
    print("| --- | --- | --- | --- | --- |")
    for mode, count in runs:
        out = (
            subprocess.run(
                [sys.executable, "-m", "benchmarks.overlay_links", "--child", mode, str(count)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        r = json.loads(out)
        print(
            f"| {mode} | {count} | {r['seconds']:.1f} | {r['mib_per_node']:.1f} |"
            f" {r['links']:.1f} |",
            flush=True,
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(trio.run(child, args.child[0], int(args.child[1]))))
    else:
        main(args.quick)
