"""Datagram sockets in real headless Chromium (Pyodide) against a native node.

The tab's ``node.socket(SOCK_DGRAM)`` and a native node's talk over the
unordered, never retransmitted ``unisockets/datagram`` channel of their
peer link, both ways, on 127.0.0.1 with the project's own signaling server.
"""

from __future__ import annotations

import pytest
import trio

import unisockets
from unisockets.net import DatagramSocket, open_node
from unisockets.protocol.datagram import DATAGRAM_LABEL
from unisockets.signaling.server import open_signaling_server

from .cdp import Browser
from .helpers import BrowserEnv, run_in_tab, tab, wait_note

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Generous limit per test, only to turn a hang into a failure.
TEST_TIMEOUT = 120

TAB_DATAGRAMS = """
import errno
async with ub.open_node(URL) as node:
    with node.socket(ub.SOCK_DGRAM) as sock:
        await sock.bind(("", 5000))
        errnos = {}
        for name, call in [
            ("send", lambda: sock.send(b"x")),
            ("big", lambda: sock.sendto(bytes(sock.max_payload + 1), (node.address, 9))),
            ("bind", lambda: sock.bind(("", 0))),
        ]:
            try:
                await call()
            except OSError as error:  # by name: Pyodide's numbers are emscripten's
                errnos[name] = errno.errorcode[error.errno]
        sock.setblocking(False)
        try:
            await sock.recvfrom(10)
        except BlockingIOError:
            errnos["nowait"] = "BlockingIOError"
        sock.setblocking(True)
        notify("bound", node.address)
        # Echo upper-cased until told to stop; then ask the native node ourselves.
        while True:
            data, sender = await sock.recvfrom(2000)
            if data == b"stop":
                break
            await sock.sendto(data.upper(), sender)
        client = node.socket(ub.SOCK_DGRAM)
        await client.connect((NATIVE, 6000))
        answers = []
        for word in (b"alpha", b"beta"):
            while True:
                await client.send(word)
                try:
                    async with asyncio.timeout(0.5):
                        answer = await client.recv(2000)
                except TimeoutError:
                    continue
                if answer == word[::-1]:
                    answers.append(answer.decode())
                    break
        stats = node.datagrams.statistics
        client.close()
json.dumps({"errnos": errnos, "answers": answers, "malformed": stats.malformed})
"""


async def _ask(sock: DatagramSocket, server: tuple[str, int], data: bytes, expect: bytes) -> None:
    """Send ``data`` until ``expect`` comes back from ``server`` (datagrams may be lost)."""
    while True:
        await sock.sendto(data, server)
        with trio.move_on_after(0.5):  # the resend interval of a UDP client
            while True:
                answer, source = await sock.recvfrom(2000)
                if source == server and answer == expect:
                    return


async def test_tab_and_native_node_exchange_datagrams(
    browser: Browser, browser_env: BrowserEnv
) -> None:
    page = await tab(browser, browser_env, "a")
    results: dict[str, object] = {}
    tab_done = trio.Event()
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            trio.open_nursery() as nursery,
            open_node(server.url, ice_addresses=["127.0.0.1"]) as native,
        ):

            async def run_tab() -> None:
                results["tab"] = await run_in_tab(
                    page, TAB_DATAGRAMS, URL=server.url, NATIVE=native.address
                )
                tab_done.set()

            nursery.start_soon(run_tab)
            tab_address = await wait_note(page, "bound")
            with native.socket(unisockets.SOCK_DGRAM) as sock:
                await sock.bind(("", 6000))
                for word in (b"hello", b"from native"):
                    await _ask(sock, (tab_address, 5000), word, word.upper())
                # The tab answered on the link's datagram channel, unordered, no retransmits.
                link = native.transport.links[tab_address]  # type: ignore[attr-defined]
                assert any(pipe.label == DATAGRAM_LABEL for pipe in link.pipes)
                await sock.sendto(b"stop", (tab_address, 5000))  # then the tab asks us

                async def reverse_echo() -> None:
                    while True:
                        data, source = await sock.recvfrom(2000)
                        await sock.sendto(data[::-1], source)

                nursery.start_soon(reverse_echo)
                while not tab_done.is_set():
                    with trio.move_on_after(0.5):  # "stop" may be lost: repeat it
                        await tab_done.wait()
                    if not tab_done.is_set():
                        await sock.sendto(b"stop", (tab_address, 5000))
                nursery.cancel_scope.cancel()
    assert results["tab"] == {
        "errnos": {
            "send": "EDESTADDRREQ",
            "big": "EMSGSIZE",
            "bind": "EINVAL",
            "nowait": "BlockingIOError",
        },
        "answers": ["ahpla", "ateb"],
        "malformed": 0,
    }
