"""Guests on a native node (OS TCP): the imports' behaviour, errnos, and stopping guests."""

from __future__ import annotations

import functools
import socket as stdlib_socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from unisockets import net
from unisockets.wasm import GuestTrapped, WasmProgram, run_wasm

from .conftest import Programs, WasmFiles

pytestmark = pytest.mark.timeout(120)


class Output:
    """Collects a guest's output (written from the guest's thread)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self._lock:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        with self._lock:
            return b"".join(self.chunks).decode()

    def lines(self) -> list[str]:
        return self.text.splitlines()

    async def wait_for(self, line: str) -> None:
        """Wait until ``line`` was printed (a guest's output is line-buffered)."""
        # Written from the guest's thread, which has no trio: poll.
        while line not in self.lines():  # noqa: ASYNC110
            await trio.sleep(0.01)


def free_port() -> int:
    with stdlib_socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_guest(
    nursery: trio.Nursery, node: net.Node, program: object, *args: str, **options: object
) -> None:
    assert isinstance(program, WasmProgram)
    nursery.start_soon(functools.partial(run_wasm, node, program, args, **options))  # type: ignore[arg-type]


def guest_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("unisockets-wasm-")]


@pytest.mark.trio
async def test_c_echo_server_and_client(programs: Programs) -> None:
    port = str(free_port())
    server_out, client_out, client_err = Output(), Output(), Output()
    async with net.open_node(None) as node, trio.open_nursery() as nursery:
        start_guest(nursery, node, programs.echo_server, "127.0.0.1", port, "1", stdout=server_out)
        await server_out.wait_for(f"listening on 127.0.0.1:{port}")
        status = await run_wasm(
            node,
            programs.echo_client,  # type: ignore[arg-type]
            ["127.0.0.1", port],
            stdin=b"hello\nworld, longer line\n",
            stdout=client_out,
            stderr=client_err,
        )
    assert status == 0, client_err.text
    assert client_out.lines() == ["hello", "world, longer line"]
    assert server_out.lines()[1].startswith("accepted 127.0.0.1:")
    assert server_out.lines()[2].startswith("closed 127.0.0.1:")
    assert guest_threads() == []


@pytest.mark.trio
async def test_go_client_talks_to_c_server(programs: Programs) -> None:
    port = str(free_port())
    server_out, client_out, client_err = Output(), Output(), Output()
    async with net.open_node(None) as node, trio.open_nursery() as nursery:
        start_guest(nursery, node, programs.echo_server, "0.0.0.0", port, "1", stdout=server_out)
        await server_out.wait_for(f"listening on 0.0.0.0:{port}")
        status = await run_wasm(
            node,
            programs.go_echo_client,  # type: ignore[arg-type]
            ["127.0.0.1", port],
            stdin=b"from go\nline two\n",
            stdout=client_out,
            stderr=client_err,
        )
    assert status == 0, client_err.text
    assert client_out.lines() == ["from go", "line two"]


@pytest.mark.trio
async def test_bad_calls_get_their_errnos(programs: Programs) -> None:
    out = Output()
    async with net.open_node(None) as node:
        status = await run_wasm(node, programs.probe, ["bad-calls"], stdout=out)  # type: ignore[arg-type]
    assert status == 0
    assert out.lines() == [
        "send-bad-fd -1 EBADF",
        "send-stdout -1 ENOTSOCK",
        "socket-bad-family -1 EAFNOSUPPORT",
        "socket-bad-protocol -1 EPROTONOSUPPORT",
        "listen-unbound -1 EINVAL",
        "accept-unbound -1 EINVAL",
        "recv-unconnected -1 ENOTCONN",
        "shutdown-unconnected -1 ENOTCONN",
        "connect-short-length -1 EINVAL",
        "connect-bad-pointer -1 EFAULT",
        "recv-bad-pointer -1 EFAULT",
        "close 0",
        "send-closed -1 EBADF",
    ]


@pytest.mark.trio
async def test_connect_refused_reaches_perror(programs: Programs) -> None:
    out, err = Output(), Output()
    async with net.open_node(None) as node:
        await run_wasm(
            node,
            programs.probe,  # type: ignore[arg-type]
            ["refused", "127.0.0.1", str(free_port())],
            stdout=out,
            stderr=err,
        )
    assert out.lines() == ["connect -1 ECONNREFUSED"]
    assert err.lines() == ["connect: Connection refused"]


@pytest.mark.trio
async def test_bind_taken_is_eaddrinuse(programs: Programs) -> None:
    out = Output()
    async with net.open_node(None) as node:
        await run_wasm(node, programs.probe, ["bind-twice", str(free_port())], stdout=out)  # type: ignore[arg-type]
    assert out.lines() == [
        "socket 3",
        "bind 0",
        "listen 0",
        "socket 4",
        "bind -1 EADDRINUSE",
        "listen -1 EINVAL",
    ]


@pytest.mark.trio
async def test_accept_sockaddr_recv_bounds_and_close(programs: Programs) -> None:
    port = free_port()
    out = Output()
    async with net.open_node(None) as node, trio.open_nursery() as nursery:
        start_guest(nursery, node, programs.probe, "serve", str(port), stdout=out)
        await out.wait_for("listen 0")
        client = node.socket()
        await client.connect(("127.0.0.1", port))
        await client.sendall(b"abcdefgh")
        assert await client.recv(100) == b"pong"
        client.shutdown(net.SHUT_WR)
        assert await client.recv(100) == b"late"
        assert await client.recv(100) == b""  # the guest's close reached us
        await client.aclose()
    lines = out.lines()
    # accept wrote only the 8 bytes the length allowed, and reported the full 16.
    assert "peer family=1 ip=127.0.0.1 length=16 tail_kept=yes canary_kept=yes" in lines
    # recv with a 4-byte buffer wrote 4 bytes and nothing after them.
    assert "recv4 4" in lines and "recv4 data=abcd canary_kept=yes" in lines
    assert lines[lines.index("send 4") + 1 :] == [
        "recv 4",  # "efgh"
        "recv 0",  # our SHUT_WR
        "send-after 4",
        "close 0",
        "close-again -1 EBADF",
    ]


@pytest.mark.trio
async def test_linux_constant_values_work(programs: Programs) -> None:
    port = free_port()
    out = Output()
    async with net.open_node(None) as node, trio.open_nursery() as nursery:
        start_guest(nursery, node, programs.probe, "linux-values", str(port), stdout=out)
        await out.wait_for("listen 0")
        client = node.socket()
        await client.connect(("127.0.0.1", port))
        await client.sendall(b"x")
        client.shutdown(net.SHUT_WR)
        assert await client.recv(10) == b""  # the guest's shutdown(fd, 1) is Linux's SHUT_WR
        await client.aclose()
    assert out.lines() == [
        "socket 3",
        "bind 0",
        "listen 0",
        "accept 4",
        "peer family=2 length=16",  # Linux's AF_INET for a Linux-flavoured socket
        "recv 1",
        "recv 0",
        "shutdown-linux-wr 0",
    ]


@pytest.mark.trio
async def test_peer_reset_reaches_the_guest_as_econnreset(programs: Programs) -> None:
    out = Output()
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    async with net.open_node(None) as node, trio.open_nursery() as nursery:
        start_guest(nursery, node, programs.probe, "connect", "127.0.0.1", str(port), stdout=out)
        connection, _ = await listener.accept()
        assert await connection.recv(4) == b"ping"
        # SO_LINGER with a zero timeout: close sends a reset.
        connection.setsockopt(
            stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        connection.close()
    listener.close()
    assert out.lines() == ["connect 0", "send 4", "recv -1 ECONNRESET"]


async def _stops_promptly(
    run: Callable[[trio.Nursery], object], started: Output, line: str, program: str
) -> None:
    async with trio.open_nursery() as nursery:
        run(nursery)
        with trio.fail_after(30):
            await started.wait_for(line)
        await trio.sleep(0.1)  # let the guest block
        nursery.cancel_scope.cancel()
    # Cancelling returned only after the guest's thread had ended.
    assert f"unisockets-wasm-{program}" not in guest_threads()


@pytest.mark.trio
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("serve", "0"), "listen 0"),  # blocked in accept
        (("sleep",), "sleeping"),  # blocked in poll_oneoff (sleep)
        (("spin",), "spinning"),  # computing, no host calls
    ],
)
async def test_stopping_a_blocked_guest(
    programs: Programs, args: tuple[str, ...], line: str
) -> None:
    out = Output()
    async with net.open_node(None) as node:
        await _stops_promptly(
            lambda nursery: start_guest(nursery, node, programs.probe, *args, stdout=out),
            out,
            line,
            "probe.wasm",
        )


@pytest.mark.trio
async def test_stopping_a_guest_waiting_for_stdin(programs: Programs) -> None:
    read_end, write_end = stdlib_socket.socketpair()
    port = str(free_port())
    server_out, client_err = Output(), Output()
    with read_end, write_end:
        async with net.open_node(None) as node, trio.open_nursery() as outer:
            start_guest(outer, node, programs.echo_server, "127.0.0.1", port, stdout=server_out)
            await server_out.wait_for(f"listening on 127.0.0.1:{port}")
            await _stops_promptly(
                lambda nursery: start_guest(
                    nursery,
                    node,
                    programs.echo_client,
                    "127.0.0.1",
                    port,
                    stdin=read_end.fileno(),
                    stderr=client_err,
                ),
                client_err,
                f"connected to 127.0.0.1:{port}",
                "echo_client.wasm",
            )
            outer.cancel_scope.cancel()
    assert guest_threads() == []


@pytest.mark.trio
async def test_a_trap_is_reported() -> None:
    program = WasmProgram.from_bytes(
        b'(module (memory (export "memory") 1) (func (export "_start") unreachable))',
        "trap",
        cache_dir=False,
    )
    async with net.open_node(None) as node:
        with pytest.raises(GuestTrapped, match="unreachable"):
            await run_wasm(node, program)


@pytest.mark.trio
async def test_exit_status_and_arguments_reach_the_host(programs: Programs) -> None:
    err = Output()
    async with net.open_node(None) as node:
        status = await run_wasm(node, programs.probe, ["no-such-command"], stderr=err)  # type: ignore[arg-type]
    assert status == 2
    assert err.lines() == ["unknown command no-such-command"]


@pytest.mark.trio
async def test_guests_stopping_and_exiting_at_once_keep_their_own_results(
    programs: Programs,
) -> None:
    # wasmtime-py keeps host-call exceptions process-wide; a stop in one guest
    # must not turn into another guest's result.
    statuses: list[int] = []

    async def exits_with_two() -> None:
        err = Output()
        statuses.append(await run_wasm(node, programs.probe, ["nope"], stderr=err))  # type: ignore[arg-type]

    async with net.open_node(None) as node:
        for _ in range(3):
            outs = [Output() for _ in range(4)]
            async with trio.open_nursery() as nursery:
                scopes = [trio.CancelScope() for _ in outs]

                async def serve(out: Output, scope: trio.CancelScope) -> None:
                    with scope:
                        await run_wasm(node, programs.probe, ["serve", "0"], stdout=out)  # type: ignore[arg-type]

                for out, scope in zip(outs, scopes, strict=True):
                    nursery.start_soon(serve, out, scope)
                for out in outs:
                    await out.wait_for("listen 0")
                for _ in range(4):
                    nursery.start_soon(exits_with_two)
                for scope in scopes:
                    scope.cancel()
    assert statuses == [2] * 12
    assert guest_threads() == []


def test_compilations_are_cached_on_disk_and_bad_caches_are_replaced(
    wasm_files: WasmFiles, tmp_path: Path
) -> None:
    from unisockets.wasm import runner

    wasm = wasm_files.probe.read_bytes()
    runner._memory_cache.clear()
    first = WasmProgram.from_bytes(wasm, "probe", cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.cwasm")
    assert cached.read_bytes() == first.compiled
    cached.write_bytes(b"not a compiled module")  # e.g. a truncated file
    runner._memory_cache.clear()
    second = WasmProgram.from_bytes(wasm, "probe", cache_dir=tmp_path)
    assert cached.read_bytes() == second.compiled != b"not a compiled module"

    async def run() -> int:
        async with net.open_node(None) as node:
            return await run_wasm(node, second, ["nope"], stderr=Output())

    assert trio.run(run) == 2
