"""The command line as real processes: signaling server, echo server, echo client, demo."""

from __future__ import annotations

import subprocess

import pytest

from .processes import UNISOCKETS, child, signaling_server
from .stun import stun_server


@pytest.mark.timeout(180)
def test_echo_server_and_client_as_three_processes() -> None:
    with (
        signaling_server() as url,
        child(
            "echo-server", "--signaling", url, "--port", "1234", "--ice-address", "127.0.0.1"
        ) as echo_server,
    ):
        address = echo_server.expect("listening on ").removeprefix("listening on ")
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
        assert echo_server.expect("accepted 10.0.0.2:")
        assert echo_server.expect("closed 10.0.0.2:")


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


@pytest.mark.timeout(180)
def test_demo_asks_the_stun_server_given_with_ice_server() -> None:
    with stun_server() as stun:
        result = subprocess.run(
            [
                *UNISOCKETS,
                "demo",
                "--messages",
                "1",
                "--ice-server",
                stun.url,
                "--link-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=150,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().splitlines()[-1].startswith("done: 1 echoes")
    # Each node's ICE agent asked for its server-reflexive address from its host candidate.
    assert stun.requests, "the STUN server was never asked"
    assert {host for host, _ in stun.requests} == {"127.0.0.1"}


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
