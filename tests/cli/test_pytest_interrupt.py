"""Ctrl-C during the test suite stops it as interrupted (exit status 2), not as a failed test.

trio delivers SIGINT as KeyboardInterrupt inside the test, and a nursery wraps
it in an exception group, which pytest would otherwise count as the test's
failure and go on with the next test. tests/conftest.py unwraps it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .processes import default_sigint

ROOT = Path(__file__).resolve().parents[2]

INNER = """
import pytest
import trio


@pytest.mark.trio
async def test_waits_in_a_nursery() -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
        print("waiting for Ctrl-C", flush=True)
        await trio.sleep_forever()


def test_after_the_interrupt() -> None:
    print("the next test ran", flush=True)
"""


@pytest.mark.timeout(300)
def test_ctrl_c_in_a_trio_test_interrupts_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-s",
            "-p",
            "tests.conftest",  # the hook under test, as the suite loads it
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            str(tmp_path / "test_inner.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # ends at EOF if pytest exits first
            seen.append(line)
            if "waiting for Ctrl-C" in line:
                break
        else:
            pytest.fail(f"the inner test did not start: {''.join(seen)}")
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=180)  # a hang guard: a starved CPU is slow
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(seen) + rest
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output, output
    assert "the next test ran" not in output, output
    assert "failed" not in output, output
