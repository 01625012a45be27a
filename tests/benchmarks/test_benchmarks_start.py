"""The benchmark scripts start and complete with ``--quick`` sizes (CI asserts no speed).

Each script runs as users run it, ``python -m benchmarks.<name> --quick``, in a
subprocess from the repository root, with every backend and both process
layouts; a failed measurement makes a script exit 1. The timeouts only turn a
hang into a failure. The statistics helpers the scripts report with are
checked directly.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import common
from benchmarks.run_all import SCRIPTS

ROOT = Path(__file__).resolve().parents[2]
HANG = 600  # seconds: only to turn a hang into a failure

#: What each script's report must contain (titles and, where there is a pair, a ratio).
#: ``webrtc_stacks`` is not here: its third-party rows need a test of their own
#: (``test_webrtc_stacks.py``).
EXPECTED = {
    "bulk": ["bulk throughput", "ratio to aiortc data channel (raw)", "ratio to trio TCP"],
    "rtt": ["echo round trip", ": p99", "ratio to aiortc data channel (raw)"],
    "connect": ["(warm)", "(cold)", "ratio to aiortc data channel (raw)"],
    "many_streams": ["concurrent streams", "peak RSS of the accepting process"],
    "signaling_load": ["relayed/s", "RSS/node", "N = 20"],
    "protocol_codec": ["µs per operation", "candidate decode_canonical", "connect construct"],
    "datagrams": [
        "datagrams delivered per second",
        "ratio to aiortc unreliable channel (raw)",
        "ratio to trio UDP socket (raw)",
        "datagrams lost",
        "one-way latency",
    ],
    "asyncio_driver": ["bulk throughput", "echo round trip p99", "ratio to aiortc data channel"],
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HANG,
    )


@pytest.mark.slow
@pytest.mark.parametrize("script", [name for name in SCRIPTS if name in EXPECTED])
def test_script_completes_quick(script: str) -> None:
    result = _run(f"benchmarks.{script}", "--quick")
    assert result.returncode == 0, result.stdout + result.stderr
    for text in EXPECTED[script]:
        assert text in result.stdout, f"{text!r} missing from:\n{result.stdout}"
    assert "n/a" not in result.stdout, result.stdout + result.stderr


@pytest.mark.slow
def test_run_all_runs_the_named_scripts_and_rejects_unknown_ones() -> None:
    result = _run("benchmarks.run_all", "--quick", "--only", "rtt", "--repeat", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== rtt: ok" in result.stdout
    assert "== all benchmarks completed" in result.stdout
    assert "bulk" not in result.stdout.replace("benchmarks:", "")
    bad = _run("benchmarks.run_all", "--only", "nonesuch")
    assert bad.returncode == 2
    assert "unknown script(s): nonesuch" in bad.stderr


@pytest.mark.slow
def test_protocol_codec_compares_with_a_baseline_tree_and_rejects_a_missing_one() -> None:
    result = _run("benchmarks.protocol_codec", "--quick", "--baseline", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"before = {ROOT}, after = {ROOT}" in result.stdout
    assert "after/before" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("  candidate ")]
    assert len(rows) == 4
    assert all(row.endswith("x") for row in rows), rows
    bad = _run("benchmarks.protocol_codec", "--baseline", str(ROOT / "nonesuch"))
    assert bad.returncode == 2
    assert "no unisockets/protocol/wire.py under" in bad.stderr


def test_percentile_is_nearest_rank_and_median_is_the_middle() -> None:
    values = list(range(1, 1001))  # 1..1000
    assert common.percentile(values, 99) == 990
    assert common.percentile(values, 50) == 500
    assert common.percentile(values, 100) == 1000
    assert common.percentile([7.0], 99) == 7.0
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    assert math.isnan(common.percentile([], 50))
    assert math.isnan(common.median([]))


def test_report_prints_ratios_to_the_raw_backend_and_judges_targets() -> None:
    report = common.Report(
        "throughput",
        "MB/s",
        higher_is_better=True,
        labels={"raw": "raw thing", "ours": "our thing"},
        pairs=[("ours", "raw")],
        targets={"ours": (0.9, ">= 0.9x raw")},
    )
    for value in (10.0, 12.0, 8.0):
        report.add("raw", 1, value)
    for value in (9.0, 9.5):
        report.add("ours", 1, value)
    report.fail("ours", 2, "boom")
    assert report.ratio("ours", "raw", 1) == pytest.approx(9.25 / 10.0)
    text = "\n".join(report.lines())
    assert "ratio to raw thing" in text
    assert "0.93x" in text
    assert "target >= 0.9x raw: hit" in text
    assert "(boom)" in text

    slow = common.Report(
        "rtt",
        "us",
        higher_is_better=False,
        labels={"raw": "raw", "ours": "ours"},
        pairs=[("ours", "raw")],
        targets={"ours": (1.2, "<= 1.2x raw")},
    )
    slow.add("raw", 1, 100.0)
    slow.add("ours", 1, 130.0)
    assert "target <= 1.2x raw: MISS" in "\n".join(slow.lines())

    absolute = common.Report(
        "connect",
        "ms",
        higher_is_better=False,
        labels={"raw": "raw", "ours": "ours"},
        pairs=[("ours", "raw")],
        targets={"ours": (5.0, "abs <= 5 ms")},
    )
    absolute.add("raw", 1, 1.0)
    absolute.add("ours", 1, 4.0)  # 4x the raw figure, but under the absolute 5 ms
    assert "target <= 5 ms: hit" in "\n".join(absolute.lines())


def test_memory_probes_read_this_process_and_the_peak_resets() -> None:
    before = common.rss()
    assert before > 1024 * 1024
    block = b"\x01" * (100 * common.MIB)  # written: every page is resident
    high = common.peak_rss()
    assert high >= before + 90 * common.MIB
    del block
    common.reset_peak_rss()
    assert common.peak_rss() < high - 50 * common.MIB
