"""Every example under examples/ (included into the docs) runs for real.

Each example runs as its own process, as a reader would run it: the
WebRTC examples against a real signaling server on 127.0.0.1 (the
``unisockets signaling-server`` command), the native ones on OS TCP.
"""

from __future__ import annotations

import sys

import pytest

from .conftest import EXAMPLES, Child, run_python

#: The example files each test below runs; test_every_example_is_run checks the list.
RUN_BY_TESTS = {
    "trio/echo_server.py",
    "trio/echo_client.py",
    "anyio/echo_server.py",
    "anyio/echo_client.py",
    "asyncio/echo_server.py",
    "asyncio/echo_client.py",
    "native/echo_server.py",
    "native/echo_client.py",
    "asyncio_sans_io/main.py",
    "asyncio_sans_io/driver.py",  # imported by main.py
    "udp/echo_server.py",
    "udp/echo_client.py",
}

pytestmark = pytest.mark.timeout(240)


def test_every_example_is_run() -> None:
    found = {
        path.relative_to(EXAMPLES).as_posix()
        for folder in ("trio", "anyio", "asyncio", "native", "asyncio_sans_io", "udp")
        for path in (EXAMPLES / folder).glob("*.py")
    }
    assert found == RUN_BY_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["trio", "anyio", "asyncio"])
def test_echo_server_and_client_over_webrtc(
    flavour: str, signaling_url: str, child_processes: list[Child]
) -> None:
    server = Child(sys.executable, EXAMPLES / flavour / "echo_server.py", signaling_url)
    child_processes.append(server)
    assert server.wait_for_line("listening on ") == "listening on 10.0.0.1:1234"

    out = run_python(EXAMPLES / flavour / "echo_client.py", signaling_url, "10.0.0.1:1234")

    lines = out.splitlines()
    if flavour == "trio":
        assert lines[0].startswith("connected 10.0.0.2:") and lines[0].endswith(" -> 10.0.0.1:1234")
        assert lines[1:] == ["hello over a WebRTC data channel"]
    else:
        assert lines == ["connected to 10.0.0.1:1234", f"hello from {flavour}"]
    assert server.process.poll() is None, "the echo server must keep serving"


def test_native_echo_server_and_client(child_processes: list[Child]) -> None:
    server = Child(sys.executable, EXAMPLES / "native" / "echo_server.py")
    child_processes.append(server)
    address = server.wait_for_line("listening on 127.0.0.1:").removeprefix("listening on ")
    for _ in range(2):  # the server serves one connection after another
        out = run_python(EXAMPLES / "native" / "echo_client.py", address)
        assert out == "hello over OS TCP\n"


@pytest.mark.parametrize("network", ["webrtc", "native"])
def test_udp_echo_server_and_client(
    network: str, signaling_url: str, child_processes: list[Child]
) -> None:
    url = signaling_url if network == "webrtc" else "none"
    server = Child(sys.executable, EXAMPLES / "udp" / "echo_server.py", url)
    child_processes.append(server)
    address = server.wait_for_line("listening on ").removeprefix("listening on ")
    if network == "webrtc":
        assert address == "10.0.0.1:1234"
    for _ in range(2):  # one client after another
        out = run_python(EXAMPLES / "udp" / "echo_client.py", url, address)
        assert out == "hello over datagrams\n"
    assert server.process.poll() is None, "the echo server must keep serving"


#: Runs the asyncio example as ``python main.py URL`` would, then checks that
#: nothing imported trio: the sans-IO protocol needs no trio.
_NO_TRIO = """
import runpy, sys
path, url = sys.argv[1], sys.argv[2]
sys.argv = [path, url]
sys.path.insert(0, path.rsplit("/", 1)[0])
runpy.run_path(path, run_name="__main__")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("trio", "trio_websocket", "anyio"))
assert not loaded, f"the asyncio example loaded {loaded}"
print("no trio")
"""


def test_asyncio_sans_io_example_joins_binds_and_connects(signaling_url: str) -> None:
    out = run_python("-c", _NO_TRIO, EXAMPLES / "asyncio_sans_io" / "main.py", signaling_url)
    assert out.splitlines() == [
        "A joined as 10.0.0.1, B joined as 10.0.0.2",
        "A was greeted: 10.0.0.2 joined",
        "A bound 10.0.0.1:1234",
        "B connected from 10.0.0.2:0 to 10.0.0.1:1234",
        "A accepted 10.0.0.2:0 on 10.0.0.1:1234",
        "B: nobody accepts on 10.0.0.1:9999",
        "B released 10.0.0.2:0",
        "no trio",
    ]
