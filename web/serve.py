"""Serve the unisockets browser demo: the page, Pyodide and the wheels, from one local server.

Usage (from the repository root, after ``scripts/install-browser-deps.sh``)::

    .venv/bin/python -m unisockets signaling-server --port 6999 &
    .venv/bin/python web/serve.py --port 8000
    # open http://127.0.0.1:8000/?signaling=ws://127.0.0.1:6999&echo=7

What is served (stdlib only, no internet):

- ``/``: this folder (``index.html``, ``app.js``, ``demo.css``);
- ``/pyodide/``: ``web/node_modules/pyodide/`` (the npm package, ``npm ci``);
- ``/wasi-shim/``: the ``dist`` folder of the npm package
  ``@bjorn3/browser_wasi_shim`` (WASI preview 1 for ``wasm.html``);
- ``/programs/NAME``: WebAssembly programs given to :func:`start_server`
  (``unisockets run --browser`` serves its program there);
- ``/wheels/``: the unisockets wheel, built at start-up with ``pip wheel
  --no-deps`` into a temporary folder (or taken from ``--wheels DIR``), and the
  pure-Python wheels of ``web/vendor/`` (micropip), plus
  ``/wheels/manifest.json`` naming them for the page.

The tests (tests/browser/) import :func:`start_server` from this file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
PYODIDE = WEB / "node_modules" / "pyodide"
WASI_SHIM = WEB / "node_modules" / "@bjorn3" / "browser_wasi_shim" / "dist"
VENDOR = WEB / "vendor"


def build_wheel(dest: Path, python: str = sys.executable) -> Path:
    """Build the unisockets wheel (pure Python) into ``dest`` with ``pip wheel --no-deps``.

    Args:
        dest: an existing folder.
        python: the interpreter whose pip builds it.

    Returns:
        The wheel's path.

    Raises:
        subprocess.CalledProcessError: the build failed.
    """
    subprocess.run(
        [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dest), str(ROOT)],
        check=True,
    )
    wheels = sorted(dest.glob("unisockets-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip wheel left no unisockets wheel in {dest}")
    return wheels[-1]


def _manifest(wheel_dir: Path) -> dict[str, object]:
    micropip = sorted(VENDOR.glob("micropip-*.whl"))
    if not micropip:
        raise FileNotFoundError(
            f"no micropip wheel in {VENDOR}: run scripts/install-browser-deps.sh"
        )
    return {
        "micropip": micropip[-1].name,
        "wheels": [p.name for p in sorted(wheel_dir.glob("*.whl"))],
    }


class _Handler(SimpleHTTPRequestHandler):
    """Maps /pyodide/ and /wheels/ to their folders; everything else to web/."""

    wheel_dir: Path
    manifest: bytes
    programs: dict[str, Path]

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean.startswith("/programs/"):
            program = self.programs.get(urllib.parse.unquote(clean[len("/programs/") :]))
            return str(program) if program is not None else str(WEB / "-")
        for prefix, base in (
            ("/pyodide/", PYODIDE),
            ("/wasi-shim/", WASI_SHIM),
            ("/wheels/", self.wheel_dir),
        ):
            if clean.startswith(prefix):
                name = clean[len(prefix) :]
                if prefix == "/wheels/" and (VENDOR / name).is_file():
                    base = VENDOR
                target = (base / name).resolve()
                return str(target) if target.is_relative_to(base.resolve()) else str(base / "-")
        return super().translate_path(path)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/wheels/manifest.json":
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.manifest)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(self.manifest)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests and the demo print what matters


SimpleHTTPRequestHandler.extensions_map.update(
    {".mjs": "text/javascript", ".wasm": "application/wasm", ".whl": "application/zip"}
)


@contextlib.contextmanager
def start_server(
    wheel_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    programs: dict[str, Path] | None = None,
) -> Iterator[ThreadingHTTPServer]:
    """Serve the demo in a background thread for the duration of the block.

    Args:
        wheel_dir: the folder holding the unisockets wheel.
        host: the address to listen on.
        port: the port (0: any free port; read ``server.server_address``).
        programs: files served as ``/programs/NAME`` (WebAssembly programs
            for ``wasm.html?program=programs/NAME``); the mapping is used
            as given, so entries added later are served too.

    Yields:
        The running server; it is shut down and its thread joined on exit.
    """
    if not (PYODIDE / "pyodide.mjs").is_file():
        raise FileNotFoundError(f"no Pyodide in {PYODIDE}: run scripts/install-browser-deps.sh")
    handler = type(
        "Handler",
        (_Handler,),
        {
            "wheel_dir": wheel_dir,
            "manifest": json.dumps(_manifest(wheel_dir)).encode(),
            "programs": programs if programs is not None else {},
        },
    )
    server = ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(WEB)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="web/serve.py", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    """Command line: build the wheel (unless ``--wheels``) and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--wheels", type=Path, help="folder with a prebuilt unisockets wheel")
    args = parser.parse_args()
    temp = None
    wheel_dir = args.wheels
    if wheel_dir is None:
        temp = tempfile.mkdtemp(prefix="unisockets-wheel-")
        wheel_dir = Path(temp)
        print(f"built {build_wheel(wheel_dir).name}", flush=True)
    try:
        with start_server(wheel_dir, args.host, args.port) as server:
            host, port = server.server_address[:2]
            print(f"serving the demo on http://{host}:{port}/", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
