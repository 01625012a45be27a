"""Ctrl-C (SIGINT) and SIGTERM in every command: 130 with one line, or 0; never a traceback.

Each command runs as a real process; the test waits for the line that says it
got where the signal should find it (listening, connected, an echo), then
sends the signal.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .processes import (
    TIMEOUT,
    assert_one_line,
    child,
    default_sigint,
    echo_client,
    echo_server,
    signaling_server,
)

pytestmark = pytest.mark.timeout(400)


def test_echo_server_idle_ctrl_c_exits_130_and_sigterm_0() -> None:
    with signaling_server() as url:
        with echo_server(url) as (server, _):
            assert server.stop(signal.SIGINT) == 130
            assert_one_line(server.stderr, "unisockets echo-server: interrupted")
        with echo_server(url) as (server, _):
            assert server.stop(signal.SIGTERM) == 0
            assert server.stderr == []


def test_ctrl_c_in_a_connected_client_and_in_a_serving_server() -> None:
    with signaling_server() as url, echo_server(url) as (server, address):
        with echo_client(url, address) as client:
            assert client.stop(signal.SIGINT) == 130
            assert_one_line(client.stderr, "unisockets echo-client: interrupted")
        # The client's node closed the stream on its way out: the server says so, and goes on.
        server.expect(("closed ", "connection 10.0.0.2:0 broke: "))

        # The server with a connection open: Ctrl-C while serving it.
        with echo_client(url, address) as client:
            server.expect("accepted ")
            assert server.stop(signal.SIGINT) == 130
            assert_one_line(server.stderr, "unisockets echo-server: interrupted")
            # The client sees its peer go: the stream ends or breaks, one line either way.
            status = client.wait()
            assert not any("Traceback" in line for line in client.stderr), client.report()
            if status != 0:
                assert len(client.stderr) == 1, client.report()
                assert client.stderr[0].startswith("Error: the connection to "), client.report()


def test_sigterm_in_a_connected_client_exits_0() -> None:
    with (
        signaling_server() as url,
        echo_server(url) as (_, address),
        echo_client(url, address) as client,
    ):
        assert client.stop(signal.SIGTERM) == 0
        assert client.stderr == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo_stops_on_a_signal(signum: signal.Signals) -> None:
    # A long demo: the signal finds it echoing, well before its end.
    with child("demo", "--messages", "1000000", stdin=subprocess.DEVNULL) as demo:
        demo.expect("  first echo:")
        status = demo.stop(signum)
        if signum == signal.SIGINT:
            assert status == 130
            assert_one_line(demo.stderr, "unisockets demo: interrupted")
        else:
            assert status == 0
            assert demo.stderr == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signaling_server_stops_on_a_signal(signum: signal.Signals) -> None:
    with child("signaling-server", "--host", "127.0.0.1", "--port", "0") as server:
        server.expect("ws://127.0.0.1:")
        status = server.stop(signum)
        assert not any("Traceback" in line for line in server.stderr), server.report()
        assert any(line.endswith(f"{signum.name}: shutting down") for line in server.stderr)
        if signum == signal.SIGINT:
            assert status == 130
            assert server.stderr[-1] == "unisockets signaling-server: interrupted"
        else:
            assert status == 0


def test_run_stops_on_ctrl_c_while_the_program_waits(tmp_path: Path) -> None:
    # A WebAssembly program that blocks reading its stdin (a pipe kept open).
    pytest.importorskip("wasmtime")
    program = tmp_path / "cat.wat"
    program.write_text(
        """(module
          (import "wasi_snapshot_preview1" "fd_read"
            (func $fd_read (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 64))
            (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
    )
    with child("run", str(program), "--native") as run:
        run.expect("unisockets run: cat.wat on ", stream="stderr")
        assert run.stop(signal.SIGINT) == 130
        assert run.stderr[1:] == ["unisockets run: interrupted"], run.report()


def test_ctrl_c_before_trio_runs_exits_130_with_one_line() -> None:
    # The SIGINT lands while the command sets up (here: in its logging set-up, before
    # trio.run), as when Ctrl-C comes during the imports: not click's "Aborted!", status 1.
    code = (
        "import logging, os, signal\n"
        "logging.basicConfig = lambda **kw: os.kill(os.getpid(), signal.SIGINT)\n"
        "from unisockets.cli import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "echo-server", "--native"],
        preexec_fn=default_sigint,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 130
    assert_one_line(result.stderr.splitlines(), "unisockets echo-server: interrupted")
