"""A busy machine on demand: CPU-bound processes running for the duration of a test.

``cpu_load`` starts :data:`BURNERS` processes that spin in pure Python (one
per core of a CI machine), waits until each says it is spinning, and kills
them when the test ends. Each burner also stops by itself after
:data:`MAX_SECONDS`, or as soon as its parent is gone, so none outlives a
crashed or interrupted run. Tests that use it show that no liveness timeout
fires on a starved CPU (a link, a stream, a signaling session must survive).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

#: Processes started: two, the cores of a CI machine.
BURNERS = 2
#: Seconds a burner spins at the most (its own bound; the fixture kills it sooner).
MAX_SECONDS = 600

_BURN = f"""
import os, sys, time
parent = os.getppid()
print("spinning", flush=True)
deadline = time.monotonic() + {MAX_SECONDS}
while time.monotonic() < deadline and os.getppid() == parent:
    for _ in range(200_000):
        pass
"""


@pytest.fixture
def cpu_load() -> Iterator[int]:
    """Run :data:`BURNERS` CPU-bound processes while the test runs.

    Yields:
        The number of busy processes (once all of them are spinning).
    """
    burners: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(BURNERS):
            burners.append(
                subprocess.Popen(
                    [sys.executable, "-c", _BURN],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    start_new_session=True,  # a Ctrl-C in the terminal is for pytest alone
                )
            )
        for burner in burners:
            assert burner.stdout is not None
            line = burner.stdout.readline()  # returns at "spinning" or at EOF (it died)
            assert line == b"spinning\n", f"a CPU burner did not start: {line!r}"
        yield len(burners)
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()
            if burner.stdout is not None:
                burner.stdout.close()
