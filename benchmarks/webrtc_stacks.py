"""WebRTC stacks side by side: bulk, echo round trip, cold set-up, and a lossy path, one run.

Every row runs in two processes on 127.0.0.1 (host candidates only, no ICE
servers), and the rows take turns repeat by repeat (``common.run_matrix``), so
the ratios printed under the table compare figures of the same run:

- ``tcp``: trio TCP (``benchmarks.streams``' server in a child process);
- ``ndc``: libdatachannel through npm ``node-datachannel``, two node processes;
- ``wrtc``: libwebrtc through npm ``@roamhq/wrtc``, two node processes;
- ``aiortc``: raw aiortc in plain asyncio (``benchmarks.raw_aiortc``);
- ``webrtc``: unisockets over WebRTC (``open_node(url)``, aiortc beneath);
- ``native-rtc``: unisockets with ``open_node(..., webrtc_backend="native")``
  (``benchmarks.streams``' ``str0m`` backend), skipped as "not built" while
  that parameter, that backend or the extension is missing;
- ``str0m``: raw str0m, two native transports
  (``open_native_rtc_transport``) with this script's own signalling, no
  signaling server (``benchmarks.raw_str0m``): bulk and RTT on loopback, and
  the native backend's lossy figure (its candidates can be rewritten); no
  set-up column (the ``native-rtc`` row has the node's).

Workloads: *bulk*, ``--size`` MiB (64) one way in 16 KiB writes, MB/s; *RTT*,
the echo of 100-byte messages, p50 and p99 over ``--count`` (2,000, after 200
untimed), µs; *set-up*, a new peer connection (offer, answer, ICE, DTLS, SCTP)
until its first channel echoed a byte, median of ``--samples`` (10), ms (for
unisockets: the cold ``connect()`` of a freshly joined node, as
``benchmarks.connect``; for TCP: connect until the first echoed byte).
With ``--lossy``, each row that can also moves ``--lossy-size`` MiB (4) through
``benchmarks.lossy_relay`` (``--delay`` 50 ms each way, ``--loss`` 1 %,
seeded), the peers' host candidates rewritten to the relay's addresses in the
signalling; kernel TCP crosses the same kind of relay between two TUN devices
(``benchmarks.lossy_tun``: needs root, else that cell is skipped with the reason).

The node packages are not installed by ``make test``: this script runs ``npm
ci`` into ``benchmarks/js/node_modules`` when that is missing (not when
``UNISOCKETS_BENCHMARKS_NPM_INSTALL=0``, as in the tests), and a row whose
package cannot be installed or loaded is printed as skipped, with the reason.
Every wait on a peer is bounded by ``common.LINK_TIMEOUT``; a failed row is
printed with its reason, the others go on.

Other rows plug in with :func:`register_row`.

Run: ``.venv/bin/python -m benchmarks.webrtc_stacks [--quick] [--lossy] [--backends tcp,ndc]``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from . import bulk, common, connect, lossy_relay, raw_aiortc, raw_str0m, rtt, streams

__all__ = ["ROWS", "Params", "Row", "RowSkipped", "register_row"]

T = TypeVar("T")

#: The node project with the other stacks (``package.json``, ``peer.mjs``).
JS = Path(__file__).resolve().parent / "js"
#: Seconds ``npm ci`` may take.
NPM_TIMEOUT = 600.0
#: With this environment variable set to ``0`` the script never runs ``npm ci``
#: (the tests set it: they do not install packages).
NPM_INSTALL_ENV = "UNISOCKETS_BENCHMARKS_NPM_INSTALL"


class RowSkipped(Exception):
    """A row cannot run on this machine (a package missing, a backend not built)."""


@dataclass
class Params:
    """What one measurement does (sizes from the command line)."""

    bytes: int
    chunk: int
    count: int
    warmup: int
    size: int
    samples: int
    lossy_bytes: int
    delay: float
    loss: float
    seed: int


@dataclass
class Row:
    """One stack of the table.

    Attributes:
        label: its name in the table.
        loopback: measures it on loopback: returns ``{"bulk": MB/s, "p50": µs,
            "p99": µs, "setup": ms}`` (keys may be missing); raises
            :class:`RowSkipped` when it cannot run here.
        lossy: measures MB/s through the lossy relay, or None when the row has
            no lossy measurement.
    """

    label: str
    loopback: Callable[[Params], dict[str, float]]
    lossy: Callable[[Params], float] | None = None


#: The rows by key, in display order.
ROWS: dict[str, Row] = {}


def register_row(
    key: str,
    label: str,
    loopback: Callable[[Params], dict[str, float]],
    lossy: Callable[[Params], float] | None = None,
) -> None:
    """Add (or replace) a row of the table; see :class:`Row` for the functions."""
    ROWS[key] = Row(label, loopback, lossy)


# ---- trio TCP, raw aiortc, unisockets: the existing scripts' measurements -----------------


def _stream_row(backend: str) -> Callable[[Params], dict[str, float]]:
    def measure(p: Params) -> dict[str, float]:
        if backend == "aiortc":
            seconds, _ = raw_aiortc.run(bulk._aiortc_bulk, 2, p.bytes, p.chunk)
            times = raw_aiortc.run(rtt._aiortc_rtt, 2, p.count, p.warmup, p.size)
            setup = raw_aiortc.run(connect._aiortc_connect, 2, p.samples)["cold"]
        else:
            seconds, _ = trio.run(bulk._trio_bulk, backend, 2, p.bytes, p.chunk)
            times = trio.run(rtt._trio_rtt, backend, 2, p.count, p.warmup, p.size)
            setup = trio.run(connect._trio_connect, backend, 2, p.samples)["cold"]
        return {
            "bulk": p.bytes / seconds / common.MB,
            "p50": 1e6 * common.median(times),
            "p99": 1e6 * common.percentile(times, 99),
            "setup": 1e3 * common.median(setup),
        }

    return measure


def _native_rtc(p: Params) -> dict[str, float]:
    """The native backend's row: ``benchmarks.streams``' ``str0m`` backend, once it exists.

    Raises:
        RowSkipped: ``open_node`` has no ``webrtc_backend``, ``benchmarks.streams``
            no ``str0m`` backend, or the extension is not built.
    """
    from unisockets.net import open_node

    if "webrtc_backend" not in inspect.signature(open_node).parameters:
        raise RowSkipped('not built: open_node() has no webrtc_backend="native" yet')
    if "str0m" not in getattr(streams, "OVERLAY_BACKENDS", ()):
        raise RowSkipped("not built: benchmarks.streams has no str0m backend yet")
    try:
        native_rtc = importlib.import_module("unisockets.transport.native_rtc")
    except ImportError as exc:
        raise RowSkipped(f"not built: {exc}") from None
    if not native_rtc.native_available():
        raise RowSkipped("not built: the unisockets._rtc extension is not installed")
    return _stream_row("str0m")(p)


# ---- the lossy relay -----------------------------------------------------------------------


class _RelayClient:
    """The relay child's control lines, for trio or asyncio (one request at a time)."""

    def __init__(self, child: common.TrioChild | common.AsyncioChild) -> None:
        self.child = child
        self.relay_of: dict[tuple[str, int], tuple[str, int]] = {}

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.child.send(message)
        return await self.child.receive()

    async def rewrite(self, text: str) -> str:
        """``text`` with every host candidate pointing at the relay (opened as needed)."""
        for address in lossy_relay.candidate_addresses(text):
            if address not in self.relay_of:
                reply = await self.ask({"udp": list(address)})
                self.relay_of[address] = (reply["relay"][0], int(reply["relay"][1]))
        return lossy_relay.rewrite_candidates(text, self.relay_of)


def _relay_params(p: Params) -> dict[str, Any]:
    return {"delay": p.delay, "loss": p.loss, "seed": p.seed}


def _show_stats(row: str, stats: dict[str, Any]) -> None:
    """Print (stderr) how many packets the relay forwarded and dropped: the loss it applied."""
    total = stats["forwarded"] + stats["dropped"]
    share = 100 * stats["dropped"] / total if total else math.nan
    print(
        f"   {row} lossy: the relay forwarded {stats['forwarded']}, dropped {stats['dropped']} "
        f"({share:.2f} %), could not send {stats.get('undeliverable', 0)}",
        file=sys.stderr,
        flush=True,
    )


async def _tcp_lossy(p: Params) -> float:
    with trio.fail_after(common.LINK_TIMEOUT * 4):
        async with AsyncExitStack() as stack:
            relay = await stack.enter_async_context(
                common.open_trio_child("benchmarks.lossy_relay", _relay_params(p))
            )
            await relay.receive()
            await relay.send({"tcp": True})
            path = await relay.receive()
            if "error" in path:
                raise RowSkipped(f"no TUN path for TCP: {path['error']}")
            sink = await stack.enter_async_context(
                common.open_trio_child("benchmarks.webrtc_stacks", {"tcp_sink": path["listen_on"]})
            )
            port = (await sink.receive())["ready"]["port"]
            stream = await trio.open_tcp_stream(path["connect_to"], port)
            async with stream:
                await stream.send_all(b"s" + p.lossy_bytes.to_bytes(8, "big"))
                payload = os.urandom(p.chunk)
                started = common.now()
                for offset in range(0, p.lossy_bytes, p.chunk):
                    await stream.send_all(payload[: min(p.chunk, p.lossy_bytes - offset)])
                await streams.receive_exactly(stream, 1)
                took = common.now() - started
            await relay.send({"stats": True})
            _show_stats("tcp", await relay.receive())
            return p.lossy_bytes / took / common.MB


async def _tcp_sink_child(host: str) -> None:
    """The TCP server of the lossy TCP row: ``streams.serve_connection`` on ``host``."""
    parent = common.TrioParent()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, streams.serve_connection, 0, host=host)
        )
        parent.send({"ready": {"port": listeners[0].socket.getsockname()[1]}})
        while await parent.receive() is not None:
            pass
        nursery.cancel_scope.cancel()


async def _aiortc_lossy(p: Params) -> float:
    async with AsyncExitStack() as stack:
        child = await stack.enter_async_context(
            common.open_asyncio_child("benchmarks.lossy_relay", _relay_params(p))
        )
        await common.link_wait(child.receive(), "the relay to be ready")
        relay = _RelayClient(child)
        answer, _ = await stack.enter_async_context(raw_aiortc.open_remote_answerer())

        async def relayed(sdp: str) -> str:
            offer = await common.link_wait(relay.rewrite(sdp), "the relay")
            return await common.link_wait(relay.rewrite(await answer(offer)), "the relay")

        pc, channel = await raw_aiortc.open_link(relayed)
        try:
            await channel.send(b"s" + p.lossy_bytes.to_bytes(8, "big"))
            payload = os.urandom(p.chunk)
            started = common.now()
            for offset in range(0, p.lossy_bytes, p.chunk):
                await channel.send(payload[: min(p.chunk, p.lossy_bytes - offset)])
            await channel.receive()
            took = common.now() - started
            _show_stats("aiortc", await common.link_wait(relay.ask({"stats": True}), "the relay"))
            return p.lossy_bytes / took / common.MB
        finally:
            await pc.close()


def _str0m_ready() -> None:
    """Raises :class:`RowSkipped` when the native extension is not built."""
    from unisockets.transport.native_rtc import native_available

    if not native_available():
        raise RowSkipped("not built: the unisockets._rtc extension is not installed")


async def _str0m_bulk(p: Params, nbytes: int, rewrite: raw_str0m.Rewrite | None) -> float:
    """MB/s of ``nbytes`` one way over a pipe of :func:`raw_str0m.open_remote_pair`."""
    async with raw_str0m.open_remote_pair(rewrite) as transport:
        pipe = await transport.open_pipe(raw_str0m.CHILD_ID, raw_str0m.LABEL)
        await pipe.send_message(b"s" + nbytes.to_bytes(8, "big"))
        payload = os.urandom(p.chunk)
        started = common.now()
        for offset in range(0, nbytes, p.chunk):
            await pipe.send_message(payload[: min(p.chunk, nbytes - offset)])
        await _bounded(pipe.receive_message(), "the sink's ack")
        took = common.now() - started
        await pipe.aclose()
        return nbytes / took / common.MB


async def _str0m_loopback(p: Params) -> dict[str, float]:
    """Bulk and echo round trips of raw str0m on loopback (no relay)."""
    values = {"bulk": await _str0m_bulk(p, p.bytes, None)}
    async with raw_str0m.open_remote_pair() as transport:
        pipe = await transport.open_pipe(raw_str0m.CHILD_ID, raw_str0m.LABEL)
        await pipe.send_message(b"e")
        message = os.urandom(p.size)
        times = []
        for i in range(p.warmup + p.count):
            started = common.now()
            await pipe.send_message(message)
            await _bounded(pipe.receive_message(), "an echo")
            if i >= p.warmup:
                times.append(common.now() - started)
        await pipe.aclose()
    values["p50"] = 1e6 * common.median(times)
    values["p99"] = 1e6 * common.percentile(times, 99)
    return values


async def _str0m_lossy(p: Params) -> float:
    async with common.open_trio_child("benchmarks.lossy_relay", _relay_params(p)) as child:
        await _bounded(child.receive(), "the relay to be ready")
        relay = _RelayClient(child)
        mbps = await _str0m_bulk(p, p.lossy_bytes, relay.rewrite)
        _show_stats("str0m", await _bounded(relay.ask({"stats": True}), "the relay"))
        return mbps


def _str0m_row() -> tuple[Callable[[Params], dict[str, float]], Callable[[Params], float]]:
    def loopback(p: Params) -> dict[str, float]:
        _str0m_ready()
        return dict(trio.run(_str0m_loopback, p))

    def lossy(p: Params) -> float:
        _str0m_ready()
        return float(trio.run(_str0m_lossy, p))

    return _unwrapped(loopback), _unwrapped(lossy)


# ---- the node stacks -----------------------------------------------------------------------


def _npm_ready() -> None:
    """Install ``benchmarks/js``'s pinned packages when missing (``npm ci``), unless forbidden.

    Raises:
        RowSkipped: no node/npm on PATH, or the install failed (no registry, no
            prebuilt binary for this platform): the reason is in the message.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RowSkipped("node and npm are not on PATH")
    if (JS / "node_modules" / ".package-lock.json").exists():
        return
    if os.environ.get(NPM_INSTALL_ENV) == "0":
        raise RowSkipped(
            f"node packages not installed, and {NPM_INSTALL_ENV}=0 forbids installing them "
            f"(run the script once without it, or npm ci in {JS})"
        )
    print(f"   installing {JS / 'package.json'} with npm ci ...", file=sys.stderr, flush=True)
    try:
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise RowSkipped(f"npm ci took more than {NPM_TIMEOUT:g} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RowSkipped(f"npm ci failed: {last}")


async def _bounded(awaitable: Any, what: str, seconds: float = common.LINK_TIMEOUT) -> Any:
    try:
        with trio.fail_after(seconds):
            return await awaitable
    except trio.TooSlowError:
        raise TimeoutError(f"waited {seconds:g} s for {what}: the link is dead") from None


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups: the one worth a table cell."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _unwrapped(measure: Callable[[Params], T]) -> Callable[[Params], T]:
    """``measure`` raising the first exception of a nursery's group instead of the group."""

    def wrapper(p: Params) -> T:
        try:
            return measure(p)
        except BaseExceptionGroup as group:
            leaf = _leaf(group)
            if isinstance(leaf, Exception):
                raise leaf from group
            raise

    return wrapper


@asynccontextmanager
async def _node_peer(stack: str, role: str) -> AsyncIterator[common.TrioChild]:
    process = await trio.lowlevel.open_process(
        ["node", str(JS / "peer.mjs"), stack, role],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=JS,
    )
    try:
        yield common.TrioChild(process)
    finally:
        with trio.CancelScope(shield=True):
            assert process.stdin is not None
            await process.stdin.aclose()
            with trio.move_on_after(common.CHILD_EXIT_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _forward(
    source: common.TrioChild,
    sink: common.TrioChild,
    relay: _RelayClient | None,
    results: trio.MemorySendChannel[dict[str, Any]],
) -> None:
    while True:
        try:
            message = await source.receive()
        except EOFError:
            await results.send({"error": "a node peer exited"})
            return
        signal = message.get("signal")
        if signal is None:
            await results.send(message)
            continue
        if relay is not None and "bye" not in signal:
            key = "sdp" if "sdp" in signal else "candidate"
            signal[key] = await relay.rewrite(signal[key])
            if not signal[key]:
                continue  # a TCP candidate: it would bypass the relay
        await sink.send(message)


async def _node_runs(
    stack: str, specs: list[dict[str, Any]], lossy: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Start the two peers of ``stack`` (and the relay), run ``specs`` in turn, return results."""
    async with AsyncExitStack() as stack_:
        relay = None
        if lossy is not None:
            child = await stack_.enter_async_context(
                common.open_trio_child("benchmarks.lossy_relay", lossy)
            )
            await _bounded(child.receive(), "the relay to be ready")
            relay = _RelayClient(child)
        offer = await stack_.enter_async_context(_node_peer(stack, "offer"))
        answer = await stack_.enter_async_context(_node_peer(stack, "answer"))
        for peer in (offer, answer):
            ready = await _bounded(peer.receive(), f"node {stack} to start")
            if "error" in ready:
                raise RowSkipped(str(ready["error"]))
        send, receive = trio.open_memory_channel[dict[str, Any]](math.inf)
        results = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward, offer, answer, relay, send)
            nursery.start_soon(_forward, answer, offer, relay, send.clone())
            for spec in specs:
                # the peer's own waits end first, so that its reason is the one reported
                await offer.send({"run": {**spec, "timeout": common.LINK_TIMEOUT}})
                reply = await _bounded(
                    receive.receive(), f"node {stack}'s {spec['kind']} run", 2 * common.LINK_TIMEOUT
                )
                if "error" in reply:
                    raise RuntimeError(f"node {stack}: {str(reply['error']).splitlines()[0]}")
                results.append(reply["result"])
            nursery.cancel_scope.cancel()
        if relay is not None:  # the forwarders stopped: the relay's lines are ours
            _show_stats(stack, await _bounded(relay.ask({"stats": True}), "the relay"))
        return results


def _node_row(stack: str) -> tuple[Callable[[Params], dict[str, float]], Callable[[Params], float]]:
    def loopback(p: Params) -> dict[str, float]:
        _npm_ready()
        specs = [
            {"kind": "bulk", "bytes": p.bytes, "chunk": p.chunk},
            {"kind": "rtt", "count": p.count, "warmup": p.warmup, "size": p.size},
            {"kind": "setup", "samples": p.samples},
        ]
        done, times, setup = trio.run(_node_runs, stack, specs, None)
        return {
            "bulk": p.bytes / done["seconds"] / common.MB,
            "p50": 1e6 * common.median(times["times"]),
            "p99": 1e6 * common.percentile(times["times"], 99),
            "setup": 1e3 * common.median(setup["times"]),
        }

    def lossy(p: Params) -> float:
        _npm_ready()
        spec = {"kind": "bulk", "bytes": p.lossy_bytes, "chunk": p.chunk}
        (done,) = trio.run(_node_runs, stack, [spec], _relay_params(p))
        return float(p.lossy_bytes / done["seconds"] / common.MB)

    return _unwrapped(loopback), _unwrapped(lossy)


register_row("tcp", "trio TCP", _stream_row("tcp"), _unwrapped(lambda p: trio.run(_tcp_lossy, p)))
register_row("ndc", "libdatachannel (node-datachannel)", *_node_row("ndc"))
register_row("wrtc", "libwebrtc (@roamhq/wrtc)", *_node_row("wrtc"))
register_row(
    "aiortc", "raw aiortc", _stream_row("aiortc"), lambda p: raw_aiortc.run(_aiortc_lossy, p)
)
register_row("webrtc", "unisockets (aiortc)", _stream_row("webrtc"))
register_row("native-rtc", "unisockets (native backend)", _native_rtc)
register_row("str0m", "raw str0m (native transport)", *_str0m_row())


# ---- the table -----------------------------------------------------------------------------

#: Metric key -> (column header, unit, higher is better).
METRICS = {
    "bulk": ("bulk", "MB/s", True),
    "p50": ("RTT p50", "us", False),
    "p99": ("RTT p99", "us", False),
    "setup": ("set-up", "ms", False),
    "lossy": ("lossy", "MB/s", True),
}
#: The ratios printed under the table: (metric, reference row).
RATIOS = (
    ("bulk", "tcp"),
    ("bulk", "ndc"),
    ("bulk", "aiortc"),
    ("p50", "tcp"),
    ("setup", "ndc"),
    ("lossy", "tcp"),
)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=float, default=64, help="MiB for bulk (64)")
    parser.add_argument("--chunk", type=int, default=16 * 1024, help="bytes per write (16 KiB)")
    parser.add_argument("--count", type=int, default=2000, help="timed round trips (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed round trips (200)")
    parser.add_argument("--samples", type=int, default=10, help="cold set-ups per run (10)")
    parser.add_argument("--lossy", action="store_true", help="also measure through the relay")
    parser.add_argument("--lossy-size", type=float, default=4, help="MiB through the relay (4)")
    parser.add_argument("--delay", type=float, default=50.0, help="relay one-way delay, ms (50)")
    parser.add_argument("--loss", type=float, default=1.0, help="relay loss, per cent (1)")
    parser.add_argument("--seed", type=int, default=1, help="relay random seed (1)")


def ratio_lines(reports: dict[str, common.Report]) -> list[str]:
    """The ratios of every row to the reference rows, per metric (same run)."""
    out = ["ratios (median / median of the reference row, same run):"]
    for metric, reference in RATIOS:
        report = reports.get(metric)
        if report is None:
            continue
        ref = report.value(reference, 2)
        if math.isnan(ref):
            continue
        header, _, _ = METRICS[metric]
        cells = []
        for key, row in report.rows.items():
            if key[0] != reference and row.values:
                cells.append(f"{ROWS[key[0]].label} {report.value(key[0], 2) / ref:.3g}x")
        if cells:
            out.append(f"  {header} / {ROWS[reference].label}: " + "; ".join(cells))
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the rows, print the table and the ratios; exit 1 if a measurement failed."""
    args = common.parse_args(__doc__.splitlines()[0], tuple(ROWS), extra=_options, argv=argv)
    if args.child is not None:
        trio.run(_tcp_sink_child, args.child["tcp_sink"])
        return
    args.processes = [2]
    if args.quick:
        args.size, args.count, args.warmup, args.samples, args.lossy_size = 1, 50, 5, 2, 0.25
    p = Params(
        int(args.size * common.MIB),
        args.chunk,
        args.count,
        args.warmup,
        100,
        args.samples,
        int(args.lossy_size * common.MIB),
        args.delay / 1e3,
        args.loss / 100,
        args.seed,
    )
    title = f"WebRTC stacks, two processes on loopback: {args.size:g} MiB bulk, {args.count} echoes"
    common.print_header(title, args)
    reports = {
        key: common.Report(f"{header}", unit, higher, {k: r.label for k, r in ROWS.items()})
        for key, (header, unit, higher) in METRICS.items()
        if key != "lossy" or args.lossy
    }
    skipped: dict[str, str] = {}
    lossy_failures: list[str] = []

    def measure(key: str, _processes: int) -> dict[str, float]:
        if key in skipped:
            return {}
        row = ROWS[key]
        try:
            values = row.loopback(p)
        except RowSkipped as exc:
            skipped[key] = str(exc)
            print(f"   {key}: skipped, {exc}", file=sys.stderr, flush=True)
            return {}
        if args.lossy and row.lossy is not None:
            try:
                values["lossy"] = row.lossy(p)
            except RowSkipped as exc:
                reports["lossy"].fail(key, 2, f"skipped: {exc}")
            except Exception as exc:  # the loopback figures stand; the lossy cell says why
                lossy_failures.append(key)
                traceback.print_exc()
                print(f"   {key}: lossy FAILED {exc!r}"[:160], file=sys.stderr, flush=True)
                reports["lossy"].fail(key, 2, f"lossy failed: {exc!r}")
        return values

    failures = common.run_matrix(args, reports, measure)
    failures += len(lossy_failures)
    for report in reports.values():
        for key in skipped:
            report.rows.pop((key, 2), None)
    if args.lossy:
        print(
            f"lossy: {args.lossy_size:g} MiB one way, {args.delay:g} ms each way, "
            f"{args.loss:g} % loss, seed {args.seed}"
        )
    print("\n".join(common.compact_lines(title, {METRICS[k][0]: r for k, r in reports.items()})))
    for key, reason in skipped.items():
        print(f"  skipped: {ROWS[key].label} ({reason})")
    print("\n".join(ratio_lines(reports)), flush=True)
    common.write_json(args.json, "webrtc_stacks", reports.values())
    if failures:
        print(f"   {failures} measurement(s) failed (see stderr)", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
