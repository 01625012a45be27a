"""``unisockets run --browser``: serve a WebAssembly program on the browser page that runs it.

The page is ``web/wasm.html`` of a source checkout (docs/wasm.md, "In a
browser tab"): it is not part of the wheel, because it needs the npm
packages that ``scripts/install-browser-deps.sh`` installs into
``web/node_modules`` (Pyodide and a WASI shim). This command builds the
unisockets wheel the page installs into Pyodide, serves the page, Pyodide,
the wheel and the program from 127.0.0.1 with ``web/serve.py``, and prints
one URL on stdout, for example::

    http://127.0.0.1:41234/wasm.html?program=programs/echo_server.wasm&signaling=ws://127.0.0.1:6999&subnet=10.0.0&arg=0.0.0.0&arg=1234

Opening it in a browser with JavaScript Promise Integration (Chromium 137
or later) joins the network from the tab and runs the program there, with
the arguments and ``--env`` variables given here. It serves until Ctrl-C
(exit status 130) or SIGTERM (0).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from urllib.parse import urlencode

import click
import trio

from ._entry import run_trio

__all__ = ["page_url", "serve_in_browser", "web_folder"]


def web_folder() -> Path:
    """The ``web/`` folder of the source checkout this package runs from.

    Raises:
        click.ClickException: there is none (an installed wheel), or its npm
            packages are missing.
    """
    web = Path(__file__).resolve().parents[2] / "web"
    if not (web / "serve.py").is_file() or not (web / "wasm.html").is_file():
        raise click.ClickException(
            "--browser needs a source checkout of unisockets (its web/ folder holds the "
            f"page); there is none at {web}"
        )
    if not (web / "node_modules" / "@bjorn3" / "browser_wasi_shim").is_dir():
        raise click.ClickException(
            f"--browser needs the page's npm packages in {web / 'node_modules'}: "
            "run scripts/install-browser-deps.sh"
        )
    return web


def _load_serve(web: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("unisockets_web_serve", web / "serve.py")
    if spec is None or spec.loader is None:
        raise click.ClickException(f"cannot load {web / 'serve.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page_url(
    base: str, program: str, signaling: str, subnet: str, args: tuple[str, ...], env: dict[str, str]
) -> str:
    """The page's URL that runs ``program`` (parameters as ``web/wasm.js`` reads them).

    Args:
        base: the server's root URL, ending in ``/``.
        program: the program's file name, served as ``programs/NAME``.
        signaling: the signaling server's URL.
        subnet: the overlay subnet.
        args: the program's arguments (one ``arg`` parameter each).
        env: its environment (one ``env=NAME=VALUE`` parameter each).

    Returns:
        ``BASE/wasm.html?program=...&signaling=...&subnet=...&arg=...&env=...``.
    """
    query = [("program", f"programs/{program}"), ("signaling", signaling), ("subnet", subnet)]
    query += [("arg", arg) for arg in args]
    query += [("env", f"{name}={value}") for name, value in env.items()]
    return f"{base}wasm.html?{urlencode(query, safe='/:')}"


def serve_in_browser(
    program: str,
    args: tuple[str, ...],
    signaling: str,
    subnet: str,
    env: dict[str, str],
    http_port: int,
) -> None:
    """Serve the page for ``program``, print its URL, and serve until Ctrl-C or SIGTERM.

    Args:
        program: path of the ``.wasm`` file.
        args: the program's arguments.
        signaling: the signaling server's URL the tab joins.
        subnet: the overlay subnet.
        env: the program's environment.
        http_port: the web server's port on 127.0.0.1 (0: any free port).

    Raises:
        click.ClickException: no checkout or npm packages, the wheel does not
            build, or the port is taken.
        SystemExit: 130 after Ctrl-C, 0 after SIGTERM.
    """
    web = web_folder()
    serve = _load_serve(web)
    path = Path(program).resolve()
    with contextlib.ExitStack() as stack:
        wheel_dir = Path(tempfile.mkdtemp(prefix="unisockets-wheel-"))
        stack.callback(shutil.rmtree, wheel_dir, ignore_errors=True)
        try:
            serve.build_wheel(wheel_dir)
        except Exception as exc:
            raise click.ClickException(f"cannot build the unisockets wheel: {exc}") from None
        try:
            server = stack.enter_context(
                serve.start_server(wheel_dir, "127.0.0.1", http_port, programs={path.name: path})
            )
        except OSError as exc:
            raise click.ClickException(f"cannot serve on 127.0.0.1:{http_port}: {exc}") from None
        host, port = server.server_address[:2]
        click.echo(page_url(f"http://{host}:{port}/", path.name, signaling, subnet, args, env))
        click.echo(
            f"unisockets run: serving {path.name} for a browser tab; open the URL above "
            "in Chromium (JSPI needed); Ctrl-C stops",
            err=True,
        )
        run_trio("run", trio.sleep_forever)
