"""Helpers of the browser tests: the session's environment, reusable tabs, page code."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .cdp import Browser, Page


@dataclass
class BrowserEnv:
    """What the session set up: the demo's base URL, Chromium's DevTools URL, reusable tabs."""

    base_url: str
    devtools_url: str
    artifacts: Path
    tabs: dict[str, str] = field(default_factory=dict)  # name -> target id
    programs: dict[str, Path] = field(default_factory=dict)  # served as /programs/NAME


async def tab(browser: Browser, env: BrowserEnv, name: str, query: str = "") -> Page:
    """The reusable tab ``name`` with Pyodide and unisockets loaded (opened on first use).

    Args:
        browser: this test's DevTools connection.
        env: the session's environment.
        name: which tab (tests that need two use two names).
        query: a query string for a tab opened for one purpose (e.g. the demo).
    """
    target = env.tabs.get(name)
    if target is None:
        page = await browser.open_page(env.base_url + query)
        env.tabs[name] = page.target
    else:
        page = await browser.attach(target)
    with trio.fail_after(120):
        await page.wait_ready()
    return page


def page_failure_report(*pages: Page) -> str:
    """The console output of ``pages``, for assertion messages."""
    return "\n".join(f"--- tab {p.target[:8]} console:\n" + "\n".join(p.console) for p in pages)


#: Page-side prelude: ``notify(key, value)`` publishes progress the test waits for.
PRELUDE = """
import asyncio, hashlib, json, js
from unisockets import browser as ub

def notify(key, value=True):
    setattr(js.window.unisocketsNotes, key, json.dumps(value))
"""


def page_code(body: str, **values: Any) -> str:
    """Python for a tab: the prelude, ``NAME = value`` lines, then ``body`` (dedented)."""
    assignments = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    return PRELUDE + assignments + textwrap.dedent(body)


async def run_in_tab(page: Page, body: str, **values: Any) -> Any:
    """Run :func:`page_code` in ``page``; its last expression must be ``json.dumps(...)``."""
    await page.evaluate("window.unisocketsNotes = window.unisocketsNotes || {}")
    return json.loads(await page.run_python(page_code(body, **values)))


async def wait_note(page: Page, key: str) -> Any:
    """Wait until the page code called ``notify(key, value)``; return the value."""
    await page.evaluate("window.unisocketsNotes = window.unisocketsNotes || {}")
    while True:
        note = await page.evaluate(f"window.unisocketsNotes[{json.dumps(key)}]")
        if note is not None:
            await page.evaluate(f"delete window.unisocketsNotes[{json.dumps(key)}]")
            return json.loads(note)
        await trio.sleep(0.02)
