"""Run every benchmark script, one after the other, and say which ones failed.

Each script runs in its own process (``python -m benchmarks.<name>``) with
the options given here passed on, so one crash does not stop the others.
Run from the repository root::

    .venv/bin/python -m benchmarks.run_all              # the full set (long: ~30 min)
    .venv/bin/python -m benchmarks.run_all --quick      # tiny sizes, ~1 min
    .venv/bin/python -m benchmarks.run_all --only bulk,rtt --json results.jsonl

Exits 1 if any script failed (a failed measurement counts).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from .common import ROOT, machine_summary

#: The workload scripts, in the order they run.
SCRIPTS = (
    "bulk",
    "rtt",
    "connect",
    "many_streams",
    "signaling_load",
    "protocol_codec",
    "datagrams",
    "asyncio_driver",
    "webrtc_stacks",
)


def main(argv: list[str] | None = None) -> int:
    """Run the scripts; return the exit status (0 when all succeeded)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat each")
    parser.add_argument("--only", default=",".join(SCRIPTS), help="comma list of scripts")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement")
    parser.add_argument("--json", default=None, help="append every result to this JSON-lines file")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per script (3600)")
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name]
    unknown = set(names) - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown script(s): {', '.join(sorted(unknown))}")
    passed = []
    if args.quick:
        passed.append("--quick")
    if args.repeat is not None:
        passed += ["--repeat", str(args.repeat)]
    if args.json:
        passed += ["--json", args.json]
    print(f"== unisockets benchmarks: {machine_summary()}", flush=True)
    failed = []
    for name in names:
        started = time.perf_counter()
        command = [sys.executable, "-m", f"benchmarks.{name}", *passed]
        try:
            status = subprocess.run(command, cwd=ROOT, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            status = -1
            print(f"== {name}: timed out after {args.timeout:g} s", flush=True)
        took = time.perf_counter() - started
        print(f"== {name}: {'ok' if status == 0 else 'FAILED'} in {took:.0f} s\n", flush=True)
        if status != 0:
            failed.append(name)
    if failed:
        print(f"== failed: {', '.join(failed)}", flush=True)
        return 1
    print("== all benchmarks completed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
