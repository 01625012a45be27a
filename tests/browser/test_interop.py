"""unisockets in real headless Chromium (Pyodide) against native nodes and other tabs.

Everything runs on 127.0.0.1 with the project's own signaling server; the
native nodes are :func:`unisockets.net.open_node` over aiortc. Each test
checks bytes (a pattern with a digest) and EOF on both sides, not just that
a page loaded.
"""

from __future__ import annotations

import errno
import hashlib

import pytest
import trio

from unisockets.net import open_node
from unisockets.signaling.server import open_signaling_server
from unisockets.transport.webrtc_link import PeerKind

from .cdp import Browser
from .helpers import BrowserEnv, run_in_tab, tab, wait_note

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Generous limit per test, only to turn a hang into a failure.
TEST_TIMEOUT = 120
#: 1 MiB + 7 bytes: several credit windows and a ragged last frame.
PAYLOAD = bytes(range(251)) * 4177 + b"unisock"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def native_echo_client(stream, payload: bytes) -> bytes:  # type: ignore[no-untyped-def]
    """Send ``payload`` and EOF while reading everything back until EOF."""
    received = bytearray()

    async def reader() -> None:
        while data := await stream.receive_some():
            received.extend(data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await stream.send_all(payload)
        await stream.send_eof()
    return bytes(received)


TAB_ECHO_SERVER = """
async with ub.open_node(URL) as node:
    async with node.listen(PORT) as listener:
        notify("listening", node.address)
        stream = await listener.accept()
        total = 0
        while data := await stream.receive_some():
            total += len(data)
            await stream.send_all(data)
        await stream.aclose()
json.dumps({"address": node.address, "echoed": total,
            "local": list(stream.local_address), "remote": list(stream.remote_address)})
"""

TAB_ECHO_CLIENT = """
async with ub.open_node(URL) as node:
    stream = await node.connect((HOST, PORT))
    payload = bytes(range(251)) * 4177 + b"unisock"
    received = bytearray()
    async def reader():
        while data := await stream.receive_some():
            received.extend(data)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(reader())
        await stream.send_all(payload)
        await stream.send_eof()
    local, remote = stream.local_address, stream.remote_address
    await stream.aclose()
    notify("done")
json.dumps({"address": node.address, "digest": hashlib.sha256(received).hexdigest(),
            "n": len(received), "local": list(local), "remote": list(remote)})
"""


async def test_tab_listens_native_connects(browser: Browser, browser_env: BrowserEnv) -> None:
    """A tab binds and accepts; a native aiortc node connects, echoes 1 MiB, sees EOF."""
    page = await tab(browser, browser_env, "a")
    results: dict[str, object] = {}
    tab_done = trio.Event()
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            trio.open_nursery() as nursery,
        ):

            async def run_tab() -> None:
                results["tab"] = await run_in_tab(page, TAB_ECHO_SERVER, URL=server.url, PORT=1234)
                tab_done.set()

            nursery.start_soon(run_tab)
            tab_address = await wait_note(page, "listening")
            async with open_node(server.url, ice_addresses=["127.0.0.1"]) as native:
                stream = await native.connect((tab_address, 1234))
                echoed = await native_echo_client(stream, PAYLOAD)
                # Lazy links: the node that connects offers the link; the tab said hello
                # on its "channel" (our sub-protocol).
                link = native.transport.links[tab_address]  # type: ignore[attr-defined]
                assert (link.role, link.kind) == ("offerer", PeerKind.MODERN)
                assert stream.remote_address == (tab_address, 1234)
                local = stream.local_address
                await stream.aclose()
                await tab_done.wait()  # the tab leaves first: our node stays to the end
    assert digest(echoed) == digest(PAYLOAD)
    assert results["tab"] == {
        "address": tab_address,
        "echoed": len(PAYLOAD),
        "local": [tab_address, 1234],
        "remote": list(local),
    }


async def test_native_listens_tab_connects(browser: Browser, browser_env: BrowserEnv) -> None:
    """A native node listens; the tab connects, sends 1 MiB + EOF and reads the echo to EOF."""
    page = await tab(browser, browser_env, "a")
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            open_node(server.url, ice_addresses=["127.0.0.1"]) as native,
            native.listen(4321) as listener,
            trio.open_nursery() as nursery,
        ):
            results: dict[str, object] = {}

            async def run_tab() -> None:
                results["tab"] = await run_in_tab(
                    page,
                    TAB_ECHO_CLIENT,
                    URL=server.url,
                    HOST=native.address,
                    PORT=4321,
                )

            nursery.start_soon(run_tab)
            stream = await listener.accept()
            # Lazy links: the tab connected, so the tab offered; it said hello on "channel".
            link = native.transport.links[stream.remote_address[0]]  # type: ignore[attr-defined]
            assert (link.role, link.kind) == ("answerer", PeerKind.MODERN)
            received = bytearray()
            while data := await stream.receive_some():
                received.extend(data)
                await stream.send_all(data)
            remote = stream.remote_address
            await stream.aclose()
            await wait_note(page, "done")
    assert digest(bytes(received)) == digest(PAYLOAD)
    assert results["tab"] == {
        "address": remote[0],
        "digest": digest(PAYLOAD),
        "n": len(PAYLOAD),
        "local": list(remote),
        "remote": [native.address, 4321],
    }


async def test_tab_to_tab(browser: Browser, browser_env: BrowserEnv) -> None:
    """Two tabs: one listens, the other connects; echo of 1 MiB with EOF over Chromium's WebRTC."""
    server_tab = await tab(browser, browser_env, "a")
    client_tab = await tab(browser, browser_env, "b")
    results: dict[str, object] = {}
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            trio.open_nursery() as nursery,
        ):

            async def run_server() -> None:
                results["server"] = await run_in_tab(
                    server_tab, TAB_ECHO_SERVER, URL=server.url, PORT=7
                )

            async def run_client(address: str) -> None:
                results["client"] = await run_in_tab(
                    client_tab, TAB_ECHO_CLIENT, URL=server.url, HOST=address, PORT=7
                )

            nursery.start_soon(run_server)
            address = await wait_note(server_tab, "listening")
            nursery.start_soon(run_client, address)
    client = results["client"]
    assert isinstance(client, dict)
    assert client["digest"] == digest(PAYLOAD)
    assert client["n"] == len(PAYLOAD)
    assert client["remote"] == [address, 7]
    assert results["server"] == {
        "address": address,
        "echoed": len(PAYLOAD),
        "local": [address, 7],
        "remote": client["local"],
    }


async def test_tab_errors_and_sockets(browser: Browser, browser_env: BrowserEnv) -> None:
    """Socket objects in the tab; ECONNREFUSED, EADDRINUSE and a connection to itself."""
    page = await tab(browser, browser_env, "a")
    body = """
    import errno
    out = {}
    async with ub.open_node(URL) as node:
        try:
            await node.connect((node.address, 9))
        except OSError as exc:
            out["refused"] = exc.errno == errno.ECONNREFUSED
        listener = await node.listen(80)
        try:
            await node.listen(80)
        except OSError as exc:
            out["in_use"] = exc.errno == errno.EADDRINUSE
        # a connection to ourselves (an in-page pipe pair, no WebRTC)
        client = await node.connect(("localhost", 80))
        accepted = await listener.accept()
        await client.send_all(b"ping")
        await client.send_eof()
        first, second = await accepted.receive_some(), await accepted.receive_some()
        out["self"] = [first, second] == [b"ping", b""]
        await accepted.aclose()
        out["self_eof"] = await client.receive_some() == b""
        await client.aclose()
        await listener.aclose()
        # options, a timeout of 0, and close() followed at once by a bind of the port
        import socket
        probe = node.socket()
        probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 5)
        out["option"] = probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        except OSError as exc:
            out["noprotoopt"] = exc.errno == errno.ENOPROTOOPT
        await probe.bind(("", 81))
        probe.listen(1)
        probe.close()
        again = node.socket()
        await again.bind(("", 81))
        again.listen(1)
        again.settimeout(0)
        try:
            await again.accept()
        except BlockingIOError as exc:
            out["rebind_nonblocking"] = exc.errno == errno.EAGAIN
        await again.aclose()
        # Berkeley-style: a listening socket; the native side connects to it
        sock = node.socket()
        await sock.bind(("", 0))
        sock.listen(1)
        notify("bound", list(sock.getsockname()))
        conn, peer = await sock.accept()
        chunks = []
        while chunk := await conn.recv(1000):
            chunks.append(chunk)
        await conn.sendall(b"".join(chunks).upper())
        conn.shutdown(ub.SHUT_WR)
        out["peer"] = list(conn.getpeername()) == list(peer)
        await conn.aclose()
        await sock.aclose()
        try:
            await conn.recv(1)
        except OSError as exc:
            out["closed"] = exc.errno == errno.EBADF
        notify("done")
    json.dumps(out)
    """
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            trio.open_nursery() as nursery,
        ):
            results: dict[str, object] = {}

            async def run_tab() -> None:
                results["tab"] = await run_in_tab(page, body, URL=server.url)

            nursery.start_soon(run_tab)
            host, port = await wait_note(page, "bound")
            async with open_node(server.url, ice_addresses=["127.0.0.1"]) as native:
                with pytest.raises(OSError) as refused:
                    await native.connect((host, port + 1 if port < 65535 else port - 1))
                assert refused.value.errno == errno.ECONNREFUSED
                sock = native.socket()
                await sock.connect((host, port))
                await sock.sendall(b"shout " * 1000)
                sock.shutdown(trio.socket.SHUT_WR)
                reply = bytearray()
                while chunk := await sock.recv(65536):
                    reply.extend(chunk)
                await sock.aclose()
                await wait_note(page, "done")
    assert bytes(reply) == b"SHOUT " * 1000
    assert results["tab"] == {
        "refused": True,
        "in_use": True,
        "self": True,
        "self_eof": True,
        "option": True,
        "noprotoopt": True,
        "rebind_nonblocking": True,
        "peer": True,
        "closed": True,
    }


async def test_leaving_with_open_streams(browser: Browser, browser_env: BrowserEnv) -> None:
    """A node that leaves with a stream open: a tab delivers everything then EOF; a native
    node that vanishes makes the tab's blocked ``receive_some`` raise BrokenResourceError."""
    page = await tab(browser, browser_env, "a")
    body = """
    async with ub.open_node(URL) as node:
        # 1. we leave with this stream open: the native side must read it all, then EOF
        left_open = await node.connect((HOST, 4000))
        await left_open.send_all(bytes(200_000))
    async with ub.open_node(URL) as node:
        # 2. the native node vanishes while we wait for data
        stream = await node.connect((HOST, 4001))
        notify("connected")
        try:
            while await stream.receive_some():
                pass
            outcome = "eof"
        except ub.BrokenResourceError as exc:
            outcome = "broken"
    json.dumps(outcome)
    """
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            trio.open_nursery() as nursery,
        ):
            results: dict[str, object] = {}
            async with (
                open_node(server.url, ice_addresses=["127.0.0.1"]) as native,
                native.listen(4000) as first,
                native.listen(4001) as second,
            ):

                async def run_tab() -> None:
                    results["tab"] = await run_in_tab(
                        page, body, URL=server.url, HOST=native.address
                    )

                nursery.start_soon(run_tab)
                stream = await first.accept()
                received = 0
                while data := await stream.receive_some():
                    received += len(data)
                await stream.aclose()
                await second.accept()
                await wait_note(page, "connected")
                # leaving the block closes the native node without an EOF on that stream
    assert received == 200_000
    assert results["tab"] == "broken"
