"""unisockets.browser and .driver import without trio, aiortc, trio-websocket or wasmtime.

Runs in a subprocess where those imports fail, as they do under Pyodide; the
real thing runs in Chromium (test_interop.py, test_demo.py).
"""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("trio", "trio_websocket", "aiortc", "aioice", "anyio", "wasmtime")

SCRIPT = f"""
import importlib, pkgutil, sys
for name in {FORBIDDEN!r}:
    sys.modules[name] = None  # "import trio" now raises ImportError, as in Pyodide
import unisockets.browser, unisockets.driver
for package in (unisockets.browser, unisockets.driver):
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(package.__name__ + "." + info.name)
import asyncio
from unisockets.browser import open_node
async def main():
    try:
        async with open_node("ws://127.0.0.1:1"):
            pass
    except RuntimeError as exc:
        assert "Pyodide" in str(exc), exc
        print("refused outside Pyodide")
asyncio.run(main())
"""


def test_browser_package_imports_without_trio_or_aiortc() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refused outside Pyodide"
