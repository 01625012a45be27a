"""``unisockets echo-server`` / ``echo-client``: the original's echo example as two processes.

The server joins a network (or uses OS TCP with ``--native``), listens on a
port and echoes every connection's bytes back until that connection's EOF.
The client connects to ``--remote``, sends each line of its standard input,
prints each echo, and after its input ends half-closes and exits once the
server has closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import click
import trio

__all__ = ["echo_client", "echo_server"]


def _parse_remote(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


_signaling_option = click.option(
    "--signaling",
    metavar="URL",
    help="Signaling server URL (ws://host:port); omit with --native.",
)
_native_option = click.option(
    "--native", is_flag=True, help="Use the OS's TCP instead of a signaling server."
)
_subnet_option = click.option("--subnet", default="10.0.0", show_default=True)
_ice_option = click.option(
    "--ice-address",
    "ice_addresses",
    multiple=True,
    metavar="IP",
    help="Local address to gather WebRTC host candidates on (repeatable); "
    "default: every non-loopback interface.",
)


def _signaling_url(signaling: str | None, native: bool) -> str | None:
    if native == bool(signaling):
        raise click.UsageError("give exactly one of --signaling URL and --native")
    return None if native else signaling


@click.command("echo-server")
@_signaling_option
@_native_option
@_subnet_option
@_ice_option
@click.option("--port", default=1234, show_default=True, help="The port to listen on.")
@click.option("--log-level", default="warning", show_default=True)
def echo_server(
    signaling: str | None,
    native: bool,
    subnet: str,
    ice_addresses: tuple[str, ...],
    port: int,
    log_level: str,
) -> None:
    """Echo every connection's bytes back (the original's echo server)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    url = _signaling_url(signaling, native)
    import unisockets

    async def handle(stream: unisockets.SocketStream) -> None:
        peer = "{}:{}".format(*stream.remote_address)
        click.echo(f"accepted {peer}")
        try:
            async with stream:
                while data := await stream.receive_some(65536):
                    await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            click.echo(f"connection {peer} broke: {exc!r}")
        else:
            click.echo(f"closed {peer}")

    async def main() -> None:
        async with (
            unisockets.open_node(url, subnet, ice_addresses=ice_addresses or None) as node,
            node.listen(port) as listener,
        ):
            click.echo(f"listening on {node.address}:{port}")
            await trio.serve_listeners(handle, [listener])

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)


@click.command("echo-client")
@_signaling_option
@_native_option
@_subnet_option
@_ice_option
@click.option("--remote", required=True, metavar="HOST:PORT", help="The echo server's address.")
@click.option("--log-level", default="warning", show_default=True)
def echo_client(
    signaling: str | None,
    native: bool,
    subnet: str,
    ice_addresses: tuple[str, ...],
    remote: str,
    log_level: str,
) -> None:
    """Send stdin's lines to an echo server and print what comes back."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    url = _signaling_url(signaling, native)
    address = _parse_remote(remote)
    import unisockets

    async def main() -> None:
        async with unisockets.open_node(url, subnet, ice_addresses=ice_addresses or None) as node:
            stream = await node.connect(address)
            click.echo(
                "connected {}:{} -> {}:{}".format(*stream.local_address, *stream.remote_address)
            )
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

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        click.echo(f"echo-client: {exc}", err=True)
        sys.exit(1)
