"""``benchmarks.streams_under_load`` runs as users run it and counts every stream.

CI asserts no figure: only that both runs (without and with a CPU hog) end,
and that each row counts all its streams (survivors plus failures).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_reports_survivors_with_and_without_a_hog() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.streams_under_load", "--quick", "--hogs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # only to turn a hang into a failure
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = re.findall(
        r"^\| (no hog|1 hog\(s\)) \| 1 \| (\d+) / 10 \| [\d.]+ \| (.*) \|$", result.stdout, re.M
    )
    assert [load for load, _, _ in rows] == ["no hog", "1 hog(s)"], result.stdout
    for _load, survivors, failures in rows:
        counted = (
            0 if failures == "none" else sum(map(int, re.findall(r"(?:^|, )(\d+) ", failures)))
        )
        assert int(survivors) + counted == 10, result.stdout
