"""How fast the overlay notices a dead peer, and recovers from a signaling server kill -9.

- *dead peer*: a node in a child process serves an echo stream; the child
  is killed with SIGKILL; timed from the kill until the stream's next
  ``receive_some`` raises (the server's goodbye, then the link's probe that
  nobody answers: docs/protocol.md, "Goodbye is not death"). Median and
  spread of ``--samples`` runs.
- *server restart*: ``--nodes`` nodes (WebRTC on loopback, one process, in
  subnets of 10) listen; the signaling server process (``--rejoin-grace 5``)
  is killed with SIGKILL and started again on the same port; timed from the
  kill until every node accepts on its listener again (a connect to itself
  succeeds), and how many nodes kept their id.

Run: ``.venv/bin/python -m benchmarks.overlay_recovery [--samples 5] [--nodes 40] [--quick]``.
Figures go to docs/benchmarks.md ("Overlay recovery").
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio

import unisockets.net as net

ROOT = Path(__file__).resolve().parents[1]
#: Only a bound against hangs.
HANG = 300.0

_CHILD = """
import sys, trio
import unisockets.net as net

async def echo(stream):
    async with stream:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)

async def main(url):
    async with net.open_node(url, ice_addresses=["127.0.0.1"]) as node, node.listen(7) as lis:
        print(node.address, flush=True)
        await trio.serve_listeners(echo, [lis])

trio.run(main, sys.argv[1])
"""


async def _line(stream: trio.abc.ReceiveStream) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            raise EOFError(f"the child ended: {data!r}")
        data += chunk
    return data.decode().strip()


async def start_server(port: int = 0) -> tuple[trio.Process, str]:
    """A signaling server process on 127.0.0.1 with a 5 s rejoin grace; its URL."""
    process = await trio.lowlevel.open_process(
        [
            *(sys.executable, "-m", "unisockets", "signaling-server", "--host", "127.0.0.1"),
            *("--port", str(port), "--rejoin-grace", "5", "--log-level", "error"),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None
    return process, await _line(process.stdout)


async def dead_peer(url: str) -> float:
    """Seconds from SIGKILL of an echo node to its stream breaking."""
    child = await trio.lowlevel.open_process(
        [sys.executable, "-c", _CHILD, url], stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert child.stdout is not None
        address = await _line(child.stdout)
        async with net.open_node(url, ice_addresses=["127.0.0.1"]) as node:
            stream = await node.connect((address, 7))
            await stream.send_all(b"ping")
            assert await stream.receive_some(4) == b"ping"
            killed = time.perf_counter()
            child.send_signal(signal.SIGKILL)
            try:
                await stream.receive_some(4)
            except trio.BrokenResourceError:
                return time.perf_counter() - killed
            raise AssertionError("the stream of a killed peer did not break")
    finally:
        child.kill()
        await child.wait()


async def server_restart(nodes: int) -> tuple[float, int]:
    """Seconds from the server's SIGKILL until every node listens again; ids kept."""
    server, url = await start_server()
    port = int(url.rsplit(":", 1)[1])
    try:
        async with AsyncExitStack() as stack:
            opened = []
            for index in range(nodes):
                node = await stack.enter_async_context(
                    net.open_node(url, f"10.0.{index // 10}", ice_addresses=["127.0.0.1"])
                )
                await stack.enter_async_context(node.listen(7))
                opened.append(node)
            ids = [node.address for node in opened]
            killed = time.perf_counter()
            server.send_signal(signal.SIGKILL)
            await server.wait()
            server, url = await start_server(port)

            async def listening(node: net.Node) -> None:
                while True:
                    try:
                        stream = await node.connect((node.address, 7))
                    except ConnectionRefusedError:
                        continue
                    await stream.aclose()
                    return

            async with trio.open_nursery() as nursery:
                for node in opened:
                    nursery.start_soon(listening, node)
            took = time.perf_counter() - killed
            kept = sum(node.address == old for node, old in zip(opened, ids, strict=True))
            return took, kept
    finally:
        server.kill()
        await server.wait()


async def main(samples: int, nodes: int) -> None:
    print(f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    with trio.fail_after(HANG):
        server, url = await start_server()
        try:
            times = [await dead_peer(url) for _ in range(samples)]
        finally:
            server.kill()
            await server.wait()
    print(
        f"dead peer seen after: median {statistics.median(times) * 1000:.0f} ms"
        f" (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}; {samples} runs)"
    )
    with trio.fail_after(HANG):
        took, kept = await server_restart(nodes)
    print(
        f"server kill -9 with {nodes} nodes: every listener serves again after {took:.2f} s;"
        f" {kept} of {nodes} kept their id"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="1 sample, 10 nodes")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.nodes = 1, 10
    trio.run(main, args.samples, args.nodes)
