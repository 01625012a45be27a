"""Fixtures of the browser tests: Chromium, the demo server, pages with Pyodide loaded.

One Chromium and one static server (``web/serve.py``, with a freshly built
unisockets wheel) serve the whole session; pages are opened once and reused
across tests (loading Pyodide costs seconds per page), each test attaching to
them over its own DevTools connection. Each test's page code runs in a fresh
Python namespace of the page.

Missing Chromium, Node.js/npm or Pyodide: the session first runs
``scripts/install-browser-deps.sh`` (idempotent); if something is still
missing, the tests fail when ``CI=true`` and skip otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .cdp import Browser, chromium_path, connect_browser, launch_chromium
from .helpers import BrowserEnv

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
INSTALL_SCRIPT = ROOT / "scripts" / "install-browser-deps.sh"


def _missing() -> list[str]:
    missing = []
    if chromium_path() is None:
        missing.append("chromium")
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing.append("node/npm")
    if not (WEB / "node_modules" / "pyodide" / "pyodide.mjs").is_file():
        missing.append("pyodide (web/node_modules)")
    if not (WEB / "node_modules" / "@bjorn3" / "browser_wasi_shim" / "dist").is_dir():
        missing.append("@bjorn3/browser_wasi_shim (web/node_modules)")
    if not list((WEB / "vendor").glob("micropip-*.whl")):
        missing.append("micropip wheel (web/vendor)")
    return missing


def _load_serve() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unisockets_web_serve", WEB / "serve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def browser_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserEnv]:
    """Chromium + the demo server with a fresh wheel, for the whole session."""
    if _missing():
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT), str(Path(sys.executable).parent.parent)],
            capture_output=True,
            text=True,
        )
        missing = _missing()
        if missing:
            message = (
                f"browser test dependencies missing: {', '.join(missing)}; "
                f"{INSTALL_SCRIPT.name} said: {result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    wheel_dir = tmp_path_factory.mktemp("wheel")
    serve = _load_serve()
    serve.build_wheel(wheel_dir, sys.executable)
    artifacts = tmp_path_factory.mktemp("browser-artifacts")
    programs: dict[str, Path] = {}  # served as /programs/NAME (tests add WebAssembly programs)
    with (
        serve.start_server(wheel_dir, programs=programs) as server,
        launch_chromium() as devtools_url,
    ):
        host, port = server.server_address[:2]
        yield BrowserEnv(f"http://{host}:{port}/", devtools_url, artifacts, programs=programs)


@pytest.fixture
async def browser(browser_env: BrowserEnv) -> AsyncIterator[Browser]:
    """A DevTools connection for this test (inside its trio run)."""
    async with connect_browser(browser_env.devtools_url) as connection:
        yield connection
