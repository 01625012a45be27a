"""Datagram sockets in WebAssembly guests: the C UDP echo server and client (examples/c).

The programs use the header's ``sendto``/``recvfrom`` imports and
``socket(AF_INET, SOCK_DGRAM, 0)``; their peer is a Python datagram socket,
on overlay nodes over real WebRTC (and natively, over OS UDP).
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import trio

import unisockets
from unisockets import net
from unisockets.wasm import WasmProgram, run_wasm

from .conftest import Programs, WasmFiles
from .test_native import Output, start_guest
from .test_overlay import overlay_nodes

pytestmark = [pytest.mark.timeout(180), pytest.mark.trio]


@pytest.fixture(scope="session")
def udp_programs(wasm_files: WasmFiles) -> tuple[WasmProgram, WasmProgram]:
    """The UDP echo server and client (built with the other examples by examples/c/Makefile)."""
    out = wasm_files.echo_server.parent
    return (
        WasmProgram.from_file(out / "udp_echo_server.wasm"),
        WasmProgram.from_file(out / "udp_echo_client.wasm"),
    )


async def _python_echo(sock: net.DatagramSocket, count: int) -> None:
    for _ in range(count):
        data, source = await sock.recvfrom(65536)
        await sock.sendto(data.upper(), source)


async def _ask(sock: net.DatagramSocket, server: tuple[str, int], data: bytes) -> bytes:
    """Send ``data`` until its echo comes back (a datagram may be lost): the echo."""
    while True:
        await sock.sendto(data, server)
        with trio.move_on_after(0.5):  # the resend interval of a UDP client
            while True:
                echo, source = await sock.recvfrom(65536)
                if source == server and echo == data:
                    return echo


@pytest.mark.parametrize("kind", ["webrtc", "native"])
async def test_python_client_and_the_c_udp_echo_server(
    udp_programs: tuple[WasmProgram, WasmProgram], kind: str
) -> None:
    server_program, _ = udp_programs
    err = Output()
    async with (
        overlay_nodes(2 if kind == "webrtc" else 0) as nodes,
        net.open_node(None) as native,
    ):
        server_node, client_node = nodes if nodes else (native, native)
        port = 1234 if nodes else 0
        if not nodes:  # a free OS port
            with native.socket(unisockets.SOCK_DGRAM) as probe:
                await probe.bind(("", 0))
                port = probe.getsockname()[1]
        async with trio.open_nursery() as nursery:
            # No count: a datagram sent twice (resent) would end a counting server early.
            start_guest(nursery, server_node, server_program, str(port), stderr=err)
            with trio.fail_after(60):
                await err.wait_for(f"echoing datagrams on port {port}")
                with client_node.socket(unisockets.SOCK_DGRAM) as sock:
                    server = (server_node.address, port)
                    for data in (b"one", b"two " * 100, b"\x00three"):
                        assert await _ask(sock, server, data) == data
            nursery.cancel_scope.cancel()  # stops the guest blocked in recvfrom


async def test_c_udp_echo_client_against_a_python_server(
    udp_programs: tuple[WasmProgram, WasmProgram],
) -> None:
    _, client_program = udp_programs
    out, err = Output(), Output()
    async with overlay_nodes(2) as (server_node, client_node):
        with server_node.socket(unisockets.SOCK_DGRAM) as sock:
            await sock.bind(("", 5353))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_python_echo, sock, 2)
                with trio.fail_after(60):
                    status = await run_wasm(
                        client_node,
                        client_program,
                        [server_node.address, "5353"],
                        stdin=b"hello\nover datagrams\n",
                        stdout=out,
                        stderr=err,
                    )
    assert status == 0, err.text
    assert out.lines() == ["HELLO", "OVER DATAGRAMS"]


@pytest.mark.parametrize("kind", ["webrtc", "native"])
async def test_guest_errnos_on_datagram_sockets(programs: Programs, kind: str) -> None:
    out = Output()
    async with (
        overlay_nodes(1 if kind == "webrtc" else 0) as nodes,
        net.open_node(None) as native,
    ):
        node = nodes[0] if nodes else native
        port = 4242
        if not nodes:  # a free OS port
            with native.socket(unisockets.SOCK_DGRAM) as probe:
                await probe.bind(("", 0))
                port = probe.getsockname()[1]
        big = 65508 if kind == "native" else 1155  # one byte over the limit
        with trio.fail_after(60):
            status = await run_wasm(
                node,
                programs.probe,  # type: ignore[arg-type]
                ["datagram", str(port), str(big)],
                stdout=out,
            )
    assert status == 0
    assert out.lines() == [
        "socket-udp-tcp -1 EPROTONOSUPPORT",
        "send-unconnected -1 EDESTADDRREQ",
        "listen -1 ENOTSUP",  # EOPNOTSUPP
        "shutdown-unconnected -1 ENOTCONN",
        "bind 0",
        "bind-again -1 EINVAL",
        "bind-taken -1 EADDRINUSE",
        "accept -1 ENOTSUP",
        "sendto-big -1 EMSGSIZE",
        "sendto-self 2",
        "recvfrom-no-length -1 EFAULT",
        "recvfrom 2",
        f"from-port {port} length 16",
        "send-closed -1 EBADF",
    ]


@pytest.mark.slow
async def test_c_udp_echo_server_under_unisockets_run_and_a_python_peer(
    wasm_files: WasmFiles,
) -> None:
    from unisockets.signaling.server import open_signaling_server

    from ..net.test_failures import _read_line

    server_wasm = wasm_files.echo_server.parent / "udp_echo_server.wasm"
    async with (
        open_signaling_server(host="127.0.0.1", port=0) as signaling,
        net.open_node(signaling.url, ice_addresses=["127.0.0.1"]) as node,
    ):
        command = [sys.executable, "-m", "unisockets", "run", str(server_wasm)]
        command += ["--signaling", signaling.url, "--ice-address", "127.0.0.1", "--", "1234"]
        process = await trio.lowlevel.open_process(command, stderr=subprocess.PIPE)
        try:
            assert process.stderr is not None
            with trio.fail_after(60):  # only a bound against hangs
                started = await _read_line(process.stderr)
                address = started.rsplit(" on ", 1)[1]
                assert started.startswith("unisockets run: udp_echo_server.wasm on ")
                assert await _read_line(process.stderr) == "echoing datagrams on port 1234"
                with node.socket(unisockets.SOCK_DGRAM) as sock:
                    for data in (b"first", b"second"):
                        assert await _ask(sock, (address, 1234), data) == data
                process.send_signal(signal.SIGINT)  # Ctrl-C stops it blocked in recvfrom
                assert await process.wait() == 130
        finally:
            process.kill()
            await process.wait()
