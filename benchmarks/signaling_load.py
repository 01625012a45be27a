"""Signaling server under load: N nodes join over real WebSockets, then relay candidates.

The server runs alone in a child process (``open_signaling_server`` on
127.0.0.1); this process is the load generator: N lean WebSocket clients
written for it, so that the figures are the server's and not the
generator's (trio-websocket clients cost more CPU per message than the server
does). Each is a non-blocking socket with one reader task that parses every
(unmasked) frame of a read at once and answers pings; what they send are
frames built once (masked with a zero key, RFC 6455 §5.3), the JSON built
with ``unisockets.protocol``; a few sender tasks write them, one frame per
``send``, each driving many clients. For each N (default 100, 1,000, 10,000):

1. *join*: every client opens a WebSocket and knocks, at most
   ``--join-concurrency`` at a time; join latency is TCP connect to
   ``acknowledged``. Subnets hold ``--subnet-size`` members (254 = full), so
   every join also fans out a ``greeting`` to each earlier member of its
   subnet (PROTOCOL.md, "Join"; eager full mesh): the run waits until every
   greeting arrived.
2. *memory*: server RSS now minus its RSS before the first join, per node.
3. *relay*: every client sends ``--relay-total / N`` ``candidate`` messages to
   a partner in its subnet, as fast as the server takes them with at most
   ``--window`` of them in flight (sent, not yet delivered: an open-loop flood
   only fills socket buffers, delays the server's pings beyond its 30 s pong
   deadline and gets clients dropped); relayed messages per second =
   candidates delivered / time until the last arrived.
   The server's CPU use over that time says who was the bottleneck (near 100 %
   of a core: the server).

The server is ``unisockets signaling-server`` (the CLI, as deployed) unless
``--server embedded``. Its per-client rate limit and burst are raised
(``--rate``) and ``--max-clients`` is set to N + 64 so that policy limits do
not cap the measurement; every other limit keeps its default. The load
generator raises its own garbage-collector thresholds so that it does not
become the bottleneck.

Run: ``.venv/bin/python -m benchmarks.signaling_load [--quick] [--nodes 100,1000,10000]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import os
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from unisockets.protocol import Candidate, Knock, encode

from . import common

#: Seconds one N may take before it counts as hung.
HANG = 1800
#: A typical trickled candidate (a JSON RTCIceCandidateInit string, ~150 characters).
CANDIDATE = json.dumps(
    {
        "candidate": "candidate:3442447574 1 udp 2122260223 192.168.1.23 54321 typ host "
        "generation 0 ufrag Xq7u network-id 1",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "Xq7u",
    }
)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", default="100,1000,10000", help="comma list of N")
    parser.add_argument("--subnet-size", type=int, default=254, help="members per subnet (254)")
    parser.add_argument("--join-concurrency", type=int, default=100, help="joins in flight (100)")
    parser.add_argument("--relay-total", type=int, default=200_000, help="candidates to relay")
    parser.add_argument("--senders", type=int, default=50, help="sender tasks (50)")
    parser.add_argument(
        "--window", type=int, default=1000, help="candidates sent and not yet delivered (1000)"
    )
    parser.add_argument("--rate", type=float, default=1e6, help="server's per-client msgs/s")
    parser.add_argument(
        "--server",
        choices=("cli", "embedded"),
        default="cli",
        help="run `unisockets signaling-server` (cli, default) or open_signaling_server "
        "in a child of this script (embedded, which --profile needs)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="with --server embedded: cProfile the server during the relay phase into "
        "PROFILE.<N> (pstats format) and print its garbage collections",
    )


class _Node:
    """One load-generating client: a non-blocking socket speaking WebSocket by hand."""

    __slots__ = ("acked", "id", "index", "partner", "sock", "subnet")

    def __init__(self, index: int, subnet: str) -> None:
        self.index = index
        self.subnet = subnet
        self.sock: socket.socket | None = None
        self.id = ""
        self.acked = trio.Event()
        self.partner: _Node | None = None


class _Counters:
    """What every reader counts, and the events the phases wait for."""

    def __init__(self, window: int = 1) -> None:
        self.greetings = 0
        self.greetings_expected = -1
        self.greetings_done = trio.Event()
        self.candidates = 0
        self.candidates_expected = -1
        self.candidates_done = trio.Event()
        self.closed = 0
        self.window = window
        self.in_flight = 0
        self.window_open = trio.Event()
        self.other: dict[str, int] = {}


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame, masked with the key 0 (RFC 6455 §5.2, §5.3: the payload as is)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + b"\0\0\0\0" + payload


async def _send_all(sock: socket.socket, data: bytes) -> None:
    """Write all of ``data`` on the non-blocking ``sock``, waiting when the kernel is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


async def _handshake(sock: socket.socket, host: str) -> bytes:
    """Send the HTTP upgrade (RFC 6455 §4.1); return what followed the 101 response's head."""
    request = (
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await _send_all(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        await trio.lowlevel.wait_readable(sock)
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection during the handshake")
        head += chunk
    response, rest = head.split(b"\r\n\r\n", 1)
    if not response.startswith(b"HTTP/1.1 101 "):
        raise RuntimeError(f"upgrade refused: {response[:100]!r}")
    return rest


async def _read(node: _Node, counters: _Counters, buffer: bytes) -> None:
    """Count every frame the server sends to ``node``, a whole read at a time; answer pings."""
    sock = node.sock
    assert sock is not None
    while True:
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            opcode, length = buffer[pos] & 0x0F, buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                start += 2
                length = int.from_bytes(buffer[pos + 2 : start], "big")
            elif length == 127:
                start += 8
                length = int.from_bytes(buffer[pos + 2 : start], "big")
            end = start + length
            if end > size:
                break
            if opcode == 1:
                _count(node, counters, buffer[start:end])
            elif opcode == 9:
                await _send_all(sock, _client_frame(10, buffer[start:end]))
            elif opcode == 8:
                counters.closed += 1
                return
            pos = end
        buffer = buffer[pos:]
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        except OSError:
            chunk = b""
        if not chunk:
            counters.closed += 1
            return
        buffer += chunk


def _count(node: _Node, counters: _Counters, payload: bytes) -> None:
    """Count one text message (the JSON ends with its opcode: ``...,"opcode":"candidate"}``)."""
    if payload.endswith(b'"candidate"}'):
        counters.candidates += 1
        counters.in_flight -= 1
        if counters.in_flight == counters.window * 3 // 4:
            counters.window_open.set()
        if counters.candidates == counters.candidates_expected:
            counters.candidates_done.set()
    elif payload.endswith(b'"greeting"}'):
        counters.greetings += 1
        if counters.greetings == counters.greetings_expected:
            counters.greetings_done.set()
    elif payload.endswith(b'"acknowledged"}'):
        message = json.loads(payload)
        if message["data"]["rejected"]:
            raise RuntimeError(f"join of node {node.index} rejected")
        node.id = message["data"]["id"]
        node.acked.set()
    else:
        opcode = json.loads(payload)["opcode"]
        counters.other[opcode] = counters.other.get(opcode, 0) + 1


async def _join(
    nursery: trio.Nursery,
    address: tuple[str, int],
    node: _Node,
    counters: _Counters,
    limiter: trio.CapacityLimiter,
    latencies: list[float],
) -> None:
    async with limiter:
        started = common.now()
        stream = await trio.open_tcp_stream(*address)
        node.sock = sock = socket.socket(fileno=stream.socket.detach())
        sock.setblocking(False)
        rest = await _handshake(sock, f"{address[0]}:{address[1]}")
        nursery.start_soon(_read, node, counters, rest)
        await _send_all(sock, _client_frame(1, encode(Knock(subnet=node.subnet)).encode()))
        await node.acked.wait()
        latencies.append(common.now() - started)


async def _send(group: list[_Node], per_node: int, counters: _Counters) -> None:
    """Send ``per_node`` candidates from each node of ``group``, round-robin, one per ``send``.

    At most ``counters.window`` candidates are in flight: the sender waits
    when the window is full until readers have taken a quarter of it back.
    """
    frames: list[tuple[socket.socket, bytes]] = []
    for node in group:
        assert node.partner is not None and node.sock is not None
        message = Candidate(offerer_id=node.id, answerer_id=node.partner.id, candidate=CANDIDATE)
        frames.append((node.sock, _client_frame(1, encode(message).encode())))
    sent = 0
    for _ in range(per_node):
        for sock, frame in frames:
            while counters.in_flight >= counters.window:
                if counters.window_open.is_set():
                    counters.window_open = trio.Event()
                await counters.window_open.wait()
            counters.in_flight += 1
            try:
                written = sock.send(frame)
            except BlockingIOError:
                written = 0
            if written < len(frame):  # the kernel's buffer is full: wait for it
                await _send_all(sock, frame[written:])
            sent += 1
            if sent % 32 == 0:
                await trio.lowlevel.checkpoint()  # let the readers run


def pair_partners(nodes: list[_Node], size: int) -> list[_Node]:
    """Make partners of consecutive members of each subnet of ``size``; return the paired ones."""
    paired = []
    for start in range(0, len(nodes), size):
        members = nodes[start : start + size]
        for a, b in zip(members[0::2], members[1::2], strict=False):
            a.partner, b.partner = b, a
            paired += [a, b]
    return paired


async def flood(paired: list[_Node], per_node: int, senders: int, counters: _Counters) -> None:
    """Relay ``per_node`` candidates from each paired node, ``senders`` tasks; wait for all."""
    async with trio.open_nursery() as nursery:
        for index in range(senders):
            group = paired[index::senders]
            if group:
                nursery.start_soon(_send, group, per_node, counters)
    await counters.candidates_done.wait()


class _Server:
    """The server under load: its URL, its process, and the embedded child's link, if any."""

    def __init__(self, url: str, process: trio.Process, child: common.TrioChild | None) -> None:
        self.url = url
        self.process = process
        self.child = child


async def _measure(count: int, args: argparse.Namespace) -> dict[str, float]:
    async with _open_server(count, args) as server:
        url, pid = server.url, server.process.pid
        print(f"   N={count}: server pid {pid} at {url}", file=sys.stderr, flush=True)
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        address = (host, int(port))
        idle_rss = common.rss(pid)
        counters = _Counters()
        size = args.subnet_size
        nodes = [_Node(i, f"10.{i // size // 256}.{i // size % 256}") for i in range(count)]
        counters.greetings_expected = sum(
            k * (k - 1) // 2 for k in (min(size, count - start) for start in range(0, count, size))
        )
        latencies: list[float] = []
        result: dict[str, float] = {}
        with trio.fail_after(HANG):
            async with trio.open_nursery() as nursery:
                limiter = trio.CapacityLimiter(args.join_concurrency)
                server_cpu = common.cpu_seconds(pid)
                started = common.now()
                async with trio.open_nursery() as joins:
                    for node in nodes:
                        joins.start_soon(
                            _join, nursery, address, node, counters, limiter, latencies
                        )
                result["join_rate"] = count / (common.now() - started)
                if counters.greetings_expected:
                    await counters.greetings_done.wait()
                result["fanout_seconds"] = common.now() - started
                result["join_cpu"] = 1e3 * (common.cpu_seconds(pid) - server_cpu) / count
                result["join_p50"] = 1e3 * common.percentile(latencies, 50)
                result["join_p99"] = 1e3 * common.percentile(latencies, 99)
                await trio.sleep(0.5)  # let the server's queues drain before sampling
                result["kib_per_node"] = (common.rss(pid) - idle_rss) / 1024 / count

                paired = pair_partners(nodes, size)
                per_node = max(1, args.relay_total // max(1, len(paired)))
                counters.candidates_expected = per_node * len(paired)
                counters.window = args.window
                if args.profile and server.child is not None:
                    await server.child.send({"profile_start": True})
                server_cpu, own_cpu = common.cpu_seconds(pid), common.cpu_seconds()
                started = common.now()
                await flood(paired, per_node, args.senders, counters)
                if args.profile and server.child is not None:
                    await server.child.send({"profile_stop": f"{args.profile}.{count}"})
                    report = await server.child.receive()
                    print(f"   server GC during relay: {report['gc']}", file=sys.stderr)
                took = common.now() - started
                result["relay_rate"] = counters.candidates_expected / took
                result["server_cpu"] = 100 * (common.cpu_seconds(pid) - server_cpu) / took
                result["relay_cpu"] = (
                    1e6 * (common.cpu_seconds(pid) - server_cpu) / counters.candidates_expected
                )
                result["loadgen_cpu"] = 100 * (common.cpu_seconds() - own_cpu) / took
                result["server_peak_mib"] = common.peak_rss(pid) / common.MIB
                if counters.closed:
                    raise RuntimeError(f"{counters.closed} clients were closed by the server")
                server.process.kill()  # faster than N goodbyes; the readers see the close
                nursery.cancel_scope.cancel()
        for node in nodes:
            if node.sock is not None:
                node.sock.close()
        return result


async def _child_main(params: dict[str, Any]) -> None:
    """The embedded server (``--server embedded``): can be profiled from the parent."""
    from unisockets.signaling.limits import ServerLimits
    from unisockets.signaling.server import open_signaling_server

    common.raise_fd_limit(params["max_clients"] + 1024)
    gc.set_threshold(50_000, 20, 10)  # as `unisockets signaling-server` does
    collections = _GcStats()
    gc.callbacks.append(collections.callback)
    parent = common.TrioParent()
    async with open_signaling_server(
        host="127.0.0.1",
        port=0,
        limits=ServerLimits(
            max_clients=params["max_clients"],
            max_messages_per_second=params["rate"],
            burst=int(params["rate"]),
        ),
    ) as server:
        parent.send({"ready": {"url": server.url}})
        profiler = None
        while (message := await parent.receive()) is not None:
            if message.get("profile_start"):
                profiler = cProfile.Profile()
                profiler.enable()
            if message.get("profile_stop") and profiler is not None:
                profiler.disable()
                profiler.dump_stats(message["profile_stop"])
                profiler = None
                parent.send({"profiled": True, "gc": collections.summary()})
    await parent.aclose()


class _GcStats:
    """Counts the garbage collector's runs and their time, by generation."""

    def __init__(self) -> None:
        self.runs = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = common.now()
        else:
            self.runs[info["generation"]] += 1
            self.seconds[info["generation"]] += common.now() - self._started

    def summary(self) -> str:
        return ", ".join(
            f"gen{g}: {n} runs {t:.2f} s"
            for g, (n, t) in enumerate(zip(self.runs, self.seconds, strict=True))
        )


@asynccontextmanager
async def _open_server(count: int, args: argparse.Namespace) -> AsyncIterator[_Server]:
    """Start the server in a child process: the CLI (default) or the embedded one."""
    limits = {"max_clients": count + 64, "rate": args.rate}
    if args.server == "embedded":
        async with common.open_trio_child("benchmarks.signaling_load", limits) as child:
            ready = (await child.receive())["ready"]
            yield _Server(ready["url"], child.process, child)
        return
    command = [
        sys.executable,
        *("-m", "unisockets", "signaling-server", "--host", "127.0.0.1", "--port", "0"),
        *("--max-clients", str(limits["max_clients"]), "--rate", str(args.rate)),
        *("--burst", str(int(args.rate)), "--log-level", "warning"),
    ]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, cwd=common.ROOT)
    try:
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            if not chunk:
                raise RuntimeError("the signaling server exited before printing its URL")
            line += chunk
        yield _Server(line.decode().strip(), process, None)
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


def main() -> None:
    """Run the signaling load benchmark."""
    args = common.parse_args(__doc__.splitlines()[0], ("server",), extra=_options)
    if args.child is not None:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        trio.run(_child_main, args.child)
        return
    if args.quick:
        args.nodes, args.subnet_size, args.relay_total = "20", 8, 200
    common.raise_fd_limit(20000)
    # 10,000 clients are millions of long-lived objects: with CPython's default thresholds
    # the load generator would spend its time in full garbage collections and become the
    # bottleneck (the same holds for the server, see docs/benchmarks.md).
    gc.set_threshold(50_000, 20, 10)
    counts = [int(n) for n in args.nodes.split(",") if n]
    args.processes = [2]
    common.print_header(
        f"signaling server load, N = {', '.join(map(str, counts))}, subnets of {args.subnet_size}",
        args,
    )
    metrics = {
        "join_p50": ("join p50", "ms"),
        "join_p99": ("join p99", "ms"),
        "join_rate": ("joins/s", "1/s"),
        "join_cpu": ("CPU/join", "ms"),
        "fanout_seconds": ("all in", "s"),
        "kib_per_node": ("RSS/node", "KiB"),
        "server_peak_mib": ("peak RSS", "MiB"),
        "relay_rate": ("relayed/s", "msg/s"),
        "relay_cpu": ("CPU/msg", "us"),
        "server_cpu": ("server CPU", "%"),
        "loadgen_cpu": ("loadgen CPU", "%"),
    }
    labels = {f"N={n}": f"N = {n}" for n in counts}
    reports = {
        key: common.Report(f"signaling {title}", unit, higher_is_better=False, labels=labels)
        for key, (title, unit) in metrics.items()
    }
    failures = 0
    for run in range(args.repeat):
        for count in counts:
            try:
                values = trio.run(_measure, count, args)
            except Exception as exc:
                failures += 1
                logging.exception("N=%d failed", count)
                for report in reports.values():
                    report.fail(f"N={count}", 2, f"failed: {exc!r}")
                continue
            finally:
                # The cancelled clients' sockets sit in reference cycles: collect them now, or
                # the next N runs out of file descriptors.
                gc.collect()
            for key, value in values.items():
                reports[key].add(f"N={count}", 2, value)
            shown = ", ".join(f"{key} {value:.1f}" for key, value in values.items())
            fds = len(os.listdir("/proc/self/fd"))
            print(
                f"   run {run + 1}/{args.repeat}, N={count}: {shown}; {fds} fds open",
                file=sys.stderr,
            )
    columns = {title: reports[key] for key, (title, _) in metrics.items()}
    lines = common.compact_lines(
        f"signaling server, subnets of {args.subnet_size}, medians of {args.repeat} run(s); "
        "targets: 10,000 nodes, >= 20,000 relayed/s, <= 50 KiB/node",
        columns,
    )
    print("\n".join(lines), flush=True)
    print(
        "  join = TCP connect to acknowledged; CPU/join and CPU/msg = server CPU time per join\n"
        "  (greetings included) and per relayed message; all in = every join done and every\n"
        "  greeting delivered",
        flush=True,
    )
    common.write_json(args.json, "signaling_load", reports.values())
    if failures:
        print(f"   {failures} measurement(s) failed (see stderr)", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
