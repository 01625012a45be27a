"""A tab connects to a new node that took a dead node's id while it still probes the old link.

Real headless Chromium (Pyodide), a native aiortc node run as a child and
SIGKILLed, a native node that joins after it and gets its id, the project's
signaling server, all on 127.0.0.1 (docs/browser.md, "Known limits";
docs/protocol.md, "Goodbye is not death"). The tab's connection starts on
the old link (its probe has not failed yet); when the probe fails the link,
the connection is tried once more on a new link, to the new node.

The probe of the tab's old link is made longer than the default 1.5 s (page
code), so the new node surely joins and listens while it runs, on a loaded
machine too; every wait is on a note or an event.
"""

from __future__ import annotations

import pytest
import trio

from unisockets.net import open_node

from ..restartable_server import start_server
from .cdp import Browser
from .helpers import BrowserEnv, page_failure_report, run_in_tab, tab, wait_note
from .test_probe import GOODBYES, TEST_TIMEOUT, echo_child

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Seconds the tab's probe of the dead node's link waits (the default is 1.5 s).
PROBE_TIMEOUT = 8.0

TAB_CLIENT_OF_A_REPLACED_PEER = (
    GOODBYES
    + """
async def echoed(stream, data):
    await stream.send_all(data)
    got = b""
    while len(got) < len(data):
        got += await stream.receive_some()
    return got.decode()

async with ub.open_node(URL) as node:
    note_goodbyes(node)
    stream = await node.connect((HOST, 7))
    greeting = await echoed(stream, b"are you there")
    old = node.links.links[HOST]
    old.negotiation._probe_timeout = PROBE_TIMEOUT  # read when the probe starts
    notify("connected", greeting)
    while not getattr(js.window, "unisocketsGo", False):  # the new node listens
        await asyncio.sleep(0.01)
    probing = node.links.links.get(HOST) is old and old.negotiation.probing
    fresh = await node.connect((HOST, 7))
    got = await echoed(fresh, b"new node")
    out = {
        "probing": probing,
        "got": got,
        "old": reasons(old.failure),
        "new_link": node.links.links.get(HOST) is not old,
    }
    await fresh.aclose()
    await stream.aclose()
json.dumps(out)
"""
)


async def test_a_tab_connects_to_a_new_node_with_a_dead_nodes_id_during_the_probe(
    browser: Browser, browser_env: BrowserEnv
) -> None:
    page = await tab(browser, browser_env, "a")
    await page.evaluate("window.unisocketsGo = false")
    results: dict[str, object] = {}
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await start_server(nursery)
            async with echo_child(server.url) as (process, address):
                done = trio.Event()

                async def run_tab() -> None:
                    results["tab"] = await run_in_tab(
                        page,
                        TAB_CLIENT_OF_A_REPLACED_PEER,
                        URL=server.url,
                        HOST=address,
                        PROBE_TIMEOUT=PROBE_TIMEOUT,
                    )
                    done.set()

                nursery.start_soon(run_tab)
                assert await wait_note(page, "connected") == "are you there"
                process.kill()  # SIGKILL: no SCTP ABORT, no DTLS close, no leave message
                assert await wait_note(page, "peer_left") == address
            async with (
                open_node(server.url, ice_addresses=["127.0.0.1"]) as newcomer,
                newcomer.listen(7) as listener,
            ):
                assert newcomer.address == address  # the dead node's id, free again
                await page.evaluate("window.unisocketsGo = true")
                accepted = await listener.accept()
                got = b""
                while len(got) < 8:
                    got += await accepted.receive_some()
                await accepted.send_all(got)
                await done.wait()
                await accepted.aclose()
            nursery.cancel_scope.cancel()
    out = results["tab"]
    assert isinstance(out, dict), out
    assert out["probing"], (out, page_failure_report(page))  # it started on the old link
    assert out["got"] == "new node" and out["new_link"], out
    assert f"{address} left: no answer on the link" in out["old"], out
