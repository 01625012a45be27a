"""A tab's signaling comes back after the server restarts, and paces what it sends.

Real headless Chromium (Pyodide) against the project's signaling server on
127.0.0.1, stopped and started again on the same port as in
tests/signaling/test_client.py. Which node gets which id after a restart
depends on who rejoins first, so a tab that must rejoin later waits for the
test's word and then calls ``node.rejoin()`` (its backoff is far longer than
the test), and a native node joins only when the test says so: no ordering
rests on timers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from unisockets.net import open_node
from unisockets.signaling.limits import ServerLimits
from unisockets.signaling.server import open_signaling_server

from ..restartable_server import start_server
from .cdp import Browser, Page
from .helpers import BrowserEnv, page_failure_report, run_in_tab, tab, wait_note
from .test_interop import native_echo_client

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Generous limit per test, only to turn a hang into a failure.
TEST_TIMEOUT = 120
#: 64 KiB + 5 bytes through an echo after the restart.
PAYLOAD = bytes(range(256)) * 256 + b"again"


def runner(
    page: Page, results: dict[str, Any], key: str, body: str, **values: Any
) -> tuple[Callable[[], Awaitable[None]], trio.Event]:
    """A task that runs ``body`` in ``page`` and stores its result under ``key``; its end."""
    done = trio.Event()

    async def run() -> None:
        results[key] = await run_in_tab(page, body, **values)
        done.set()

    return run, done


#: Every tab body starts with this: fresh notes, and a recorder of signaling events.
SIGNALING_EVENTS = """
js.window.unisocketsNotes = js.Object.new()
js.window.unisocketsGo = False

js.window.unisocketsRejoin = False

async def go_ahead():  # the test says so (release)
    while not js.window.unisocketsGo:
        await asyncio.sleep(0.02)

async def rejoin_when_told(node):  # the test says when this tab rejoins
    while not js.window.unisocketsRejoin:
        await asyncio.sleep(0.02)
    node.rejoin()

#: Longer than any test: a tab with it rejoins only when rejoin_when_told lets it.
NEVER = (3600.0, 3600.0)
from unisockets.protocol.events import Disconnected, IdChanged, Reconnected
events = []
disconnected, reconnected = asyncio.Event(), asyncio.Event()

def on_signaling(event):
    events.append(type(event).__name__)
    if isinstance(event, Disconnected):
        disconnected.set()
        notify("disconnected", event.id)
    elif isinstance(event, IdChanged):
        notify("id_changed", [event.old_id, event.new_id])
    elif isinstance(event, Reconnected):
        reconnected.set()
        notify("reconnected", event.id)

async def echo(stream):
    async with stream:
        while data := await stream.receive_some():
            await stream.send_all(data)
"""

LISTENER_TAB = (
    SIGNALING_EVENTS
    + """
out = {}
async with ub.open_node(URL, backoff=(0.05, 0.2), on_signaling_event=on_signaling) as node:

    async def check_link(peer, link):
        await reconnected.wait()
        # Lazy links: the other tab's rejoin greets nobody, so the test says when it is back.
        await go_ahead()
        out["kept_link"] = node.links.links.get(peer) is link and link.state.value == "connected"
        notify("kept_link", out["kept_link"])

    listener = await node.listen(7)
    notify("listening", node.address)
    async with asyncio.TaskGroup() as tasks:
        first = await listener.accept()  # the other tab's, before the restart
        tasks.create_task(echo(first))
        peer = first.remote_address[0]
        tasks.create_task(check_link(peer, node.links.links[peer]))
        await disconnected.wait()
        binding = tasks.create_task(node.bind(9))  # made while away: waits for the next session
        await reconnected.wait()
        bound = await binding
        notify("back", {"address": node.address, "bound": list(bound)})
        tasks.create_task(echo(await listener.accept()))  # the native node's, after
    await listener.aclose()
    out.update(address=node.address, events=events, bound=list(bound))
json.dumps(out)
"""
)

CONNECTING_TAB = (
    SIGNALING_EVENTS
    + """
async with ub.open_node(URL, backoff=NEVER, on_signaling_event=on_signaling) as node:
    stream = await node.connect((HOST, 7))
    link = node.links.links[HOST]

    async def round_trip(data):
        await stream.send_all(data)
        got = bytearray()
        while len(got) < len(data) and (chunk := await stream.receive_some()):
            got += chunk
        return hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()

    out = {"before": await round_trip(b"before" * 5000)}
    notify("connected", node.address)
    await disconnected.wait()
    out["during"] = await round_trip(b"during" * 5000)  # the server is down
    out["connected_during"] = node.connected
    notify("during")
    await rejoin_when_told(node)
    await reconnected.wait()
    out["after"] = await round_trip(b"after" * 5000)
    notify("after")
    await go_ahead()  # once the test checked the other tab's view of our link
    await stream.send_eof()
    out["eof"] = await stream.receive_some() == b""
    await stream.aclose()
    out["kept_link"] = node.links.links.get(HOST) is link and link.state.value == "connected"
    out.update(address=node.address, events=events)
json.dumps(out)
"""
)


async def test_server_restart_same_id(browser: Browser, browser_env: BrowserEnv) -> None:
    """The server restarts on its port; both tabs rejoin with their ids. A stream between
    them works before, during and after; the listener accepts a native node afterwards;
    a bind made while away completes in the next session."""
    listening_tab = await tab(browser, browser_env, "a")
    connecting_tab = await tab(browser, browser_env, "b")
    results: dict[str, Any] = {}
    try:
        with trio.fail_after(TEST_TIMEOUT):
            async with trio.open_nursery() as nursery:
                first = await start_server(nursery)
                run_listener, listener_done = runner(
                    listening_tab, results, "listener", LISTENER_TAB, URL=first.url
                )
                nursery.start_soon(run_listener)
                address = await wait_note(listening_tab, "listening")
                run_connector, connector_done = runner(
                    connecting_tab,
                    results,
                    "connector",
                    CONNECTING_TAB,
                    URL=first.url,
                    HOST=address,
                )
                nursery.start_soon(run_connector)
                other = await wait_note(connecting_tab, "connected")
                await first.stop()
                assert await wait_note(listening_tab, "disconnected") == address
                await wait_note(connecting_tab, "during")  # bytes moved while the server was down
                second = await start_server(nursery, first.port)
                back = await wait_note(listening_tab, "back")
                assert back == {"address": address, "bound": [address, 9]}
                # the connecting tab rejoins only now, after the listener got its id back
                await connecting_tab.evaluate("window.unisocketsRejoin = true")
                assert await wait_note(connecting_tab, "reconnected") == other
                await wait_note(connecting_tab, "after")
                await listening_tab.evaluate("window.unisocketsGo = true")
                assert await wait_note(listening_tab, "kept_link") is True
                async with open_node(second.url, ice_addresses=["127.0.0.1"]) as native:
                    stream = await native.connect((address, 7))
                    echoed = await native_echo_client(stream, PAYLOAD)
                    await stream.aclose()
                    await connecting_tab.evaluate("window.unisocketsGo = true")
                    await listener_done.wait()  # both tabs leave before the native node
                    await connector_done.wait()
                await second.stop()
    except BaseException:
        print(page_failure_report(listening_tab, connecting_tab))
        raise
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(PAYLOAD).digest()
    assert results["listener"] == {
        "address": address,
        "events": ["Disconnected", "Reconnected"],
        "bound": [address, 9],
        "kept_link": True,  # the other tab rejoined (no greeting between lazy tabs): link kept
    }
    assert results["connector"] == {
        "before": True,
        "during": True,
        "connected_during": False,
        "after": True,
        "eof": True,
        "address": other,
        "events": ["Disconnected", "Reconnected"],
        "kept_link": True,
    }


NEW_ID_TAB = (
    SIGNALING_EVENTS
    + """
import errno
out = {}
async with ub.open_node(URL, backoff=NEVER, on_signaling_event=on_signaling) as node:
    old = node.address
    listener = await node.listen(7)
    await node.bind(8)

    async def accept_once():
        try:
            await listener.accept()
        except ub.SignalingError as exc:  # waiting when the id changed
            out["accept"] = str(exc)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(accept_once())
        notify("listening", old)
        await rejoin_when_told(node)
        await reconnected.wait()
    try:
        await listener.accept()
    except ub.SignalingError as exc:
        out["accept_again"] = str(exc)
    try:
        await node.unbind((old, 8))
    except OSError as exc:
        out["unbind_old"] = errno.errorcode[exc.errno]
    await listener.aclose()
    async with node.listen(7) as again:  # the same port on the new address
        notify("relistening", node.address)
        await echo(await again.accept())
    out.update(old=old, new=node.address, events=events)
json.dumps(out)
"""
)


async def test_server_restart_new_id(browser: Browser, browser_env: BrowserEnv) -> None:
    """Another node takes the tab's id while the server restarts: the tab reports the new
    id, its old listener fails with a clear error, and it listens again on the new id."""
    page = await tab(browser, browser_env, "a")
    results: dict[str, Any] = {}
    try:
        with trio.fail_after(TEST_TIMEOUT):
            async with trio.open_nursery() as nursery:
                first = await start_server(nursery)
                run_tab, tab_done = runner(page, results, "tab", NEW_ID_TAB, URL=first.url)
                nursery.start_soon(run_tab)
                old = await wait_note(page, "listening")
                await first.stop()
                await wait_note(page, "disconnected")
                second = await start_server(nursery, first.port)
                # joins before the tab rejoins (the tab waits for the test's word)
                async with open_node(second.url, ice_addresses=["127.0.0.1"]) as native:
                    assert native.address == old
                    await page.evaluate("window.unisocketsRejoin = true")
                    changed_from, new = await wait_note(page, "id_changed")
                    assert changed_from == old
                    assert new != old
                    assert await wait_note(page, "relistening") == new
                    stream = await native.connect((new, 7))
                    echoed = await native_echo_client(stream, PAYLOAD)
                    await stream.aclose()
                    await tab_done.wait()
                await second.stop()
    except BaseException:
        print(page_failure_report(page))
        raise
    assert echoed == PAYLOAD
    lost = f"{old}:7 is lost: our id changed from {old} to {new}"
    assert results["tab"] == {
        "accept": lost,
        "accept_again": lost,
        "unbind_old": "EADDRNOTAVAIL",
        "old": old,
        "new": new,
        "events": ["Disconnected", "IdChanged", "Reconnected"],
    }


PACING_TAB = """
js.window.unisocketsNotes = js.Object.new()
out = {}

async def burst(send_rate, first_port):
    events = []
    record = lambda event: events.append([type(event).__name__, getattr(event, "reason", "")])
    async with ub.open_node(
        URL, reconnect=False, signaling_send_rate=send_rate, on_signaling_event=record
    ) as node:
        session = node.signaling.session
        results = await asyncio.gather(
            *(node.bind(port) for port in range(first_port, first_port + 30)),
            return_exceptions=True,
        )
        return {
            "bound": sum(isinstance(r, tuple) for r in results),
            "errors": sorted({type(r).__name__ for r in results if isinstance(r, BaseException)}),
            "connected": node.connected,
            "same_session": node.signaling.session == session,
            "events": events,
        }

out["paced"] = await burst((36.0, 7), 1000)
out["unpaced"] = await burst(None, 2000)
json.dumps(out)
"""


async def test_pacing_keeps_a_burst_under_the_rate_limit(
    browser: Browser, browser_env: BrowserEnv
) -> None:
    """Against a server allowing 40 messages/s in bursts of 8, 30 binds at once from a tab
    pacing at 36/s (bursts of 7) all succeed on one session; without pacing the server
    closes the tab's WebSocket (1008) and requests fail."""
    page = await tab(browser, browser_env, "a")
    with trio.fail_after(TEST_TIMEOUT):
        async with open_signaling_server(
            host="127.0.0.1", port=0, limits=ServerLimits(max_messages_per_second=40, burst=8)
        ) as server:
            result = await run_in_tab(page, PACING_TAB, URL=server.url)
    assert result["paced"] == {
        "bound": 30,
        "errors": [],
        "connected": True,
        "same_session": True,
        "events": [],
    }
    unpaced = result["unpaced"]
    assert unpaced["errors"] == ["SignalingError"]
    assert unpaced["bound"] < 30
    assert not unpaced["connected"]
    [(kind, reason)] = unpaced["events"]
    assert kind == "Disconnected"
    assert "1008" in reason
