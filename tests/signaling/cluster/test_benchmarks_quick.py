"""The multi-instance benchmark scripts complete with ``--quick`` sizes (no speed asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "signaling_cluster",
            ["1 instance, no Redis", "4 instance(s) over Redis", "latency_two_hops_ms"],
        ),
        ("signaling_cluster_alternatives", ["pubsub_hop_ms", "stream_hop_ms", "locked_input_ms"]),
    ],
)
def test_script_completes_quick(script: str, expected: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{script}", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for text in expected:
        assert text in result.stdout, f"{text!r} missing from:\n{result.stdout}"
