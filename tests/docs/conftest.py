"""Fixtures for the documentation tests: real child processes and a real signaling server."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
HOOKS = DOCS / "hooks"

#: Seconds any single wait on a child process may take before the test fails (hang guard).
TIMEOUT = 90.0


class Child:
    """A child process whose standard output is read line by line, with timeouts.

    A reader thread moves stdout lines into a queue; it ends when the process
    closes its stdout, and :meth:`stop` joins it, so no thread outlives the test.
    """

    def __init__(self, *args: str | os.PathLike[str], cwd: Path | None = None) -> None:
        self.args = [str(arg) for arg in args]
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, prefix: str, timeout: float = TIMEOUT) -> str:
        """Return the next stdout line starting with ``prefix``; fail on EOF or timeout."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.stop()
                pytest.fail(
                    f"{self.args}: no line starting {prefix!r} within {timeout} s; "
                    f"stdout {self.seen!r}; stderr {self.stderr()[-3000:]}"
                )
            if line is None:
                self.stop()
                pytest.fail(
                    f"{self.args} ended before printing {prefix!r}: stdout "
                    f"{self.seen!r}; stderr {self.stderr()[-3000:]}"
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def stop(self) -> None:
        """Interrupt the process (SIGINT, then SIGKILL after 10 s) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(10)

    def stderr(self) -> str:
        """Everything the process wrote to stderr (only once it has ended)."""
        if self.process.poll() is None or self.process.stderr is None:
            return "(still running)"
        return self.process.stderr.read()


def run_python(*args: str | os.PathLike[str], timeout: float = TIMEOUT) -> str:
    """Run ``python ARGS...`` to completion; return its stdout, fail on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, (
        f"python {args} exited {result.returncode}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr[-5000:]}"
    )
    return result.stdout


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly (``mkdocs build --strict``) into a temporary directory, once."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-8000:]}"
    return out


@pytest.fixture
def signaling_url() -> Iterator[str]:
    """The URL of a real signaling server (``unisockets signaling-server``) on 127.0.0.1."""
    server = Child(
        sys.executable, "-m", "unisockets", "signaling-server", "--host", "127.0.0.1", "--port", "0"
    )
    try:
        yield server.wait_for_line("ws://127.0.0.1:")
    finally:
        server.stop()


@pytest.fixture
def child_processes() -> Iterator[list[Child]]:
    """A list to register :class:`Child` processes in; each is stopped after the test."""
    children: list[Child] = []
    try:
        yield children
    finally:
        for child in reversed(children):
            child.stop()
