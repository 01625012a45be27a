"""``unisockets run`` as real processes: guests in two processes echo over WebRTC."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import WasmFiles
from .test_native import free_port

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

UNISOCKETS = [sys.executable, "-m", "unisockets"]
LOOPBACK = ["--ice-address", "127.0.0.1"]


@contextmanager
def running(*args: str) -> Iterator[subprocess.Popen[str]]:
    """A ``python -m unisockets ...`` process; interrupted (SIGINT) and reaped on exit."""
    process = subprocess.Popen(
        [*UNISOCKETS, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def read_line(stream: object, prefix: str) -> str:
    """Read lines until one starts with ``prefix``; fail at end of output."""
    seen = []
    for line in stream:  # type: ignore[attr-defined]
        if line.startswith(prefix):
            return str(line).strip()
        seen.append(line)
    pytest.fail(f"no line starting {prefix!r} in {seen!r}")


@contextmanager
def signaling_server() -> Iterator[str]:
    with running("signaling-server", "--host", "127.0.0.1", "--port", "0") as server:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:"), url
        yield url


def run_client(program: str, url: str, text: str) -> subprocess.CompletedProcess[str]:
    """Run a client with its default address, the original's: 127.0.0.1:1234."""
    return subprocess.run(
        [*UNISOCKETS, "run", program, "--signaling", url, *LOOPBACK],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_c_server_and_c_and_go_clients_as_processes_over_webrtc(wasm_files: WasmFiles) -> None:
    server_command = ["run", str(wasm_files.echo_server), "--signaling"]
    with signaling_server() as url, running(*server_command, url, *LOOPBACK) as server:
        assert server.stdout is not None and server.stderr is not None
        assert read_line(server.stderr, "unisockets run:").endswith("on 10.0.0.1")
        assert read_line(server.stdout, "listening on") == "listening on 127.0.0.1:1234"

        client = run_client(str(wasm_files.echo_client), url, "hello\nover webrtc\n")
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines() == ["hello", "over webrtc"]
        # the server's node is 10.0.0.1, the client's 10.0.0.2: 127.0.0.1 is an overlay address
        assert "connected to 127.0.0.1:1234" in client.stderr
        assert read_line(server.stdout, "accepted ").startswith("accepted 10.0.0.")
        assert read_line(server.stdout, "closed ").startswith("closed 10.0.0.")

        go_client = run_client(str(wasm_files.go_echo_client), url, "from go\n")
        assert go_client.returncode == 0, go_client.stderr
        assert go_client.stdout.splitlines() == ["from go"]

        # Ctrl-C stops the server blocked in accept: exit 130, no crash.
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 130
        rest = server.stderr.read()
        assert "panic" not in rest and "Traceback" not in rest, rest


def test_refused_connect_exits_with_the_programs_status(wasm_files: WasmFiles) -> None:
    result = subprocess.run(
        [*UNISOCKETS, "run", str(wasm_files.echo_client), "--native", "--", "127.0.0.1", "1"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "connect: Connection refused" in result.stderr


def test_ctrl_c_stops_a_client_waiting_for_its_input(wasm_files: WasmFiles) -> None:
    # Over native TCP; the client then waits on its stdin (a pipe kept open).
    port = str(free_port())
    server_command = ["run", str(wasm_files.echo_server), "--native"]
    client_command = ["run", str(wasm_files.echo_client), "--native"]
    with (
        running(*server_command, "--", "127.0.0.1", port) as server,
    ):
        assert server.stdout is not None
        read_line(server.stdout, "listening on")
        with running(*client_command, "--", "127.0.0.1", port) as client:
            assert client.stderr is not None
            read_line(client.stderr, "connected to")
            client.send_signal(signal.SIGINT)
            assert client.wait(30) == 130


def test_a_trapping_program_exits_134_with_the_trap(tmp_path: Path) -> None:
    program = tmp_path / "trap.wat"
    program.write_text('(module (memory (export "memory") 1) (func (export "_start") unreachable))')
    result = subprocess.run(
        [*UNISOCKETS, "run", str(program), "--native"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 134
    assert "trap.wat trapped" in result.stderr and "unreachable" in result.stderr
