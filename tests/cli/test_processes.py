"""The command line as real processes: signaling server, echo server, echo client, demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

UNISOCKETS = [sys.executable, "-m", "unisockets"]


@contextmanager
def running(*args: str) -> Iterator[subprocess.Popen[str]]:
    """A ``python -m unisockets ...`` subprocess, interrupted and reaped on exit."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*UNISOCKETS, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def read_line_starting(process: subprocess.Popen[str], prefix: str) -> str:
    """Read the process's stdout until a line starts with ``prefix``; fail at EOF."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        if line.startswith(prefix):
            return line.strip()
        seen.append(line)
    stderr = process.stderr.read() if process.stderr else ""
    pytest.fail(f"no line starting {prefix!r}; stdout {seen!r}; stderr {stderr[-3000:]}")


@pytest.mark.timeout(180)
def test_echo_server_and_client_as_three_processes() -> None:
    with running("signaling-server", "--host", "127.0.0.1", "--port", "0") as server:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:"), url
        with running(
            "echo-server", "--signaling", url, "--port", "1234", "--ice-address", "127.0.0.1"
        ) as echo_server:
            listening = read_line_starting(echo_server, "listening on ")
            address = listening.removeprefix("listening on ")
            assert address == "10.0.0.1:1234"
            client = subprocess.run(
                [
                    *UNISOCKETS,
                    "echo-client",
                    "--signaling",
                    url,
                    "--remote",
                    address,
                    "--ice-address",
                    "127.0.0.1",
                ],
                input="hello\nover webrtc\n",
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert client.returncode == 0, client.stderr
            lines = client.stdout.splitlines()
            assert lines[0].startswith("connected 10.0.0.2:") and lines[0].endswith(address)
            assert lines[1:] == ["hello", "over webrtc"]
            assert read_line_starting(echo_server, "accepted 10.0.0.2:")
            assert read_line_starting(echo_server, "closed 10.0.0.2:")


@pytest.mark.timeout(120)
def test_demo_runs_and_exits_zero() -> None:
    result = subprocess.run(
        [*UNISOCKETS, "demo", "--messages", "3"], capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "node A joined as 10.0.0.1" in out
    assert "node B joined as 10.0.0.2" in out
    assert "first echo: 'hello #1 from 10.0.0.2'" in out
    assert "echo: 'hello #3 from 10.0.0.2'" in out
    assert out.rstrip().splitlines()[-1].startswith("done: 3 echoes")


def test_echo_client_native_refused_reports_and_fails() -> None:
    result = subprocess.run(
        [*UNISOCKETS, "echo-client", "--native", "--remote", "127.0.0.1:1"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Connection refused" in result.stderr
