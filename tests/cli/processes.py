"""``python -m unisockets ...`` as a child process whose output is read with deadlines.

A thread per pipe moves lines into a queue, so a test waits for a line (an
event) with a bounded wait instead of a sleep, and never blocks on a pipe
of a process that hangs.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO

import pytest

UNISOCKETS = [sys.executable, "-m", "unisockets"]

#: Seconds a child gets to print an expected line or to exit (a loaded 2-core machine).
TIMEOUT = 180.0


def default_sigint() -> None:
    """For a child's ``preexec_fn``: Ctrl-C as in a terminal, whoever started the tests.

    A shell starts a background job with SIGINT ignored (POSIX, without job
    control), and a child inherits that; Python then keeps ignoring it, so a
    test of what Ctrl-C does would test nothing. A child of these tests
    starts with SIGINT at its default, as a program a user runs does.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A running ``unisockets`` command; its stdout and stderr lines are collected as they come."""

    def __init__(self, *args: str, stdin: int | None = subprocess.PIPE) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [*UNISOCKETS, *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=default_sigint,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._queues: dict[str, queue.Queue[str | None]] = {
            "stdout": queue.Queue(),
            "stderr": queue.Queue(),
        }
        assert self.process.stdout is not None and self.process.stderr is not None
        self._threads = [
            threading.Thread(
                target=self._pump, args=(self.process.stdout, self.stdout, self._queues["stdout"])
            ),
            threading.Thread(
                target=self._pump, args=(self.process.stderr, self.stderr, self._queues["stderr"])
            ),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(pipe: IO[str], lines: list[str], into: queue.Queue[str | None]) -> None:
        for line in pipe:
            lines.append(line.rstrip("\n"))
            into.put(line.rstrip("\n"))
        into.put(None)

    def expect(
        self, prefix: str | tuple[str, ...], timeout: float = TIMEOUT, *, stream: str = "stdout"
    ) -> str:
        """Wait for the next line of ``stream`` starting with ``prefix`` (or one of them).

        Fails the test at the stream's end or after ``timeout`` seconds.
        """
        lines = self._queues[stream]
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line {prefix!r} within {timeout} s: {self.report()}")
            if line is None:
                lines.put(None)
                pytest.fail(f"end of {stream} before a line {prefix!r}: {self.report()}")
            if line.startswith(prefix):
                return line

    def send(self, text: str) -> None:
        """Write ``text`` to the child's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        """End the child's input."""
        assert self.process.stdin is not None
        self.process.stdin.close()

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for the exit status (and the last output) for at most ``timeout`` seconds."""
        status = self.process.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        return status

    def stop(self, signum: int, timeout: float = TIMEOUT) -> int:
        """Send ``signum`` and wait for the exit status."""
        self.process.send_signal(signum)
        return self.wait(timeout)

    def report(self) -> str:
        """What the child printed so far, for assertion messages."""
        return f"{self.args}: stdout {self.stdout!r}, stderr {self.stderr!r}"

    def kill(self) -> None:
        """Kill the child if it still runs and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def child(*args: str, stdin: int | None = subprocess.PIPE) -> Iterator[Child]:
    """A :class:`Child` that is interrupted, then killed, and reaped on leaving the block."""
    process = Child(*args, stdin=stdin)
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.process.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                process.process.wait(10)
        process.kill()


@contextmanager
def signaling_server() -> Iterator[str]:
    """A ``unisockets signaling-server`` on 127.0.0.1 with a kernel-picked port; yields its URL."""
    with child("signaling-server", "--host", "127.0.0.1", "--port", "0") as server:
        yield server.expect("ws://")


def assert_one_line(stderr: list[str], text: str) -> None:
    """``stderr`` is the one line ``text`` and no traceback."""
    assert not any("Traceback" in line for line in stderr), "\n".join(stderr)
    assert stderr == [text], "\n".join(stderr)


LOOPBACK = ("--ice-address", "127.0.0.1")


@contextmanager
def echo_server(url: str) -> Iterator[tuple[Child, str]]:
    """An ``echo-server`` of the server at ``url``; yields it and its address once listening."""
    with child("echo-server", "--signaling", url, *LOOPBACK) as server:
        yield server, server.expect("listening on ").removeprefix("listening on ")


@contextmanager
def echo_client(url: str, address: str) -> Iterator[Child]:
    """An ``echo-client`` connected to ``address``; yields it once its line ``ping`` came back."""
    with child("echo-client", "--signaling", url, *LOOPBACK, "--remote", address) as client:
        client.expect("connected ")
        client.send("ping\n")
        assert client.expect("ping") == "ping"
        yield client
