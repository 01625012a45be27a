"""Measure the browser driver in headless Chromium (figures for docs/browser.md).

Run from the repository root (after scripts/install-browser-deps.sh)::

    .venv/bin/python -m tests.browser.measure [--rounds 5] [--mib 8]

Prints, as medians over the rounds (and min..max):

- page load to joined: navigation start to ``joined`` in a fresh tab (the
  demo page joining from its URL), with Pyodide's own share;
- link setup: ``connect()`` to a connected stream when no peer link exists
  yet (signaling connect + ICE + DTLS + SCTP + the data channel), both ways;
- throughput tab -> native and native -> tab: ``--mib`` MiB through one
  stream, timed by the receiver from the first byte to EOF.

Not a test: it asserts nothing and its numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import trio

from unisockets.net import open_node
from unisockets.signaling.server import open_signaling_server

from .cdp import Browser, connect_browser, launch_chromium
from .conftest import _load_serve
from .helpers import run_in_tab, wait_note

TAB_CONNECT = """
loop = asyncio.get_running_loop()
async with ub.open_node(URL) as node:
    notify("joined", node.address)
    started = loop.time()
    stream = await node.connect((HOST, 5000))
    setup = loop.time() - started
    if SEND:
        chunk = bytes(64 * 1024)
        for _ in range(MIB * 16):
            await stream.send_all(chunk)
        await stream.send_eof()
        await stream.receive_some()  # the native side's EOF after it read everything
        elapsed = None
    else:
        first = None
        total = 0
        while data := await stream.receive_some():
            first = first or loop.time()
            total += len(data)
        elapsed = loop.time() - first
    await stream.aclose()
json.dumps({"setup": setup, "elapsed": elapsed})
"""

TAB_LISTEN = """
async with ub.open_node(URL) as node:
    async with node.listen(6000) as listener:
        notify("listening", node.address)
        stream = await listener.accept()
        while await stream.receive_some():
            pass
        await stream.aclose()
json.dumps({})
"""


def summary(values: list[float], unit: str, scale: float = 1.0) -> str:
    scaled = [v * scale for v in values]
    return (
        f"{statistics.median(scaled):.1f} {unit} (min {min(scaled):.1f}, max {max(scaled):.1f},"
        f" n={len(scaled)})"
    )


async def page_load(browser: Browser, base: str, url: str) -> tuple[float, float]:
    """Open a fresh demo tab joining ``url``; return (ms to joined, ms to Pyodide loaded)."""
    page = await browser.open_page(base + "?" + urlencode({"signaling": url, "echo": ""}))
    timings = await page.wait_ready()
    while True:
        joined = await page.run_python(
            "from unisockets.browser import demo\ndemo._app.joined_after_ms if demo._app else None"
        )
        if joined is not None:
            break
        await trio.sleep(0.05)
    await page.close()
    return float(joined), float(timings["pyodideLoaded"])


async def main(rounds: int, mib: int) -> None:
    serve = _load_serve()
    wheel_dir = Path(tempfile.mkdtemp(prefix="unisockets-measure-"))
    serve.build_wheel(wheel_dir, sys.executable)
    with serve.start_server(wheel_dir) as http, launch_chromium() as devtools:
        base = "http://{}:{}/".format(*http.server_address[:2])
        async with (
            connect_browser(devtools) as browser,
            open_signaling_server(host="127.0.0.1", port=0) as server,
        ):
            loads = [await page_load(browser, base, server.url) for _ in range(rounds)]
            print("page load to joined:", summary([j for j, _ in loads], "ms"))
            print("  of which Pyodide loaded:", summary([p for _, p in loads], "ms"))
            page = await browser.open_page(base)
            await page.wait_ready()
            setups_tab, setups_native, up, down = [], [], [], []
            for send in (True, False):
                for _ in range(rounds):
                    async with (
                        open_node(server.url, ice_addresses=["127.0.0.1"]) as native,
                        native.listen(5000) as listener,
                        trio.open_nursery() as nursery,
                    ):
                        result: dict[str, dict[str, float]] = {}

                        async def run_tab(
                            native_address: str,
                            send: bool = send,
                            result: dict[str, dict[str, float]] = result,
                        ) -> None:
                            result["tab"] = await run_in_tab(
                                page,
                                TAB_CONNECT,
                                URL=server.url,
                                HOST=native_address,
                                SEND=send,
                                MIB=mib,
                            )

                        nursery.start_soon(run_tab, native.address)
                        stream = await listener.accept()
                        if send:
                            first, total = None, 0
                            while data := await stream.receive_some():
                                first = first or time.perf_counter()
                                total += len(data)
                            up.append(total / (time.perf_counter() - first) / 2**20)
                        else:
                            chunk = bytes(64 * 1024)
                            for _ in range(mib * 16):
                                await stream.send_all(chunk)
                        await stream.aclose()
                    setups_tab.append(result["tab"]["setup"])
                    if not send:
                        down.append(mib / result["tab"]["elapsed"])
            for _ in range(rounds):
                async with trio.open_nursery() as nursery:

                    async def listen_in_tab() -> None:
                        await run_in_tab(page, TAB_LISTEN, URL=server.url)

                    nursery.start_soon(listen_in_tab)
                    tab_address = await wait_note(page, "listening")
                    async with open_node(server.url, ice_addresses=["127.0.0.1"]) as native:
                        started = time.perf_counter()
                        stream = await native.connect((tab_address, 6000))
                        setups_native.append(time.perf_counter() - started)
                        await stream.send_eof()
                        await stream.aclose()
                        await trio.sleep(0.2)  # let the tab read the EOF before we leave
            print("link setup, tab connects to native:", summary(setups_tab, "ms", 1000))
            print("link setup, native connects to tab:", summary(setups_native, "ms", 1000))
            print(f"throughput tab -> native ({mib} MiB):", summary(up, "MiB/s"))
            print(f"throughput native -> tab ({mib} MiB):", summary(down, "MiB/s"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=8)
    arguments = parser.parse_args()
    trio.run(main, arguments.rounds, arguments.mib)
