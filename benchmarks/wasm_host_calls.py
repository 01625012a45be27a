"""WebAssembly guests: host-call overhead and echo round trips, against the same work in Python.

Three measurements, each the median of ``--repeats`` runs (spread printed):

1. ``bare call``: a guest calling ``unisockets_errno()`` (an import that does
   not cross into trio) in a loop: the wasmtime-py host-call cost, µs/call.
2. ``send+recv pair, native``: a guest sending one byte and receiving its
   echo, ``--pairs`` times, over OS TCP on loopback to an in-process Python
   echo server; then a trio task doing the same on the same node. The
   difference per pair is what the guest's two host calls (each a
   :func:`trio.from_thread.run` round trip) add.
3. ``echo RTT, webrtc``: the same ping-pong over a real WebRTC data channel
   between two overlay nodes of one process (signaling server on loopback),
   guest vs Python.

The guest measures its own loop with ``clock_gettime(CLOCK_MONOTONIC)``, so
start-up is not counted; Python's loops are timed with
:func:`time.perf_counter`. Needs the toolchain
(scripts/install-wasm-toolchain.sh). Run from the repository root:
``.venv/bin/python -m benchmarks.wasm_host_calls [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from unisockets import net
from unisockets.wasm import WasmProgram, run_wasm

ROOT = Path(__file__).resolve().parents[1]

#: The guest: ``bench calls N`` or ``bench pingpong HOST PORT N``; prints elapsed ns.
GUEST_SOURCE = r"""
#define UNISOCKETS_WITH_ALIAS
#include "unisockets.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((import_module("env"), import_name("unisockets_errno")))
int unisockets_errno(void);

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "calls") == 0) {
    long n = atol(argv[2]);
    volatile int sink = 0;
    long long start = now_ns();
    for (long i = 0; i < n; i++) sink += unisockets_errno();
    printf("%lld\n", now_ns() - start);
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "pingpong") == 0) {
    struct sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)atoi(argv[3]));
    inet_pton(AF_INET, argv[2], &address.sin_addr);
    long n = atol(argv[4]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == -1) {
      perror("connect");
      return 1;
    }
    char byte = 'x';
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
      if (send(fd, &byte, 1, 0) != 1 || recv(fd, &byte, 1, 0) != 1) {
        perror("pingpong");
        return 1;
      }
    }
    printf("%lld\n", now_ns() - start);
    return 0;
  }
  return 2;
}
"""


def build_guest(directory: Path) -> WasmProgram:
    """Compile the benchmark guest with clang-16 and wasmtime."""
    source = directory / "bench.c"
    source.write_text(GUEST_SOURCE)
    output = directory / "bench.wasm"
    subprocess.run(
        [
            "clang-16",
            "--target=wasm32-wasi",
            "-O2",
            "-Wl,--export=errno",
            f"-I{ROOT / 'examples' / 'c'}",
            str(source),
            "-o",
            str(output),
        ],
        check=True,
    )
    return WasmProgram.from_file(output)


async def guest_ns(node: net.Node, program: WasmProgram, *args: str) -> int:
    """Run the guest and return the nanoseconds it printed."""
    out: list[bytes] = []
    status = await run_wasm(node, program, args, stdout=out.append)
    if status != 0:
        raise RuntimeError(f"guest exited with {status}")
    return int(b"".join(out))


async def python_pingpong_ns(node: net.Node, address: tuple[str, int], pairs: int) -> int:
    """The guest's ping-pong, done by a trio task with the node's socket objects."""
    sock = node.socket()
    await sock.connect(address)
    start = time.perf_counter_ns()
    for _ in range(pairs):
        await sock.send(b"x")
        await sock.recv(1)
    elapsed = time.perf_counter_ns() - start
    await sock.aclose()
    return elapsed


async def serve_echo(listener: trio.abc.Listener[net.SocketStream]) -> None:
    async def echo(stream: net.SocketStream) -> None:
        async with stream:
            try:
                while data := await stream.receive_some(65536):
                    await stream.send_all(data)
            except trio.BrokenResourceError:
                pass

    await trio.serve_listeners(echo, [listener])


def report(label: str, samples: list[float], unit: str) -> float:
    median = statistics.median(samples)
    print(f"  {label:<42} {median:9.1f} {unit}  ({min(samples):.1f}..{max(samples):.1f})")
    return median


async def measure(
    repeats: int, run: Callable[[], Awaitable[int]], per: int, scale: float = 1e3
) -> list[float]:
    """Run ``run`` ``repeats`` times; return its ns divided by ``per``, in µs (``scale``)."""
    return [(await run()) / per / scale for _ in range(repeats)]


async def main(quick: bool, repeats: int) -> None:
    calls = 20_000 if quick else 200_000
    pairs = 500 if quick else 5_000
    rtt_pairs = 200 if quick else 1_000
    with tempfile.TemporaryDirectory() as directory:
        program = build_guest(Path(directory))

    print(f"wasm host calls ({repeats} repeats, median (min..max))")
    async with net.open_node(None) as node, trio.open_nursery() as nursery:
        listener = await node.listen(0)
        address = listener.address  # type: ignore[attr-defined]
        nursery.start_soon(serve_echo, listener)

        bare = await measure(repeats, lambda: guest_ns(node, program, "calls", str(calls)), calls)
        report("bare call (unisockets_errno)", bare, "µs/call")
        host, port = address[0], str(address[1])
        guest = await measure(
            repeats, lambda: guest_ns(node, program, "pingpong", host, port, str(pairs)), pairs
        )
        python = await measure(repeats, lambda: python_pingpong_ns(node, address, pairs), pairs)
        g = report("send+recv pair, native, guest", guest, "µs/pair")
        p = report("send+recv pair, native, Python", python, "µs/pair")
        print(f"  {'host-call overhead per pair':<42} {g - p:9.1f} µs/pair")
        nursery.cancel_scope.cancel()

    from unisockets.signaling.server import open_signaling_server

    async with (
        open_signaling_server(host="127.0.0.1", port=0) as server,
        net.open_node(server.url, ice_addresses=["127.0.0.1"]) as server_node,
        net.open_node(server.url, ice_addresses=["127.0.0.1"]) as client_node,
        trio.open_nursery() as nursery,
    ):
        listener = await server_node.listen(7000)
        nursery.start_soon(serve_echo, listener)
        guest = await measure(
            repeats,
            lambda: guest_ns(
                client_node, program, "pingpong", server_node.address, "7000", str(rtt_pairs)
            ),
            rtt_pairs,
        )
        python = await measure(
            repeats,
            lambda: python_pingpong_ns(client_node, (server_node.address, 7000), rtt_pairs),
            rtt_pairs,
        )
        g = report("echo RTT, webrtc, guest", guest, "µs")
        p = report("echo RTT, webrtc, Python", python, "µs")
        print(f"  {'guest / Python':<42} {g / p:9.2f} x")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    trio.run(main, options.quick, options.repeats)
