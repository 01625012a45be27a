"""Lazy peer links in a tab (docs/protocol.md, "Lazy peer links"), with a native trio node.

Real headless Chromium (Pyodide) and the project's signaling server on
127.0.0.1. The tab (by default) and two native nodes knock with ``lazyLinks``: the tab
links only to the node that connects to it, closes that link once it carried
no connection for the (short) idle timeout, and the next connect sets a new
one up.
"""

from __future__ import annotations

import pytest
import trio

from unisockets.net import open_node
from unisockets.signaling.server import open_signaling_server

from .cdp import Browser
from .helpers import BrowserEnv, run_in_tab, tab, wait_note
from .test_interop import native_echo_client

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Generous limit, only to turn a hang into a failure.
TEST_TIMEOUT = 120
#: Seconds a link without connections lives on every node of the test.
IDLE = 1.0
PAYLOAD = bytes(range(256)) * 64

TAB_LAZY_ECHO = """
async with ub.open_node(URL, link_idle_timeout=IDLE) as node:  # lazy by default
    async with node.listen(PORT) as listener:
        notify("listening", node.address)
        for round in range(2):
            stream = await listener.accept()
            notify(f"links{round}", sorted(node.links.links))
            while data := await stream.receive_some():
                await stream.send_all(data)
            await stream.aclose()
            while node.links.links:  # the idle timer closes the link
                await asyncio.sleep(0.05)
            notify(f"unlinked{round}", True)
json.dumps({"address": node.address})
"""


async def test_a_tab_links_on_demand_and_closes_idle_links(
    browser: Browser, browser_env: BrowserEnv
) -> None:
    page = await tab(browser, browser_env, "a")
    lazy = {"ice_addresses": ["127.0.0.1"], "lazy_links": True, "link_idle_timeout": IDLE}
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            trio.open_nursery() as nursery,
        ):
            results: dict[str, object] = {}

            async def run_tab() -> None:
                results["tab"] = await run_in_tab(
                    page, TAB_LAZY_ECHO, URL=server.url, PORT=1234, IDLE=IDLE
                )

            nursery.start_soon(run_tab)
            tab_address = await wait_note(page, "listening")
            async with (
                open_node(server.url, **lazy) as native,
                open_node(server.url, **lazy) as bystander,
            ):
                links = native.transport.links  # type: ignore[attr-defined]
                for round in range(2):
                    stream = await native.connect((tab_address, 1234))
                    # Only the node that connects is linked; the bystander is not.
                    assert await wait_note(page, f"links{round}") == [native.address]
                    assert set(links) == {tab_address}
                    assert await native_echo_client(stream, PAYLOAD) == PAYLOAD
                    await stream.aclose()
                    assert await wait_note(page, f"unlinked{round}") is True
                    while tab_address in links:  # noqa: ASYNC110 - no event for an idle close
                        await trio.sleep(0.05)
                assert not bystander.transport.links  # type: ignore[attr-defined]
    assert results["tab"] == {"address": tab_address}
