"""The demo page (web/index.html) in headless Chromium, with a native node on the other end.

The page joins from its URL, serves echo on port 7 and connects its client to
a native node's echo server; the native node also connects to the page's echo
server, and a second native node only joins (lazy links: the page never links
with it). The test checks the bytes on the native side and what the page shows,
and saves a screenshot (path printed; kept in pytest's temporary folder).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import trio

from unisockets.net import open_node
from unisockets.signaling.server import open_signaling_server

from ..restartable_server import start_server
from .cdp import Browser
from .helpers import BrowserEnv, tab

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Not the page's default message ("hello from the browser"), so that the test sees
#: the URL's ``message=`` reach the Message box.
MESSAGE = "hi from the URL of test_demo"


async def page_text(page, element_id: str) -> str:  # type: ignore[no-untyped-def]
    """The text content of one element of the page."""
    return str(await page.evaluate(f"document.getElementById({element_id!r}).textContent"))


async def test_demo_page(browser: Browser, browser_env: BrowserEnv) -> None:
    with trio.fail_after(120):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            open_node(server.url, ice_addresses=["127.0.0.1"]) as native,
            open_node(server.url, ice_addresses=["127.0.0.1"]) as bystander,
            native.listen(7) as listener,
            trio.open_nursery() as nursery,
        ):
            heard: list[bytes] = []

            async def native_echo_server() -> None:
                stream = await listener.accept()
                async with stream:
                    while data := await stream.receive_some():
                        heard.append(data)
                        await stream.send_all(data)

            nursery.start_soon(native_echo_server)
            query = urlencode(
                {
                    "signaling": server.url,
                    "subnet": "10.0.0",
                    "echo": "7",
                    "connect": f"{native.address}:7",
                    "message": MESSAGE,
                }
            )
            page = await tab(browser, browser_env, "demo", "?" + query)
            while not (await page_text(page, "state")).startswith("joined as"):  # noqa: ASYNC110
                await trio.sleep(0.05)  # the page's own loop: nothing to wait on from here
            tab_address = (await page_text(page, "address")).strip()
            fields = await page.evaluate(
                "Object.fromEntries(['signaling', 'subnet', 'echo-port', 'remote', 'message']"
                ".map(id => [id, document.getElementById(id).value]))"
            )
            while "received" not in await page_text(page, "log"):  # noqa: ASYNC110
                await trio.sleep(0.05)

            # the native node uses the page's echo server
            stream = await native.connect((tab_address, 7))
            await stream.send_all(b"native says hi")
            echoed = await stream.receive_some()
            while "echo server" not in await page_text(page, "connections"):  # noqa: ASYNC110
                await trio.sleep(0.05)  # the status panel refreshes every 0.25 s
            await trio.sleep(0.3)  # one more refresh: the byte counts of the echo
            connections = await page_text(page, "connections")
            peers = await page_text(page, "peers")
            log = await page_text(page, "log")
            shot = await page.screenshot(browser_env.artifacts / "demo.png")
            print(f"\ndemo screenshot: {shot}")
            await stream.aclose()
            await page.evaluate("document.getElementById('leave').click()")
            while (await page_text(page, "state")) != "not joined":  # noqa: ASYNC110
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    # The form shows what the URL asked for, the Message box included.
    assert fields == {
        "signaling": server.url,
        "subnet": "10.0.0",
        "echo-port": "7",
        "remote": f"{native.address}:7",
        "message": MESSAGE,
    }
    assert b"".join(heard) == MESSAGE.encode()
    assert echoed == b"native says hi"
    assert f"received {MESSAGE!r}" in log
    # Lazy links: the page links with the node it talked to, not with the bystander.
    assert peers == f"{native.address} (connected)"
    assert bystander.address not in peers
    assert f"{native.address}:7" in connections
    assert f"{tab_address}:7" in connections
    assert f"{len(MESSAGE)}{len(MESSAGE)}" in connections  # client: sent, received
    assert "echo server1414" in connections  # the native client's 14 bytes, echoed


async def test_demo_page_shows_signaling_loss_and_rejoin(
    browser: Browser, browser_env: BrowserEnv
) -> None:
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            first = await start_server(nursery)
            query = urlencode({"signaling": first.url, "subnet": "10.0.0"})
            page = await tab(browser, browser_env, "demo-rejoin", "?" + query)  # a fresh tab

            async def state_becomes(prefix: str) -> None:
                with trio.move_on_after(20) as scope:
                    while not (await page_text(page, "state")).startswith(prefix):  # noqa: ASYNC110
                        await trio.sleep(0.05)  # the page's own loop: nothing to wait on from here
                if scope.cancelled_caught:
                    state, log = await page_text(page, "state"), await page_text(page, "log")
                    raise AssertionError(f"waiting for {prefix!r}: state {state!r}, log {log!r}")

            await state_becomes("joined as 10.0.0.1")
            await first.stop()
            await state_becomes("signaling lost: reconnecting")
            second = await start_server(nursery, first.port)
            await state_becomes("joined as 10.0.0.1")
            log = await page_text(page, "log")
            await page.evaluate("document.getElementById('leave').click()")
            await state_becomes("not joined")
            await second.stop()
    assert "lost the signaling server as 10.0.0.1; reconnecting" in log
    assert "rejoined as 10.0.0.1" in log
