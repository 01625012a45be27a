"""Goodbye is not death, in a tab: the tab's links probe a peer that signaling says left.

Real headless Chromium (Pyodide) and native aiortc nodes on 127.0.0.1, the
project's signaling server (docs/protocol.md, "Goodbye is not death"):

- A native peer whose signaling alone dies (its WebSocket goes through a TCP
  relay that turns silent, a NAT that forgot it) is dropped by the server,
  which says goodbye to the tab; the tab probes their link, the peer answers
  over the data plane, and the tab keeps the link and the stream.
- A SIGKILLed native peer answers no probe: the tab's stream breaks with
  "left: no answer on the link", within 2 s of the goodbye (not counting
  the time the tab's event loop could not run, on a loaded machine).

The tab notes the goodbye by wrapping its links' ``peer_left`` (the page code
below); every wait is on a note or an event.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from unisockets.net import open_node
from unisockets.protocol.consent import ConsentPolicy
from unisockets.signaling.limits import ServerLimits

from ..restartable_server import start_server
from ..silent_relay import start_relay
from .cdp import Browser
from .helpers import BrowserEnv, page_failure_report, run_in_tab, tab, wait_note

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Generous limit per test, only to turn a hang into a failure.
TEST_TIMEOUT = 120
#: The native echo node of tests/net/test_failures.py, run as a child to be SIGKILLed.
CHILD = Path(__file__).resolve().parents[1] / "net" / "node_child.py"
#: The relayed node's keepalive (it must not rejoin during the test: a long one).
SLOW_KEEPALIVE = ConsentPolicy(interval=30.0, jitter=0.2, lifetime=60.0, unanswered_checks=2)

#: Page code: note the goodbyes the tab's links are told of (and when).
GOODBYES = """
loop = asyncio.get_running_loop()
left = {}

def note_goodbyes(node):
    original = node.links.peer_left
    def peer_left(peer_id):
        left[peer_id] = loop.time()
        notify("peer_left", peer_id)
        original(peer_id)
    node.links.peer_left = peer_left

def reasons(exc):
    found = []
    while exc is not None:
        found.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " / ".join(found)
"""

TAB_ECHO_LISTENER = (
    GOODBYES
    + """
async with ub.open_node(URL) as node:
    note_goodbyes(node)
    async with node.listen(PORT) as listener:
        notify("listening", node.address)
        stream = await listener.accept()
        peer = stream.remote_address[0]
        link = node.links.links[peer]

        async def verdict():  # the probe's: the link kept or failed
            while peer not in left:
                await asyncio.sleep(0.01)
            while link.negotiation.probing:
                await asyncio.sleep(0.01)
            kept = node.links.links.get(peer) is link and link.state.value == "connected"
            notify("verdict", {"kept": kept, "after": loop.time() - left[peer]})

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(verdict())
            total = 0
            while data := await stream.receive_some():
                total += len(data)
                await stream.send_all(data)
        await stream.aclose()
json.dumps({"echoed": total})
"""
)

TAB_CLIENT_OF_A_DOOMED_PEER = (
    GOODBYES
    + """
async with ub.open_node(URL) as node:
    note_goodbyes(node)
    stream = await node.connect((HOST, 7))
    await stream.send_all(b"are you there")
    got = b""
    while len(got) < 13:
        got += await stream.receive_some()
    notify("connected", got.decode())
    lag = [0.0]  # the most this tab's loop ran a timer late: a starved CPU delays the probe's too

    async def ticker():
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            lag[0] = max(lag[0], loop.time() - before - 0.05)

    ticking = asyncio.create_task(ticker())
    try:
        data = await stream.receive_some()
        out = {"error": None, "data": repr(data)}
    except Exception as exc:
        after = loop.time() - left[HOST] if HOST in left else None
        out = {"error": reasons(exc), "after": after, "lag": lag[0]}
    ticking.cancel()
json.dumps(out)
"""
)


@asynccontextmanager
async def echo_child(url: str) -> AsyncIterator[tuple[trio.Process, str]]:
    """Run :data:`CHILD` joined to ``url``; yield it and its address (killed, reaped after)."""
    process = await trio.lowlevel.open_process(
        [sys.executable, str(CHILD), url], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            assert chunk, f"the child ended before a full line: {line!r}"
            line += chunk
        word, address = line.decode().split()
        assert word == "listening"
        yield process, address
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def _round(stream, data: bytes) -> bool:  # type: ignore[no-untyped-def]
    """Send ``data`` and read its echo; whether the digests agree."""
    got = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.send_all, data)
        while len(got) < len(data):
            chunk = await stream.receive_some()
            assert chunk, "the echo ended"
            got += chunk
    return hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


async def test_a_peer_whose_signaling_alone_dies_keeps_its_link_and_stream_with_a_tab(
    browser: Browser, browser_env: BrowserEnv
) -> None:
    page = await tab(browser, browser_env, "a")
    results: dict[str, object] = {}
    tab_done = trio.Event()
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await start_server(nursery, limits=ServerLimits(ping_interval=0.5))
            relay = await start_relay(nursery, server.port)

            async def run_tab() -> None:
                results["tab"] = await run_in_tab(page, TAB_ECHO_LISTENER, URL=server.url, PORT=7)
                tab_done.set()

            nursery.start_soon(run_tab)
            address = await wait_note(page, "listening")
            async with open_node(
                relay.url, ice_addresses=["127.0.0.1"], signaling_keepalive=SLOW_KEEPALIVE
            ) as native:
                stream = await native.connect((address, 7))
                assert await _round(stream, b"before" * 20_000)
                relay.silent = True  # the native node's WebSocket: only silence
                # the server drops it at its next ping and says goodbye to the tab
                assert await wait_note(page, "peer_left") == native.address
                verdict = await wait_note(page, "verdict")
                assert verdict["kept"], (verdict, page_failure_report(page))
                assert await _round(stream, b"after" * 20_000)  # the stream never noticed
                await stream.aclose()
                await tab_done.wait()  # the tab saw EOF and left first
            nursery.cancel_scope.cancel()
    assert results["tab"] == {"echoed": 220_000}


async def test_a_sigkilled_peer_is_seen_by_a_tab_within_two_seconds_of_its_goodbye(
    browser: Browser, browser_env: BrowserEnv
) -> None:
    page = await tab(browser, browser_env, "a")
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await start_server(nursery)
            async with echo_child(server.url) as (process, address):
                results: dict[str, object] = {}
                done = trio.Event()

                async def run_tab() -> None:
                    results["tab"] = await run_in_tab(
                        page, TAB_CLIENT_OF_A_DOOMED_PEER, URL=server.url, HOST=address
                    )
                    done.set()

                nursery.start_soon(run_tab)
                assert await wait_note(page, "connected") == "are you there"
                process.kill()  # SIGKILL: no SCTP ABORT, no DTLS close, no leave message
                await done.wait()
            nursery.cancel_scope.cancel()
    out = results["tab"]
    assert isinstance(out, dict), out
    assert out["error"] is not None and f"{address} left: no answer on the link" in out["error"], (
        out,
        page_failure_report(page),
    )
    # Within 2 s of the goodbye (the probe waits 1.5 s), not counting the time the tab's
    # loop could not run at all (a loaded machine delays the probe's timer as much).
    assert out["after"] is not None and out["after"] - out["lag"] < 2.0, out
