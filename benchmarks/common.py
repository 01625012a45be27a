"""Helpers shared by the benchmark scripts: arguments, statistics, memory, child processes, reports.

The scripts are run by hand from the repository root, e.g.
``.venv/bin/python -m benchmarks.bulk``; ``benchmarks.run_all`` runs them all.
Each prints its figures and, under every "ours" row, the ratio to the raw
backend it is built on, measured in the same run: backends are interleaved
repeat by repeat so that a noisy shared machine slows them alike.

Conventions: MB = 10**6 bytes, MiB = 2**20 bytes; times are measured with
:func:`time.perf_counter`; medians over repeats, with the spread (min..max)
printed so the noise is visible. Child processes are this same module run with
``--child <json>``; they talk to the parent in JSON lines over stdin/stdout and
log to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import trio

__all__ = [
    "LINK_TIMEOUT",
    "link_wait",
    "MB",
    "MIB",
    "ROOT",
    "AsyncioChild",
    "AsyncioParent",
    "Report",
    "TrioChild",
    "TrioParent",
    "child_command",
    "compact_lines",
    "cpu_seconds",
    "finish",
    "machine_summary",
    "median",
    "open_asyncio_child",
    "open_trio_child",
    "parse_args",
    "peak_rss",
    "percentile",
    "raise_fd_limit",
    "reset_peak_rss",
    "run_matrix",
    "run_queue_seconds",
    "rss",
]

T = TypeVar("T")

MB = 10**6
MIB = 2**20
#: The repository root: children run with it as their working directory.
ROOT = Path(__file__).resolve().parent.parent
#: Seconds a child gets to exit after its stdin closed before it is killed.
CHILD_EXIT_TIMEOUT = 30.0
#: Seconds any single wait on a peer link (a channel opening, a message, the
#: send buffer draining, an answer from the child) may take before the link
#: counts as dead and the run ends with an error instead of hanging.
LINK_TIMEOUT = 120.0


async def link_wait(awaitable: Awaitable[T], what: str) -> T:
    """Await ``awaitable`` (asyncio) for at most :data:`LINK_TIMEOUT` seconds.

    Args:
        awaitable: a wait that depends on a peer link.
        what: what is awaited, for the error (``"channel 's3' to open"``).

    Returns:
        What ``awaitable`` returned.

    Raises:
        TimeoutError: it took longer (the link is dead or the machine hopelessly busy).

    The bound is an :func:`asyncio.timeout` scope, not :func:`asyncio.wait_for`:
    on Python 3.11, ``wait_for`` wakes its caller through a second future (one
    more event-loop iteration per wait) and runs a coroutine in a task of its
    own (one more again), so a measured path that waits on a coroutine paid
    more than one that waits on a future (echo round trips in one process: 10
    and 8 iterations for the asyncio driver and raw aiortc, 8 and 7 without).
    """
    try:
        async with asyncio.timeout(LINK_TIMEOUT):
            return await awaitable
    except TimeoutError:
        raise TimeoutError(f"waited {LINK_TIMEOUT:g} s for {what}: the link is dead") from None


# ---- statistics --------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """The median of ``values`` (NaN when there are none)."""
    values = list(values)
    return statistics.median(values) if values else math.nan


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method (NaN when empty).

    Nearest rank keeps the value one actually measured: the p99 of 1,000
    samples is the 990th smallest.
    """
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# ---- memory and limits -------------------------------------------------------------------


def _status_kib(field_name: str, pid: int | None) -> int:
    path = f"/proc/{pid or 'self'}/status"
    with open(path, encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(f"{field_name} not in {path}")


def rss(pid: int | None = None) -> int:
    """Resident set size of process ``pid`` (default: this one) now, in bytes (Linux)."""
    return 1024 * _status_kib("VmRSS", pid)


def peak_rss(pid: int | None = None) -> int:
    """Peak resident set size of process ``pid`` (default: this one) so far, in bytes (Linux)."""
    return 1024 * _status_kib("VmHWM", pid)


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time process ``pid`` (default: this one) used so far, in seconds (Linux).

    The sum over its live threads of the scheduler's nanosecond run time
    (``/proc/<pid>/task/*/schedstat``): clock ticks (10 ms) are too coarse for
    the short TCP runs. Threads that already exited are not counted.
    """
    return _schedstat_seconds(pid, 0)


def run_queue_seconds(pid: int | None = None) -> float:
    """Time process ``pid``'s threads spent runnable but waiting for a CPU so far, in seconds.

    The second field of ``/proc/<pid>/task/*/schedstat`` (nanoseconds on a run
    queue, Linux): on a shared machine, how long the process could have run
    but had no core. Threads that already exited are not counted.
    """
    return _schedstat_seconds(pid, 1)


def _schedstat_seconds(pid: int | None, field: int) -> float:
    total = 0
    base = f"/proc/{pid or 'self'}/task"
    for task in os.listdir(base):
        try:
            with open(f"{base}/{task}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[field])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread exited meanwhile
    return total / 1e9


def reset_peak_rss() -> None:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0, ``clear_refs``)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file soft limit towards ``wanted`` (at most the hard limit).

    Returns:
        The soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# ---- the machine -------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine_summary() -> str:
    """One line naming the machine, the date and the versions that matter to the figures."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    packages = ("trio", "trio-websocket", "aiortc", "aioice", "pyOpenSSL", "anyio")
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.date.today().isoformat()}; {cpu}, {os.cpu_count()} cores; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
        f"{versions}; unisockets {_version('unisockets')}; load average {load}"
    )


# ---- arguments ---------------------------------------------------------------------------


def parse_args(
    description: str,
    backends: Sequence[str],
    *,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Parse the options every benchmark script shares, plus ``extra`` ones.

    Shared options: ``--quick`` (tiny sizes, one repeat: for CI's start check),
    ``--repeat N``, ``--backends a,b``, ``--processes 1,2``, ``--json FILE``
    (append the results as JSON lines), and the internal ``--child JSON``.

    Args:
        description: the script's one-line description (``--help``).
        backends: the backend names the script knows, in display order.
        extra: adds script-specific options to the parser.
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The namespace; ``backends`` and ``processes`` are lists, ``child`` a
        dict or None.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat")
    parser.add_argument("--repeat", type=int, default=None, help="runs per backend (default 3)")
    parser.add_argument(
        "--backends", default=",".join(backends), help=f"comma list of {', '.join(backends)}"
    )
    parser.add_argument("--processes", default="1,2", help="comma list of 1 and/or 2")
    parser.add_argument("--json", default=None, help="append results to this JSON-lines file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    args.backends = [name for name in args.backends.split(",") if name]
    unknown = set(args.backends) - set(backends)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    args.processes = [int(n) for n in args.processes.split(",") if n]
    if not set(args.processes) <= {1, 2}:
        parser.error("--processes takes 1 and/or 2")
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    args.child = json.loads(args.child) if args.child else None
    return args


# ---- reports -----------------------------------------------------------------------------


@dataclass
class _Row:
    label: str
    processes: int
    values: list[float] = field(default_factory=list)
    note: str = ""


@dataclass
class Report:
    """The figures of one metric for every backend, printed as a table with ratios.

    Args:
        title: what is measured, e.g. ``"bulk throughput, 64 MiB in 16 KiB writes"``.
        unit: the unit of the values, e.g. ``"MB/s"`` or ``"us"``.
        higher_is_better: True for throughputs, False for times (ratios read accordingly).
        labels: display names by backend key.
        pairs: ``(ours, raw)`` backend keys: each ours row is followed by its
            ratio to raw, when both were measured.
        targets: ``{ours key: (limit, text)}``: the ratio (or, with ``"abs"``
            in the text, the value itself) is checked against ``limit`` and
            ``hit``/``MISS`` printed.
    """

    title: str
    unit: str
    higher_is_better: bool
    labels: dict[str, str]
    pairs: Sequence[tuple[str, str]] = ()
    targets: dict[str, tuple[float, str]] = field(default_factory=dict)
    rows: dict[tuple[str, int], _Row] = field(default_factory=dict)

    def add(self, backend: str, processes: int, value: float) -> None:
        """Record one measurement of ``backend`` run in ``processes`` processes."""
        self._row(backend, processes).values.append(value)

    def fail(self, backend: str, processes: int, reason: str) -> None:
        """Record that ``backend`` could not be measured, and why."""
        row = self._row(backend, processes)
        row.note = reason[:160]

    def _row(self, backend: str, processes: int) -> _Row:
        key = (backend, processes)
        if key not in self.rows:
            self.rows[key] = _Row(self.labels.get(backend, backend), processes)
        return self.rows[key]

    def value(self, backend: str, processes: int) -> float:
        """The median of ``backend``'s measurements (NaN if none)."""
        row = self.rows.get((backend, processes))
        return median(row.values) if row else math.nan

    def ratio(self, ours: str, raw: str, processes: int) -> float:
        """``ours / raw`` of the medians (NaN if either is missing or raw is 0)."""
        raw_value = self.value(raw, processes)
        return self.value(ours, processes) / raw_value if raw_value else math.nan

    def lines(self) -> list[str]:
        """The table as text lines."""
        out = [f"{self.title} [{self.unit}, median of runs; spread = (max - min) / median]"]
        ours_of = {ours: raw for ours, raw in self.pairs}
        order = list(self.labels)
        for processes in sorted({p for _, p in self.rows}):
            out.append(f"  {processes} process{'es' if processes > 1 else ''}:")
            for backend in order:
                row = self.rows.get((backend, processes))
                if row is None:
                    continue
                if row.values:
                    mid = median(row.values)
                    spread = (max(row.values) - min(row.values)) / mid if mid else math.nan
                    text = f"{_fmt(mid):>12} {self.unit:<5} spread {100 * spread:4.0f}%"
                    text += f"  n={len(row.values)}"
                else:
                    text = f"{'n/a':>12}"
                if row.note:
                    text += f"  ({row.note})"
                out.append(f"    {row.label:<34}{text}")
                raw = ours_of.get(backend)
                raw_row = self.rows.get((raw, processes)) if raw is not None else None
                if raw is not None and row.values and raw_row is not None and raw_row.values:
                    ratio = self.ratio(backend, raw, processes)
                    line = f"      ratio to {self.labels.get(raw, raw):<25}{ratio:>9.2f}x"
                    target = self.targets.get(backend)
                    if target is not None:
                        line += "  " + _verdict(target, ratio, mid, self.higher_is_better)
                    out.append(line)
        return out

    def print(self) -> None:
        """Print the table to stdout."""
        print("\n".join(self.lines()), flush=True)

    def records(self, workload: str) -> list[dict[str, Any]]:
        """The raw measurements as JSON-ready dicts."""
        return [
            {
                "workload": workload,
                "metric": self.title,
                "unit": self.unit,
                "backend": backend,
                "processes": processes,
                "values": row.values,
                "median": median(row.values) if row.values else None,
                "note": row.note,
            }
            for (backend, processes), row in self.rows.items()
        ]


def compact_lines(title: str, columns: dict[str, Report]) -> list[str]:
    """One table for several reports of the same rows: rows are backends, columns metrics.

    Cells are medians; the last column is the largest spread of the row (the noise).

    Args:
        title: the table's title.
        columns: short column header -> report (all with the same labels).
    """
    first = next(iter(columns.values()))
    widths = [max(10, len(name) + 1) for name in columns]
    header = f"  {'':<36}" + "".join(
        f"{name:>{w}}" for name, w in zip(columns, widths, strict=True)
    )
    units = f"  {'':<36}" + "".join(
        f"{'[' + r.unit + ']':>{w}}" for r, w in zip(columns.values(), widths, strict=True)
    )
    out = [title, header + "  spread", units]
    for backend, processes in first.rows:
        label = first.rows[backend, processes].label
        if len({p for _, p in first.rows}) > 1:
            label = f"{label}, {processes}p"
        cells, spreads, notes = [], [], []
        for report, width in zip(columns.values(), widths, strict=True):
            row = report.rows.get((backend, processes))
            if row is None or not row.values:
                cells.append(f"{'n/a':>{width}}")
                if row is not None and row.note:
                    notes.append(row.note)
                continue
            mid = median(row.values)
            cells.append(f"{_fmt(mid):>{width}}")
            if mid:
                spreads.append((max(row.values) - min(row.values)) / abs(mid))
        spread = f"{100 * max(spreads):6.0f}%" if spreads else ""
        out.append(f"  {label:<36}" + "".join(cells) + spread)
        if notes:
            out.append(f"    ({notes[0]})")
    return out


def _verdict(target: tuple[float, str], ratio: float, value: float, higher: bool) -> str:
    limit, text = target
    measured = value if "abs" in text else ratio
    ok = measured >= limit if higher or "min" in text else measured <= limit
    return f"target {text.replace('abs ', '').replace('min ', '')}: {'hit' if ok else 'MISS'}"


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def write_json(path: str | None, workload: str, reports: Iterable[Report]) -> None:
    """Append every report's records to the JSON-lines file ``path`` (if given)."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for report in reports:
            for record in report.records(workload):
                out.write(json.dumps(record) + "\n")


def print_header(title: str, args: argparse.Namespace) -> None:
    """Print the script's title, the machine line and the run's settings."""
    print(f"== {title}", flush=True)
    print(f"   {machine_summary()}", flush=True)
    print(
        f"   backends {','.join(args.backends)}; processes {args.processes}; "
        f"{args.repeat} run(s) each{' (quick)' if args.quick else ''}",
        flush=True,
    )


def run_matrix(
    args: argparse.Namespace,
    reports: dict[str, Report],
    measure: Callable[[str, int], dict[str, float]],
) -> int:
    """Measure every backend in every process layout, ``args.repeat`` times, interleaved.

    Each repeat runs every (processes, backend) pair once before the next
    repeat starts, so slow phases of a shared machine hit all backends alike.
    A failed measurement is recorded in every report (``n/a`` with the reason)
    and printed with its traceback to stderr; the others go on.

    Args:
        args: the parsed arguments (``repeat``, ``processes``, ``backends``).
        reports: the reports by metric key.
        measure: ``measure(backend, processes)`` returns ``{metric key: value}``.

    Returns:
        How many measurements failed.
    """
    failures = 0
    for run in range(args.repeat):
        for processes in args.processes:
            for backend in args.backends:
                started = time.perf_counter()
                try:
                    values = measure(backend, processes)
                except Exception as exc:
                    failures += 1
                    traceback.print_exc()
                    for report in reports.values():
                        report.fail(backend, processes, f"failed: {exc!r}")
                    shown = f"FAILED {exc!r}"[:120]
                else:
                    for key, value in values.items():
                        reports[key].add(backend, processes, value)
                    shown = ", ".join(f"{key} {_fmt(value)}" for key, value in values.items())
                took = time.perf_counter() - started
                print(
                    f"   run {run + 1}/{args.repeat}, {processes}p, {backend}: {shown} "
                    f"({took:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return failures


def finish(
    workload: str, args: argparse.Namespace, reports: Iterable[Report], failures: int
) -> None:
    """Print every report, append them to ``--json``, exit 1 if a measurement failed."""
    reports = list(reports)
    for report in reports:
        report.print()
    write_json(args.json, workload, reports)
    if failures:
        print(f"   {failures} measurement(s) failed (see stderr)", flush=True)
        sys.exit(1)


# ---- child processes ---------------------------------------------------------------------


def child_command(module: str, params: dict[str, Any]) -> list[str]:
    """The command line running ``python -m module --child <params as JSON>``."""
    return [sys.executable, "-m", module, "--child", json.dumps(params)]


class TrioChild:
    """A child process seen from a trio parent: JSON lines in and out.

    Attributes:
        process: the :class:`trio.Process`.
    """

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = bytearray()

    async def receive(self) -> dict[str, Any]:
        """Read the child's next JSON line.

        Raises:
            EOFError: the child closed its stdout (it died or finished).
        """
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise EOFError(f"child {self.process.args!r} ended its output")
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        result: dict[str, Any] = json.loads(line)
        return result

    async def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to the child's stdin."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(json.dumps(message).encode() + b"\n")


@asynccontextmanager
async def open_trio_child(module: str, params: dict[str, Any]) -> AsyncIterator[TrioChild]:
    """Start ``python -m module --child params`` from trio; on exit close its stdin and reap it.

    The child is killed if it has not exited :data:`CHILD_EXIT_TIMEOUT` seconds
    after its stdin closed.
    """
    process = await trio.lowlevel.open_process(
        child_command(module, params),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        yield TrioChild(process)
    finally:
        with trio.CancelScope(shield=True):
            assert process.stdin is not None
            await process.stdin.aclose()
            with trio.move_on_after(CHILD_EXIT_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            assert process.stdout is not None
            await process.stdout.aclose()


class TrioParent:
    """A child's link to its trio parent: JSON lines on stdout, commands on stdin."""

    def __init__(self) -> None:
        self._stdin = trio.lowlevel.FdStream(os.dup(0))
        self._buffer = bytearray()

    def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to stdout (blocking: lines are short)."""
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def receive(self) -> dict[str, Any] | None:
        """Read the parent's next JSON line; None when the parent closed our stdin."""
        while b"\n" not in self._buffer:
            chunk = await self._stdin.receive_some(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        result: dict[str, Any] = json.loads(line)
        return result

    async def aclose(self) -> None:
        """Close our end of stdin."""
        await self._stdin.aclose()


class AsyncioChild:
    """A child process seen from an asyncio parent: JSON lines in and out.

    Attributes:
        process: the :class:`asyncio.subprocess.Process`.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def receive(self) -> dict[str, Any]:
        """Read the child's next JSON line.

        Raises:
            EOFError: the child closed its stdout.
        """
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise EOFError("the child ended its output")
        result: dict[str, Any] = json.loads(line)
        return result

    async def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to the child's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()


@asynccontextmanager
async def open_asyncio_child(module: str, params: dict[str, Any]) -> AsyncIterator[AsyncioChild]:
    """Start ``python -m module --child params`` from asyncio; on exit close stdin and reap it."""
    process = await asyncio.create_subprocess_exec(
        *child_command(module, params),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        limit=16 * MIB,
    )
    try:
        yield AsyncioChild(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), CHILD_EXIT_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()


class AsyncioParent:
    """A child's link to its asyncio parent: JSON lines on stdout, commands on stdin."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    @classmethod
    async def open(cls) -> AsyncioParent:
        """Connect a stream reader to stdin (call inside the running loop)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=16 * MIB)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(0), "rb")
        )
        return cls(reader)

    def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to stdout."""
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def receive(self) -> dict[str, Any] | None:
        """Read the parent's next JSON line; None when the parent closed our stdin."""
        line = await self._reader.readline()
        if not line:
            return None
        result: dict[str, Any] = json.loads(line)
        return result


def now() -> float:
    """The benchmark clock, seconds (:func:`time.perf_counter`)."""
    return time.perf_counter()
