"""``unisockets echo-server`` / ``echo-client``: the original's echo example as two processes.

The server joins a network (or uses OS TCP with ``--native``), listens on a
port and echoes every connection's bytes back until that connection's EOF.
The client connects to ``--remote``, sends each line of its standard input,
prints each echo, and after its input ends half-closes and exits once the
server has closed.

Ctrl-C exits with status 130 and SIGTERM with 0, after closing the node
(:mod:`unisockets.cli._entry`); an error (server unreachable, port in use,
connection refused or broken) is one ``Error: ...`` line and status 1.
"""

from __future__ import annotations

import os
import sys
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import click
import trio

from ._entry import run_trio
from ._options import configure_logging, log_level_option, node_options, open_node_arguments

if TYPE_CHECKING:
    from unisockets.net.streams import SocketStream

__all__ = ["echo_client", "echo_server"]


def _parse_remote(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT with a port 0-65535, got {value!r}")
    return host, int(port)


@click.command("echo-server", short_help="Echo back every connection's bytes.")
@node_options
@click.option(
    "--port",
    default=1234,
    show_default=True,
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Port to listen on.",
)
@log_level_option
def echo_server(
    signaling: str | None,
    native: bool,
    subnet: str,
    ice_addresses: tuple[str, ...],
    ice_servers: tuple[str, ...],
    ice_username: str | None,
    ice_credential: str | None,
    link_timeout: float,
    port: int,
    log_level: str,
) -> None:
    """Echo every connection's bytes back (the original's echo server).

    Prints "listening on ADDRESS:PORT" once listening, and a line per
    connection accepted, closed or broken. Ctrl-C exits with status 130.
    """
    configure_logging(log_level)
    url, options = open_node_arguments(
        signaling, native, ice_addresses, ice_servers, ice_username, ice_credential, link_timeout
    )

    async def handle(stream: SocketStream) -> None:
        peer = "{}:{}".format(*stream.remote_address)
        click.echo(f"accepted {peer}")
        try:
            async with stream:
                while data := await stream.receive_some(65536):
                    await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            click.echo(f"connection {peer} broke: {exc}")
        else:
            click.echo(f"closed {peer}")

    async def main() -> None:
        import unisockets

        async with AsyncExitStack() as stack:
            node = await stack.enter_async_context(unisockets.open_node(url, subnet, **options))
            try:
                listener = await stack.enter_async_context(node.listen(port))
            except OSError as exc:
                raise click.ClickException(
                    f"cannot listen on port {port} (--port): {exc.strerror or exc}"
                ) from None
            click.echo(f"listening on {node.address}:{port}")
            await trio.serve_listeners(handle, [listener])

    run_trio("echo-server", main)


@click.command("echo-client", short_help="Send stdin's lines to an echo server, print the echoes.")
@node_options
@click.option(
    "--remote",
    required=True,
    metavar="HOST:PORT",
    callback=_parse_remote,
    help="The echo server's address, e.g. 10.0.0.1:1234.",
)
@log_level_option
def echo_client(
    signaling: str | None,
    native: bool,
    subnet: str,
    ice_addresses: tuple[str, ...],
    ice_servers: tuple[str, ...],
    ice_username: str | None,
    ice_credential: str | None,
    link_timeout: float,
    remote: tuple[str, int],
    log_level: str,
) -> None:
    """Send stdin's lines to an echo server and print what comes back.

    Prints "connected LOCAL -> REMOTE" once connected; after stdin ends it
    half-closes and exits 0 when the server has closed. Ctrl-C exits with
    status 130; a refused or broken connection is one "Error:" line, status 1.
    """
    configure_logging(log_level)
    url, options = open_node_arguments(
        signaling, native, ice_addresses, ice_servers, ice_username, ice_credential, link_timeout
    )
    target = "{}:{}".format(*remote)

    async def main() -> None:
        import unisockets

        async with unisockets.open_node(url, subnet, **options) as node:
            try:
                stream = await node.connect(remote)
            except OSError as exc:
                raise click.ClickException(
                    f"cannot connect to {target} (--remote): {exc.strerror or exc}"
                ) from None
            except trio.BrokenResourceError as exc:
                raise click.ClickException(
                    f"cannot connect to {target} (--remote): {exc}"
                ) from None
            click.echo(
                "connected {}:{} -> {}:{}".format(*stream.local_address, *stream.remote_address)
            )
            try:
                async with stream, trio.open_nursery() as nursery:

                    async def pump_stdin() -> None:
                        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
                        async with stdin:
                            while data := await stdin.receive_some(65536):
                                await stream.send_all(data)
                        await stream.send_eof()

                    nursery.start_soon(pump_stdin)
                    pending = b""
                    while data := await stream.receive_some(65536):
                        pending += data
                        *lines, pending = pending.split(b"\n")
                        for line in lines:
                            click.echo(line.decode(errors="replace"))
                    if pending:
                        click.echo(pending.decode(errors="replace"))
            except* trio.BrokenResourceError as group:
                first = group.exceptions[0]
                raise click.ClickException(f"the connection to {target} broke: {first}") from None

    run_trio("echo-client", main)
