"""``unisockets signaling-server`` as a real process: URL on stdout, two nodes, clean signals."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trustme
from click.testing import CliRunner

from unisockets.cli import main
from unisockets.cli.signaling_server import parse_subnet_range
from unisockets.protocol import Greeting

from .server_helpers import TIMEOUT, open_member


class _Server:
    def __init__(self, process: trio.Process, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    async def stop(self, signum: int) -> int:
        """Send ``signum`` and return the exit status."""
        self.process.send_signal(signum)
        with trio.fail_after(TIMEOUT):
            return await self.process.wait()


@asynccontextmanager
async def _run_cli(tmp_path: Path, *args: str) -> AsyncIterator[_Server]:
    """Start the CLI on 127.0.0.1 with a kernel-picked port; kill it if the test fails."""
    log = tmp_path / "stderr.log"
    command = [sys.executable, "-m", "unisockets", "signaling-server", "--host", "127.0.0.1"]
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            [*command, "--port", "0", *args], stdout=subprocess.PIPE, stderr=stderr
        )
    try:
        assert process.stdout is not None
        output = b""
        with trio.fail_after(TIMEOUT):
            while b"\n" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"exited early: {log.read_text()}"
                output += chunk
        yield _Server(process, output.split(b"\n")[0].decode(), log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.trio
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_the_cli_serves_two_nodes_and_stops_on_a_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    async with _run_cli(tmp_path, "--subnet-range", "0-255") as server:
        assert server.url.startswith("ws://127.0.0.1:")
        assert not server.url.endswith(":0")
        async with open_member(server.url) as a, open_member(server.url) as b:
            assert (a.id, b.id) == ("10.0.0.0", "10.0.0.1")
            await a.expect(Greeting(offerer_id="10.0.0.0", answerer_id="10.0.0.1"))
            # Ctrl-C: 130 (128 + SIGINT, as a shell reports it); SIGTERM: a requested stop, 0.
            assert await server.stop(signum) == (130 if signum == signal.SIGINT else 0)
            closed = await a.closed()
            assert (closed.code, closed.reason) == (1001, "server shutting down")
    log = server.log.read_text()
    assert "join 10.0.0.0 (127.0.0.1:" in log
    assert f"{signum.name}: shutting down" in log


@pytest.mark.trio
async def test_the_cli_serves_wss_with_a_certificate_and_key(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    tls = ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    async with _run_cli(tmp_path, *tls) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        async with open_member(server.url, ssl_context=client_context) as a:
            assert a.id == "10.0.0.1"
        assert await server.stop(signal.SIGTERM) == 0


def test_bad_options_are_usage_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["signaling-server", "--subnet-range", "9-3"])
    assert result.exit_code == 2
    assert "expected 0 <= FIRST <= LAST <= 255" in result.output
    result = runner.invoke(main, ["signaling-server", "--tls-cert", __file__])
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key go together" in result.output


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            main, ["signaling-server", "--host", "127.0.0.1", "--port", str(port)]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1-254", range(1, 255)), ("0-255", range(0, 256)), (" 7 - 7 ", range(7, 8))],
)
def test_parse_subnet_range(text: str, expected: range) -> None:
    assert parse_subnet_range(text) == expected


@pytest.mark.parametrize("text", ["", "5", "1-", "-3", "a-b", "3-2", "0-256", "1-2-3"])
def test_parse_subnet_range_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_subnet_range(text)
