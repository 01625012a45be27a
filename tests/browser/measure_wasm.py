"""Measure compiled programs in a browser tab (web/wasm.html; figures for docs/wasm.md).

Run from the repository root (after scripts/install-browser-deps.sh and
scripts/install-wasm-toolchain.sh)::

    .venv/bin/python -m tests.browser.measure_wasm [--rounds 5] [--screenshot docs/wasm-tab.png]

Prints, as medians over the rounds (and min..max):

- page load to listening: navigation start to the C echo server's first
  output (``listening on ...``, printed after ``listen`` returned) in a
  fresh tab opened on a ``wasm.html?program=...`` URL;
- echo RTT with a native node: 32-byte round trips through the C echo
  server in a tab, against the same through a Python echo server in a tab;
- the cost of one import call: ``benchmarks/wasm_tab_calls.c`` in a tab
  (a synchronous import; a blocking one answered at once; one that suspends
  the guest through JSPI for a turn of the event loop), and a bare JSPI call
  (a ``WebAssembly.Suspending`` import that returns a resolved promise)
  against a plain import, without Python.

``--screenshot PATH`` also saves a PNG of a tab whose C echo server served
a native client and a ``unisockets run`` C client. Not a test: it asserts
nothing and its numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trio
import wasmtime

from unisockets.net import open_node
from unisockets.signaling.server import open_signaling_server

from .cdp import Browser, Page, connect_browser, launch_chromium
from .conftest import ROOT, _load_serve
from .helpers import run_in_tab, wait_note

LOOPBACK = ["127.0.0.1"]
MESSAGE = b"x" * 31 + b"\n"

TAB_ECHO = """
async with ub.open_node(URL) as node:
    async with node.listen(PORT) as listener:
        notify("listening", node.address)
        stream = await listener.accept()
        while data := await stream.receive_some():
            await stream.send_all(data)
        await stream.aclose()
json.dumps({})
"""

# A module importing env.f () -> i32 and exporting run(n): n calls of f.
LOOP_WAT = """
(module
  (import "env" "f" (func $f (result i32)))
  (func (export "run") (param $n i32) (result i32)
    (local $sum i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $sum (i32.add (local.get $sum) (call $f)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $sum)))
"""

BARE_JSPI = """
(async (bytes, n) => {
  const module = await WebAssembly.compile(new Uint8Array(bytes));
  const plain = await WebAssembly.instantiate(module, { env: { f: () => 1 } });
  let t = performance.now();
  plain.exports.run(n);
  const plainUs = (performance.now() - t) * 1000 / n;
  const suspending = await WebAssembly.instantiate(module, {
    env: { f: new WebAssembly.Suspending(() => Promise.resolve(1)) },
  });
  const run = WebAssembly.promising(suspending.exports.run);
  t = performance.now();
  await run(n);
  const suspendingUs = (performance.now() - t) * 1000 / n;
  return { plainUs, suspendingUs };
})
"""


def summary(values: list[float], unit: str) -> str:
    return (
        f"{statistics.median(values):.2f} {unit} "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def build(out: Path) -> dict[str, Path]:
    subprocess.run(["make", "-s", "-C", str(ROOT / "examples" / "c"), f"OUT={out}"], check=True)
    calls = out / "wasm_tab_calls.wasm"
    subprocess.run(
        [
            "clang-16", "--target=wasm32-wasi", "-O2", "-Wl,--export=errno",
            f"-I{ROOT / 'examples' / 'c'}", str(ROOT / "benchmarks" / "wasm_tab_calls.c"),
            "-o", str(calls),
        ],
        check=True,
    )  # fmt: skip
    return {p.name: p for p in (out / "echo_server.wasm", out / "echo_client.wasm", calls)}


async def wasm_state(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("({...window.unisocketsWasm.state})")
    return result


async def wait_output(page: Page, text: str) -> dict[str, Any]:
    while text not in (state := await wasm_state(page))["stdout"]:
        if state["status"] not in ("idle", "joining", "running"):
            raise RuntimeError(f"the program ended: {state}")
        await trio.sleep(0.01)
    return state


async def run_program(page: Page, program: str, url: str, args: list[str]) -> None:
    options = {"program": f"programs/{program}", "signaling": url, "args": args}
    await page.evaluate(f"window.unisocketsWasm.start({json.dumps(options)})")


async def round_trips(stream: Any, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await stream.send_all(MESSAGE)
        received = b""
        while len(received) < len(MESSAGE):
            received += await stream.receive_some()
        times.append((time.perf_counter() - started) * 1e6)
    await stream.send_eof()
    while await stream.receive_some():
        pass
    await stream.aclose()
    return times


async def main(rounds: int, trips: int, screenshot: Path | None) -> None:
    serve = _load_serve()
    work = Path(tempfile.mkdtemp(prefix="unisockets-measure-wasm-"))
    programs = build(work)
    serve.build_wheel(work, sys.executable)
    with serve.start_server(work, programs=programs) as http, launch_chromium() as devtools:
        base = "http://{}:{}/".format(*http.server_address[:2])
        async with (
            connect_browser(devtools) as browser,
            open_signaling_server(host="127.0.0.1", port=0) as server,
        ):
            await page_load(browser, base, server.url, rounds)
            page = await browser.open_page(base + "wasm.html")
            await page.wait_ready()
            await rtt(page, server.url, rounds, trips)
            await call_cost(page, server.url, rounds)
            if screenshot is not None:
                await take_screenshot(page, server.url, programs, screenshot)


async def page_load(browser: Browser, base: str, url: str, rounds: int) -> None:
    loads, pyodide = [], []
    for _ in range(rounds):
        query = urlencode(
            [
                ("program", "programs/echo_server.wasm"),
                ("signaling", url),
                ("arg", "0.0.0.0"),
                ("arg", "1234"),
            ]
        )
        page = await browser.open_page(f"{base}wasm.html?{query}")
        timings = await page.wait_ready()
        state = await wait_output(page, "listening on")
        loads.append(state["timings"]["firstOutput"])
        pyodide.append(timings["pyodideLoaded"])
        await page.evaluate("window.unisocketsWasm.stop()")
        await page.evaluate("window.unisocketsWasm.finished")
        await page.close()
    print("page load to guest listening:", summary(loads, "ms"))
    print("  of which Pyodide loaded:", summary(pyodide, "ms"))


async def rtt(page: Page, url: str, rounds: int, trips: int) -> None:
    guest, python = [], []
    for _ in range(rounds):
        await run_program(page, "echo_server.wasm", url, ["0.0.0.0", "1234", "1"])
        address = (await wait_output(page, "listening on"))["address"]
        async with open_node(url, ice_addresses=LOOPBACK) as native:
            guest.append(
                statistics.median(await round_trips(await native.connect((address, 1234)), trips))
            )
        await page.evaluate("window.unisocketsWasm.finished")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_in_tab(page, TAB_ECHO, URL=url, PORT=1235))
            address = await wait_note(page, "listening")
            async with open_node(url, ice_addresses=LOOPBACK) as native:
                python.append(
                    statistics.median(
                        await round_trips(await native.connect((address, 1235)), trips)
                    )
                )
    print(f"echo RTT native <-> C guest in a tab ({len(MESSAGE)} B):", summary(guest, "us"))
    print(f"echo RTT native <-> Python in a tab ({len(MESSAGE)} B):", summary(python, "us"))


async def call_cost(page: Page, url: str, rounds: int) -> None:
    sync, no_wait, suspended, bare_plain, bare_suspending = [], [], [], [], []
    loop = list(wasmtime.wat2wasm(LOOP_WAT))
    for _ in range(rounds):
        await run_program(page, "wasm_tab_calls.wasm", url, ["2000"])
        state = await page.evaluate("window.unisocketsWasm.finished")
        lines = dict(line.split(": ") for line in state["stdout"].splitlines())
        sync.append(float(lines["sync import"].split()[0]))
        no_wait.append(float(lines["blocking import, no wait"].split()[0]))
        suspended.append(float(lines["blocking import, suspended"].split()[0]))
        bare = await page.evaluate(f"({BARE_JSPI})({json.dumps(loop)}, 20000)")
        bare_plain.append(bare["plainUs"])
        bare_suspending.append(bare["suspendingUs"])
    print("import call, sync (unisockets_errno, into Python):", summary(sync, "us"))
    print("import call, blocking but answered at once (recv EBADF):", summary(no_wait, "us"))
    print("import call, blocking and suspended (usleep(0), JSPI):", summary(suspended, "us"))
    print("bare import call, plain JS function:", summary(bare_plain, "us"))
    print("bare import call, JSPI (Suspending, resolved promise):", summary(bare_suspending, "us"))


async def take_screenshot(page: Page, url: str, programs: dict[str, Path], path: Path) -> None:
    await run_program(page, "echo_server.wasm", url, ["0.0.0.0", "1234"])
    address = (await wait_output(page, "listening on"))["address"]
    async with open_node(url, ice_addresses=LOOPBACK) as native:
        stream = await native.connect((address, 1234))
        await stream.send_all(b"hello from a native node\n")
        await round_trips(stream, 1)
    await trio.run_process(
        [
            sys.executable, "-m", "unisockets", "run", str(programs["echo_client.wasm"]),
            "--signaling", url, "--ice-address", "127.0.0.1", "--", address, "1234",
        ],
        stdin=b"hello from unisockets run\n",
        capture_stdout=True,
    )  # fmt: skip
    await wait_output(page, "closed ")
    while (await wasm_state(page))["stdout"].count("closed ") < 2:  # noqa: ASYNC110
        await trio.sleep(0.05)
    await page.screenshot(path)
    print(f"screenshot: {path}")
    await page.evaluate("window.unisocketsWasm.stop()")
    await page.evaluate("window.unisocketsWasm.finished")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument("--screenshot", type=Path)
    arguments = parser.parse_args()
    trio.run(main, arguments.rounds, arguments.trips, arguments.screenshot)
