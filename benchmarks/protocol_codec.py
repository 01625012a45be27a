"""Signaling message codec: µs per construct, encode, decode and decode_canonical.

The cost of :mod:`unisockets.protocol`'s message path, one call at a time,
for the messages the signaling server handles most: the relayed ``offer``,
``answer`` and ``candidate`` (what nodes send, what the server decodes and
passes on), and ``bind`` and ``connect`` (requests the server decodes and
answers). For each message:

- *construct*: the dataclass call with keyword arguments (validation included);
- *encode*: :func:`~unisockets.protocol.wire.encode`;
- *decode*: :func:`~unisockets.protocol.wire.decode` of what ``encode`` wrote
  (the relay fast path for relayed messages, the JSON path for the others);
- *decode_canonical*: :func:`~unisockets.protocol.wire.decode_canonical` of the same.

Each figure is the best of 5 timings of a loop long enough to take about
50 ms (5 ms with ``--quick``), measured in a fresh child process; the table
shows the median over ``--repeat`` such children.

``--baseline DIR`` measures the ``unisockets`` package found in ``DIR``
(another checkout, e.g. ``git worktree add /tmp/before HEAD~1``) as well, its
children taking turns with this tree's so that a busy machine slows both
alike, and prints before, after and their ratio.

Run: ``.venv/bin/python -m benchmarks.protocol_codec [--quick] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The repository root of this tree (children of this tree run with it as ``PYTHONPATH``).
ROOT = Path(__file__).resolve().parent.parent
#: Seconds one child may take before it counts as hung.
HANG = 600

#: A trickled candidate as browsers and aiortc send it (a JSON RTCIceCandidateInit).
CANDIDATE = json.dumps(
    {
        "candidate": "candidate:3442447574 1 udp 2122260223 192.168.1.23 54321 typ host "
        "generation 0 ufrag Xq7u network-id 1",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "Xq7u",
    }
)
#: An SDP of a data-channel-only offer, the size aiortc writes (about 0.5 KB).
SDP = "\r\n".join(
    [
        "v=0",
        "o=- 3911475285 3911475285 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        "m=application 54321 DTLS/SCTP 5000",
        "c=IN IP4 192.168.1.23",
        "a=mid:0",
        "a=sctpmap:5000 webrtc-datachannel 65535",
        "a=max-message-size:65536",
        "a=candidate:3442447574 1 udp 2122260223 192.168.1.23 54321 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:Xq7u",
        "a=ice-pwd:4dcnCV9Q2sRzp2fSNlnqIW",
        "a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:"
        "DD:8C:66:A5:8E:50:55:2C:04:5B:1E:5F:AC:74:F4:08",
        "a=setup:actpass",
        "",
    ]
)
#: Constructor arguments of each measured message, by opcode.
MESSAGES: dict[str, dict[str, str]] = {
    "offer": {"offerer_id": "10.0.0.1", "answerer_id": "10.0.0.2", "offer": SDP},
    "answer": {"offerer_id": "10.0.0.1", "answerer_id": "10.0.0.2", "answer": SDP},
    "candidate": {"offerer_id": "10.0.0.2", "answerer_id": "10.0.0.1", "candidate": CANDIDATE},
    "bind": {"id": "10.0.0.1", "alias": "10.0.0.1:8080"},
    "connect": {
        "id": "10.0.0.2",
        "client_connection_id": "9b2e8f4c-1d7a-4e5b-8c3f-2a6d0e9f7b41",
        "remote_alias": "10.0.0.1:8080",
    },
}
OPERATIONS = ("construct", "encode", "decode", "decode_canonical")


# ---- the child: measures the unisockets it imports ---------------------------------------


def _best_of(call: Callable[[], object], seconds: float) -> float:
    """µs per call: the best of 5 timings of a loop of about ``seconds``."""
    timer = timeit.Timer(call)
    number = 10
    while (took := timer.timeit(number)) < seconds / 10:  # calibrate on ~1/10 of a loop
        number *= 10
    number = max(1, math.ceil(number * seconds / took))
    return 1e6 * min(timer.repeat(repeat=5, number=number)) / number


def _measure(seconds: float) -> dict[str, float | None]:
    """Time every (message, operation) of :data:`MESSAGES` with the importable unisockets.

    Returns:
        µs per call by ``"<opcode> <operation>"``; ``None`` where this
        unisockets lacks the operation (``decode_canonical`` of older trees).

    Raises:
        AssertionError: a round trip does not give the message back.
    """
    from unisockets.protocol import messages, wire

    decode_canonical = getattr(wire, "decode_canonical", None)
    results: dict[str, float | None] = {}
    for opcode, kwargs in MESSAGES.items():
        cls = messages.MESSAGE_TYPES[opcode]
        message = cls(**kwargs)
        text = wire.encode(message)
        assert wire.decode(text) == message, opcode
        calls: dict[str, Callable[[], object] | None] = {
            "construct": lambda cls=cls, kwargs=kwargs: cls(**kwargs),
            "encode": lambda message=message: wire.encode(message),
            "decode": lambda text=text: wire.decode(text),
            "decode_canonical": None,
        }
        if decode_canonical is not None:
            assert decode_canonical(text)[0] == message, opcode
            calls["decode_canonical"] = lambda text=text: decode_canonical(text)
        for operation, call in calls.items():
            key = f"{opcode} {operation}"
            results[key] = None if call is None else _best_of(call, seconds)
    return results


# ---- the parent --------------------------------------------------------------------------


def _run_child(root: Path, seconds: float) -> dict[str, float | None]:
    """Run :func:`_measure` in a fresh interpreter that imports unisockets from ``root``."""
    env = dict(os.environ, PYTHONPATH=str(root))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(seconds)]
    done = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=HANG, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"child for {root} failed:\n{done.stderr}")
    result: dict[str, float | None] = json.loads(done.stdout.splitlines()[-1])
    return result


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f}" if values else f"{'-':>8}"


def _table(runs: dict[str, list[dict[str, float | None]]]) -> list[str]:
    """The report: one row per (message, operation), one column per tree, and the ratio."""
    trees = list(runs)
    header = f"  {'message, operation':<28}" + "".join(f"{tree:>12}" for tree in trees)
    lines = [header + ("   after/before" if len(trees) == 2 else "")]
    for opcode in MESSAGES:
        for operation in OPERATIONS:
            key = f"{opcode} {operation}"
            columns = []
            for tree in trees:
                values = [v for run in runs[tree] if (v := run.get(key)) is not None]
                columns.append(values)
            line = f"  {key:<28}" + "".join(f"{_cell(v):>12}" for v in columns)
            if len(trees) == 2 and all(columns):
                ratio = statistics.median(columns[1]) / statistics.median(columns[0])
                line += f"{ratio:14.2f}x"
            lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status (1 if a child failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short loops and one run")
    parser.add_argument("--repeat", type=int, default=None, help="child runs per tree (3)")
    parser.add_argument("--json", default=None, help="append results to this JSON-lines file")
    parser.add_argument("--baseline", default=None, help="another checkout to compare with")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_measure(float(json.loads(args.child)))), flush=True)
        return 0

    from benchmarks import common

    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    seconds = 0.005 if args.quick else 0.05
    trees: dict[str, Path] = {}
    if args.baseline is not None:
        baseline = Path(args.baseline).resolve()
        if not (baseline / "unisockets" / "protocol" / "wire.py").is_file():
            parser.error(f"no unisockets/protocol/wire.py under {baseline}")
        trees["before"] = baseline
    trees["after" if trees else "this tree"] = ROOT
    print("== protocol codec: µs per operation (lower is better)", flush=True)
    print(f"   {common.machine_summary()}", flush=True)
    shown = ", ".join(f"{name} = {path}" for name, path in trees.items())
    print(f"   {shown}; {repeat} run(s) each{' (quick)' if args.quick else ''}", flush=True)
    runs: dict[str, list[dict[str, float | None]]] = {name: [] for name in trees}
    for run in range(repeat):
        for name, root in trees.items():  # interleaved: a busy phase slows every tree alike
            try:
                runs[name].append(_run_child(root, seconds))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"   run {run + 1}, {name}: FAILED {exc}", file=sys.stderr, flush=True)
                return 1
            print(f"   run {run + 1}/{repeat}, {name}: done", file=sys.stderr, flush=True)
    print(
        f"signaling messages [µs per call, median of {repeat} child run(s), "
        "each the best of 5 loops]",
        flush=True,
    )
    print("\n".join(_table(runs)), flush=True)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as out:
            for name, results in runs.items():
                record: dict[str, Any] = {
                    "workload": "protocol_codec",
                    "unit": "us",
                    "tree": name,
                    "root": str(trees[name]),
                    "runs": results,
                }
                out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
