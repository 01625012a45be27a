"""``unisockets run``: run a wasm32-wasi program whose sockets are unisockets sockets.

``unisockets run PROGRAM.wasm [--signaling URL | --native] [--subnet S] [-- ARGS...]``
joins a network (or uses OS TCP with ``--native``) and runs the program in
its own thread with WASI (its arguments, ``--env`` variables, this process's
stdin/stdout/stderr, stdout line-buffered) plus the ``unisockets_*``
imports (docs/wasm.md). The command exits with the program's exit status;
Ctrl-C stops the program (exit status 130).

Before running, it prints one line on stderr:
``unisockets run: PROGRAM on ADDRESS``, the node's address, which is what
other nodes connect to (a program's ``127.0.0.1`` means this address).
"""

from __future__ import annotations

import logging
import sys

import click

__all__ = ["run"]


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--env")
        env[name] = value
    return env


@click.command("run")
@click.argument("program", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--signaling", metavar="URL", help="Signaling server URL (ws://host:port).")
@click.option("--native", is_flag=True, help="Use the OS's TCP instead of a signaling server.")
@click.option("--subnet", default="10.0.0", show_default=True, help="The overlay subnet.")
@click.option(
    "--ice-address",
    "ice_addresses",
    multiple=True,
    metavar="IP",
    help="Local address to gather WebRTC host candidates on (repeatable).",
)
@click.option("--env", "env_pairs", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@click.option("--log-level", default="warning", show_default=True)
def run(
    program: str,
    args: tuple[str, ...],
    signaling: str | None,
    native: bool,
    subnet: str,
    ice_addresses: tuple[str, ...],
    env_pairs: tuple[str, ...],
    log_level: str,
) -> None:
    """Run a WebAssembly (wasm32-wasi) PROGRAM with unisockets as its sockets.

    ARGS are the program's arguments; put them after -- when they start with a dash.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if native == bool(signaling):
        raise click.UsageError("give exactly one of --signaling URL and --native")
    env = _parse_env(env_pairs)

    import trio
    import wasmtime

    import unisockets.net
    from unisockets.wasm import GuestTrapped, WasmProgram, run_wasm

    try:
        compiled = WasmProgram.from_file(program)
    except (OSError, wasmtime.WasmtimeError) as exc:
        raise click.ClickException(f"cannot load {program}: {exc}") from None

    async def main() -> int:
        async with unisockets.net.open_node(
            None if native else signaling, subnet, ice_addresses=ice_addresses or None
        ) as node:
            click.echo(f"unisockets run: {compiled.name} on {node.address}", err=True)
            return await run_wasm(node, compiled, args, env=env, stdin="inherit")

    try:
        status = trio.run(main)
    except BaseException as exc:
        # Ctrl-C may come out of trio inside an exception group.
        if _first(exc, KeyboardInterrupt) is not None:
            sys.exit(130)
        trapped = _first(exc, GuestTrapped)
        if trapped is not None:
            click.echo(f"unisockets run: {compiled.name} trapped: {trapped}", err=True)
            sys.exit(134)
        error = _first(exc, OSError)
        if error is not None:
            click.echo(f"unisockets run: {error}", err=True)
            sys.exit(1)
        raise
    sys.exit(status)


def _first(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """``exc`` itself or the first exception of type ``kind`` in its (nested) groups."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first(inner, kind)
            if found is not None:
                return found
    return None
