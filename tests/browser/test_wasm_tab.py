"""Compiled C programs in a browser tab (web/wasm.html) against native nodes and other tabs.

The programs are the unmodified examples/c builds that ``unisockets run``
runs (built by tests/wasm's fixture); the tab serves their imports from its
own node, suspending them with JSPI. Everything runs on 127.0.0.1 with a
real signaling server, real aiortc and real headless Chromium.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from typing import Any

import pytest
import trio

from unisockets.net import SOCK_DGRAM, open_node
from unisockets.signaling.server import open_signaling_server

from ..wasm.conftest import WasmFiles, wasm_files  # noqa: F401 (the fixture)
from ..wasm.test_datagram import _ask
from .cdp import Browser, CDPError, Page
from .helpers import BrowserEnv, page_failure_report, tab
from .test_interop import native_echo_client

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Generous limit per test, only to turn a hang into a failure.
TEST_TIMEOUT = 150
LOOPBACK = ["127.0.0.1"]
PAYLOAD = bytes(range(251)) * 400 + b"unisock"  # ~100 kB: several recv calls of the guest


@pytest.fixture
def programs(browser_env: BrowserEnv, wasm_files: WasmFiles) -> WasmFiles:  # noqa: F811
    """The examples, served by the session's web server as /programs/NAME."""
    for path in (
        wasm_files.echo_server,
        wasm_files.echo_client,
        wasm_files.go_echo_client,
        wasm_files.probe,
        wasm_files.echo_server.parent / "udp_echo_server.wasm",
    ):
        browser_env.programs[path.name] = path
    return wasm_files


async def wasm_tab(browser: Browser, env: BrowserEnv, name: str) -> Page:
    """A reusable tab with wasm.html loaded (Pyodide ready)."""
    return await tab(browser, env, f"wasm-{name}", "wasm.html")


async def start_program(
    page: Page, program: str, url: str, args: list[str], stdin: str = ""
) -> None:
    options = {"program": f"programs/{program}", "signaling": url, "args": args, "stdin": stdin}
    await page.evaluate(f"window.unisocketsWasm.start({json.dumps(options)})")


async def state(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("({...window.unisocketsWasm.state})")
    return result


async def wait_output(page: Page, text: str, stream: str = "stdout") -> dict[str, Any]:
    """Wait until the program printed ``text`` (polling the page: it has no event to await)."""
    while True:
        current = await state(page)
        if text in current[stream]:
            return current
        if current["status"] in ("exited", "stopped", "trapped", "failed"):
            raise AssertionError(f"program ended before printing {text!r}: {current}")
        await trio.sleep(0.02)


async def finished(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("window.unisocketsWasm.finished")
    return result


async def test_page_reports_jspi(browser: Browser, browser_env: BrowserEnv) -> None:
    """This Chromium has JSPI, and the page says so."""
    page = await wasm_tab(browser, browser_env, "a")
    assert await page.evaluate("typeof WebAssembly.Suspending") == "function"
    assert await page.evaluate("typeof WebAssembly.promising") == "function"
    assert await page.evaluate("window.unisocketsWasm.jspi") is True
    notice = await page.evaluate("document.getElementById('jspi').textContent")
    assert "available" in notice


async def test_c_server_in_tab(
    browser: Browser, browser_env: BrowserEnv, programs: WasmFiles
) -> None:
    """The C echo server in a tab: a native Python client, then a `unisockets run` C client."""
    page = await wasm_tab(browser, browser_env, "a")
    with trio.fail_after(TEST_TIMEOUT):
        async with open_signaling_server(host="127.0.0.1", port=0) as server:
            await start_program(page, "echo_server.wasm", server.url, ["0.0.0.0", "1234", "2"])
            listening = await wait_output(page, "listening on 0.0.0.0:1234")
            tab_address = listening["address"]
            async with open_node(server.url, ice_addresses=LOOPBACK) as native:
                # This node stays in the network while the next client joins, so that
                # one gets a new id (a reused id while the tab still holds a link to its
                # previous owner is a different matter, docs/browser.md, "Known limits").
                stream = await native.connect((tab_address, 1234))
                echoed = await native_echo_client(stream, PAYLOAD)
                await stream.aclose()
                assert echoed == PAYLOAD  # every byte back, then EOF from the guest's close()
                await wait_output(page, "closed ")
                client = await trio.run_process(
                    [
                        sys.executable,
                        "-m",
                        "unisockets",
                        "run",
                        str(programs.echo_client),
                        "--signaling",
                        server.url,
                        "--ice-address",
                        "127.0.0.1",
                        "--",
                        tab_address,
                        "1234",
                    ],
                    stdin=b"hello\nfrom a native guest\n",
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
                assert client.returncode == 0, client.stderr.decode()
                assert client.stdout == b"hello\nfrom a native guest\n"
            result = await finished(page)
    assert result["status"] == "exited", page_failure_report(page)
    assert result["exitCode"] == 0
    assert result["stdout"].count("accepted ") == 2
    assert result["stdout"].count("closed ") == 2


async def test_c_server_in_tab_with_the_originals_address(
    browser: Browser, browser_env: BrowserEnv, programs: WasmFiles
) -> None:
    """The C echo server with its defaults binds 127.0.0.1:1234 in a tab, as the original's.

    No arguments: the program binds the original's default address, which on
    the overlay is an ordinary address that is no node's id (docs/protocol.md,
    "Bind and listen"); a native client connects to 127.0.0.1:1234, not to the
    tab's id, and reaches the tab.
    """
    page = await wasm_tab(browser, browser_env, "a")
    with trio.fail_after(TEST_TIMEOUT):
        async with open_signaling_server(host="127.0.0.1", port=0) as server:
            await start_program(page, "echo_server.wasm", server.url, [])
            listening = await wait_output(page, "listening on 127.0.0.1:1234")
            async with open_node(server.url, ice_addresses=LOOPBACK) as native:
                stream = await native.connect(("127.0.0.1", 1234))
                echoed = await native_echo_client(stream, PAYLOAD)
                await stream.aclose()
                assert echoed == PAYLOAD
                current = await wait_output(page, "closed ")
                assert f"accepted {native.address}:" in current["stdout"]
            # Serving forever by default (as the original's): stop it from the page.
            await page.evaluate("window.unisocketsWasm.stop()")
            result = await finished(page)
    assert result["status"] == "stopped", page_failure_report(page)
    assert listening["address"] != "127.0.0.1"  # the tab's id is another address


async def test_c_udp_echo_server_in_tab(
    browser: Browser, browser_env: BrowserEnv, programs: WasmFiles
) -> None:
    """The C UDP echo server in a tab answers a native node (sendto and recvfrom under JSPI)."""
    page = await wasm_tab(browser, browser_env, "a")
    with trio.fail_after(TEST_TIMEOUT):
        async with open_signaling_server(host="127.0.0.1", port=0) as server:
            await start_program(page, "udp_echo_server.wasm", server.url, ["1234", "0"])
            started = await wait_output(page, "echoing datagrams on port 1234", "stderr")
            tab_address = started["address"]
            async with open_node(server.url, ice_addresses=LOOPBACK) as native:
                with native.socket(SOCK_DGRAM) as sock:
                    for data in (b"one", bytes(range(256)) * 4, b"\x00three"):
                        assert await _ask(sock, (tab_address, 1234), data) == data
            await page.evaluate("window.unisocketsWasm.stop()")
            result = await finished(page)
    assert result["status"] == "stopped", page_failure_report(page)


@pytest.mark.parametrize(
    ("program", "greeting"),
    [("echo_client.wasm", "connected to"), ("echo_client_go.wasm", None)],
    ids=["c", "go"],
)
async def test_client_in_tab(
    browser: Browser,
    browser_env: BrowserEnv,
    programs: WasmFiles,
    program: str,
    greeting: str | None,
) -> None:
    """The C echo client (and the Go wasip1 one) in a tab against a native Python echo server.

    The native server echoes everything and closes after the client's EOF;
    the client prints every echo and exits 0.
    """
    page = await wasm_tab(browser, browser_env, "b")
    served = trio.Event()
    echoed_bytes: list[int] = []
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            open_node(server.url, ice_addresses=LOOPBACK) as native,
            native.listen(7000) as listener,
            trio.open_nursery() as nursery,
        ):

            async def serve_one() -> None:
                stream = await listener.accept()
                total = 0
                while data := await stream.receive_some():
                    total += len(data)
                    await stream.send_all(data)
                await stream.aclose()  # the client saw its echoes; now it sees EOF
                echoed_bytes.append(total)
                served.set()

            nursery.start_soon(serve_one)
            lines = "".join(f"line {n} from the tab\n" for n in range(20))
            await start_program(page, program, server.url, [native.address, "7000"], lines)
            result = await finished(page)
            await served.wait()
    assert result["status"] == "exited", (result, page_failure_report(page))
    assert result["exitCode"] == 0
    assert result["stdout"] == lines
    if greeting is not None:
        assert f"{greeting} {native.address}:7000" in result["stderr"]
    assert echoed_bytes == [len(lines)]


async def test_two_tabs(browser: Browser, browser_env: BrowserEnv, programs: WasmFiles) -> None:
    """C server in one tab, C client in another, over a tab-to-tab data channel."""
    server_page = await wasm_tab(browser, browser_env, "a")
    client_page = await wasm_tab(browser, browser_env, "b")
    with trio.fail_after(TEST_TIMEOUT):
        async with open_signaling_server(host="127.0.0.1", port=0) as server:
            await start_program(
                server_page, "echo_server.wasm", server.url, ["0.0.0.0", "1234", "1"]
            )
            listening = await wait_output(server_page, "listening on")
            await start_program(
                client_page,
                "echo_client.wasm",
                server.url,
                [listening["address"], "1234"],
                "ping\npong\n",
            )
            client = await finished(client_page)
            served = await finished(server_page)
    report = page_failure_report(server_page, client_page)
    assert client["status"] == "exited" and client["exitCode"] == 0, (client, report)
    assert client["stdout"] == "ping\npong\n"
    assert served["status"] == "exited" and served["exitCode"] == 0, (served, report)
    assert f"accepted {client['address']}:" in served["stdout"]


async def test_stop_blocked_accept(
    browser: Browser, browser_env: BrowserEnv, programs: WasmFiles
) -> None:
    """A guest blocked in accept() is stopped with the page's button; the tab runs the next one."""
    page = await wasm_tab(browser, browser_env, "a")
    with trio.fail_after(TEST_TIMEOUT):
        async with open_signaling_server(host="127.0.0.1", port=0) as server:
            await start_program(page, "echo_server.wasm", server.url, ["0.0.0.0", "1234"])
            await wait_output(page, "listening on")
            assert await page.evaluate("document.getElementById('stop').disabled") is False
            await page.evaluate("document.getElementById('stop').click()")
            stopped = await finished(page)
            assert stopped["status"] == "stopped", (stopped, page_failure_report(page))
            assert stopped["exitCode"] is None
            assert await page.evaluate("'the tab is alive'") == "the tab is alive"
            # The same tab runs the server again (its old node left: no stale listener).
            await start_program(page, "echo_server.wasm", server.url, ["0.0.0.0", "1234", "1"])
            listening = await wait_output(page, "listening on")
            async with open_node(server.url, ice_addresses=LOOPBACK) as native:
                stream = await native.connect((listening["address"], 1234))
                assert await native_echo_client(stream, b"after the stop\n") == b"after the stop\n"
                await stream.aclose()
            again = await finished(page)
    assert again["status"] == "exited" and again["exitCode"] == 0


async def test_run_browser_cli(
    browser: Browser, browser_env: BrowserEnv, programs: WasmFiles
) -> None:
    """`unisockets run --browser` serves the page and prints a URL that runs the program."""
    command = [
        sys.executable, "-m", "unisockets", "run", "--browser", str(programs.echo_server),
        "--signaling", "SIGNALING", "--", "0.0.0.0", "1234", "1",
    ]  # fmt: skip
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            trio.open_nursery() as nursery,
        ):
            command[command.index("SIGNALING")] = server.url
            run = functools.partial(
                trio.run_process,
                command,
                stdout=subprocess.PIPE,
                check=False,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            process: trio.Process = await nursery.start(run)
            assert process.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, "unisockets run --browser printed no URL"
                line += chunk
            url = line.decode().strip()
            assert url.startswith("http://127.0.0.1:") and "/wasm.html?program=programs/" in url
            page = await browser.open_page(url)
            try:
                await page.wait_ready()
                listening = await wait_output(page, "listening on")
                async with open_node(server.url, ice_addresses=LOOPBACK) as native:
                    stream = await native.connect((listening["address"], 1234))
                    assert await native_echo_client(stream, b"via the CLI\n") == b"via the CLI\n"
                    await stream.aclose()
                result = await finished(page)
                assert result["status"] == "exited" and result["exitCode"] == 0
            finally:
                await page.close()
                process.terminate()
    assert process.returncode == 0  # SIGTERM: a requested stop


PROBES = [
    ["bad-calls"],
    ["refused", "10.0.0.99", "1234"],
    ["bind-twice", "1240"],
]


async def test_errnos_as_unisockets_run(
    browser: Browser, browser_env: BrowserEnv, programs: WasmFiles
) -> None:
    """tests/wasm/probe.c prints the same results and errnos in a tab as under run_wasm.

    Bad descriptors, stdio, bad families and protocols, calls in the wrong
    state, short addresses, pointers outside the memory (EFAULT), a refused
    connect, a port bound twice: each gives the native runner's return
    value and errno name, over the same kind of node (overlay).
    """
    from unisockets.wasm import WasmProgram, run_wasm

    probe = WasmProgram.from_file(programs.probe)
    page = await wasm_tab(browser, browser_env, "b")
    with trio.fail_after(TEST_TIMEOUT):
        async with open_signaling_server(host="127.0.0.1", port=0) as server:
            for args in PROBES:
                native_out: list[bytes] = []
                async with open_node(server.url, ice_addresses=LOOPBACK) as native:
                    status = await run_wasm(native, probe, args, stdout=native_out.append)
                assert status == 0
                await start_program(page, "probe.wasm", server.url, args)
                result = await finished(page)
                assert result["status"] == "exited", (result, page_failure_report(page))
                assert result["exitCode"] == 0
                expected = b"".join(native_out).decode()
                assert result["stdout"] == expected, args
                assert " -1 " in expected  # the probes do fail: errnos are compared


async def test_page_without_jspi_says_so(browser: Browser, browser_env: BrowserEnv) -> None:
    """In a browser without JSPI the page explains it, Run stays off, run() fails clearly."""
    page = await browser.open_page("about:blank")
    try:
        await page.send(
            "Page.addScriptToEvaluateOnNewDocument",
            source="delete WebAssembly.Suspending; delete WebAssembly.promising;",
        )
        await page.send("Page.navigate", url=browser_env.base_url + "wasm.html")
        with trio.fail_after(TEST_TIMEOUT):
            await page.wait_ready()
        assert await page.evaluate("window.unisocketsWasm.jspi") is False
        notice = await page.evaluate("document.getElementById('jspi').textContent")
        assert "lacks JavaScript Promise Integration" in notice
        assert await page.evaluate("document.getElementById('run').disabled") is True
        with pytest.raises(CDPError, match="lacks JavaScript Promise Integration"):
            await page.evaluate("window.unisocketsWasm.run({program: 'programs/probe.wasm'})")
    finally:
        await page.close()
