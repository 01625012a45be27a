"""``unisockets run``: run a wasm32-wasi program whose sockets are unisockets sockets.

``unisockets run PROGRAM.wasm [--signaling URL | --native] [--subnet S] [-- ARGS...]``
joins a network (or uses OS TCP with ``--native``) and runs the program in
its own thread with WASI (its arguments, ``--env`` variables, this process's
stdin/stdout/stderr, stdout line-buffered) plus the ``unisockets_*``
imports (docs/wasm.md). The command exits with the program's exit status;
Ctrl-C stops the program (exit status 130), SIGTERM too (status 0), a trap
exits 134; without the ``wasm`` extra (wasmtime) it says which extra to install.
With ``--browser`` it runs nothing itself: it serves a page that runs the
program in a browser tab and prints the page's URL
(:mod:`unisockets.cli.run_browser`).

Before running, it prints one line on stderr:
``unisockets run: PROGRAM on ADDRESS``, the node's address, which is what
other nodes connect to. On an overlay node a program's ``127.0.0.1`` is an
ordinary overlay address, as under the original unisockets (its C echo
server binds and its client connects to ``127.0.0.1:1234`` across nodes),
and ``0.0.0.0`` is the node's own address; with ``--native``, ``127.x`` is
this host (docs/wasm.md).
"""

from __future__ import annotations

import sys

import click

from ._entry import run_trio
from ._options import configure_logging, log_level_option, node_options, open_node_arguments

__all__ = ["run"]


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--env")
        env[name] = value
    return env


class _Trapped(click.ClickException):
    """The program trapped: ``Error: PROGRAM trapped: ...`` and status 134 (128 + SIGABRT)."""

    exit_code = 134


@click.command("run", short_help="Run a wasm32-wasi program with unisockets as its sockets.")
@click.argument("program", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@node_options
@click.option("--env", "env_pairs", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@click.option(
    "--browser",
    is_flag=True,
    help="Serve a page that runs PROGRAM in a browser tab and print its URL (docs/wasm.md).",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="With --browser: the page's port on 127.0.0.1 (0: any free port).",
)
@log_level_option
def run(
    program: str,
    args: tuple[str, ...],
    signaling: str | None,
    native: bool,
    subnet: str,
    ice_addresses: tuple[str, ...],
    ice_servers: tuple[str, ...],
    ice_username: str | None,
    ice_credential: str | None,
    link_timeout: float,
    env_pairs: tuple[str, ...],
    browser: bool,
    http_port: int,
    log_level: str,
) -> None:
    """Run a WebAssembly (wasm32-wasi) PROGRAM with unisockets as its sockets.

    ARGS are the program's arguments; put them after -- when they start with a dash.
    Exits with the program's status; 130 after Ctrl-C, 134 when the program traps.
    With --browser, serves a page that runs PROGRAM in a browser tab (on the tab's
    own node, joining --signaling) and prints its URL; serves until Ctrl-C.
    """
    configure_logging(log_level)
    if browser:
        if native or not signaling:
            raise click.UsageError("--browser needs --signaling URL (a tab has no --native)")
        from .run_browser import serve_in_browser

        serve_in_browser(program, args, signaling, subnet, _parse_env(env_pairs), http_port)
        return
    url, options = open_node_arguments(
        signaling, native, ice_addresses, ice_servers, ice_username, ice_credential, link_timeout
    )
    env = _parse_env(env_pairs)

    try:
        import wasmtime

        from unisockets.wasm import GuestTrapped, WasmProgram, run_wasm
    except ImportError as exc:
        raise click.ClickException(
            f"unisockets run needs the wasm extra: pip install 'unisockets[wasm]' ({exc})"
        ) from None

    import unisockets.net

    try:
        compiled = WasmProgram.from_file(program)
    except (OSError, wasmtime.WasmtimeError) as exc:
        raise click.ClickException(f"cannot load {program}: {exc}") from None

    async def main() -> int:
        async with unisockets.net.open_node(url, subnet, **options) as node:
            click.echo(f"unisockets run: {compiled.name} on {node.address}", err=True)
            try:
                return await run_wasm(node, compiled, args, env=env, stdin="inherit")
            except GuestTrapped as exc:
                raise _Trapped(f"{compiled.name} trapped: {exc}") from None

    sys.exit(run_trio("run", main))
