"""Bad options and failures of the command line: one clear line, a non-zero status, no traceback.

Every case runs ``python -m unisockets`` as a real process. A bad option is
click's usage error (status 2) whose ``Error:`` line names the option; a
failure at run time (nothing listening, a port in use, a peer gone) is one
``Error: ...`` line and status 1.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from .processes import TIMEOUT, UNISOCKETS, echo_client, echo_server, signaling_server


def unisockets(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m unisockets ARGS`` with empty stdin; return what it did."""
    return subprocess.run(
        [*UNISOCKETS, *args], input="", capture_output=True, text=True, timeout=timeout
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``Error:`` line of stderr (and no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


NODE_COMMANDS = [
    ("echo-server", "--native"),
    ("echo-client", "--native", "--remote", "127.0.0.1:1"),
    ("demo",),
    ("run", __file__, "--native"),
]


@pytest.mark.parametrize(
    ("args", "option", "text"),
    [
        (("echo-server", "--native", "--port", "70000"), "--port", "70000 is not in the range"),
        (("echo-server", "--native", "--log-level", "verbose"), "--log-level", "'verbose'"),
        (("echo-client", "--native", "--remote", "h:1", "--log-level", "loud"), "--log-level", ""),
        (("signaling-server", "--log-level", "verbose"), "--log-level", "'verbose'"),
        (("signaling-server", "--ping-interval", "inf"), "--ping-interval", "not a finite"),
        (("signaling-server", "--rate", "nan"), "--rate", "not a finite"),
        (("run", __file__, "--native", "--log-level", "verbose"), "--log-level", "'verbose'"),
        (("echo-server", "--signaling", "ws://127.0.0.1:1", "--subnet", "10.0"), "--subnet", ""),
        (("echo-server", "--signaling", "http://127.0.0.1:6999"), "--signaling", "ws://"),
        (("echo-client", "--signaling", "127.0.0.1:6999", "--remote", "h:1"), "--signaling", ""),
        (("run", __file__, "--signaling", "localhost"), "--signaling", ""),
        (("echo-client", "--native", "--remote", "10.0.0.1"), "--remote", "HOST:PORT"),
        (("echo-client", "--native", "--remote", "h:99999"), "--remote", "HOST:PORT"),
        (("echo-server", "--native", "--ice-server", "http://x"), "--ice-server", "stun:"),
        (("demo", "--ice-server", "stun:a", "--ice-server", "stun:b"), "--ice-server", "one stun"),
        (("demo", "--ice-server", "turn:a?transport=tls"), "--ice-server", "transport=tls"),
        (("demo", "--link-timeout", "0"), "--link-timeout", ""),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_it(
    args: tuple[str, ...], option: str, text: str
) -> None:
    result = unisockets(*args)
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert f"'{option}'" in line and text in line, line


@pytest.mark.parametrize("command", NODE_COMMANDS, ids=lambda command: command[0])
def test_turn_needs_credentials_and_credentials_need_turn(command: tuple[str, ...]) -> None:
    result = unisockets(*command, "--ice-server", "turn:turn.example.org")
    assert result.returncode == 2
    assert "--ice-username and --ice-credential" in error_line(result)
    result = unisockets(*command, "--ice-username", "u", "--ice-credential", "p")
    assert result.returncode == 2
    assert "turn:" in error_line(result)


@pytest.mark.parametrize(
    "command", [("echo-server",), ("echo-client", "--remote", "10.0.0.1:1")], ids=lambda c: c[0]
)
def test_no_signaling_server_is_one_line(command: tuple[str, ...]) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    result = unisockets(*command, "--signaling", url)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"Error: cannot join {url}: all attempts to connect to 127.0.0.1:{port} failed"
    ]


def test_native_port_in_use_names_the_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = unisockets("echo-server", "--native", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: cannot listen on port {port} (--port): Address already in use"
    )


def test_refused_remote_names_the_option() -> None:
    port = free_port()
    result = unisockets("echo-client", "--native", "--remote", f"127.0.0.1:{port}")
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"Error: cannot connect to 127.0.0.1:{port} (--remote): "), line
    assert "refused" in line, line


@pytest.mark.timeout(180)
def test_wss_against_a_plain_server_says_tls_failed() -> None:
    with signaling_server() as url:
        wss = url.replace("ws://", "wss://")
        result = unisockets("echo-server", "--signaling", wss)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"Error: cannot join {wss}: TLS handshake with 127.0.0.1:"), line
    assert "a ws:// server?" in line, line


@pytest.mark.timeout(180)
def test_a_peer_dying_mid_session_is_one_line() -> None:
    with (
        signaling_server() as url,
        echo_server(url) as (server, address),
        echo_client(url, address) as client,
    ):
        server.process.send_signal(signal.SIGKILL)
        server.wait()
        assert client.wait() == 1, client.report()
        assert client.stderr == [f"Error: the connection to {address} broke: the pipe broke"]


@pytest.mark.timeout(180)
def test_a_client_dying_mid_session_is_one_line_and_the_server_goes_on() -> None:
    with signaling_server() as url, echo_server(url) as (server, address):
        for _ in range(2):
            with echo_client(url, address) as client:
                server.expect("accepted ")
                client.process.kill()
                client.wait()
            assert server.expect("connection ").endswith(" broke: the pipe broke")
        assert server.process.poll() is None
        assert server.stderr == []


def test_help_shows_every_command_description_whole() -> None:
    result = unisockets("--help")
    assert result.returncode == 0
    commands = result.stdout.split("Commands:")[1].splitlines()[1:]
    assert len(commands) == 5, result.stdout
    for line in commands:
        assert not line.rstrip().endswith("..."), line
        assert line.rstrip().endswith("."), line
    assert "--subnet A.B.C" in unisockets("echo-server", "--help").stdout
    assert "Overlay subnet to join" in unisockets("echo-client", "--help").stdout


def test_run_without_the_wasm_extra_names_it() -> None:
    # wasmtime made unimportable, as in an installation without the wasm extra.
    code = "import sys; sys.modules['wasmtime'] = None; from unisockets.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "run", __file__, "--native"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    assert error_line(result).startswith(
        "Error: unisockets run needs the wasm extra: pip install 'unisockets[wasm]'"
    )
