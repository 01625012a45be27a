"""``unisockets demo``: signaling server + two nodes in one process, echo over WebRTC.

The main job in one command: it starts an embedded signaling server on
127.0.0.1, joins two nodes, listens on one, connects from the other over a
real WebRTC data channel, echoes a few messages and prints each step with
its timing. Exits 0 on success, 1 with the reason on failure (one
``Error: ...`` line), 130 after Ctrl-C and 0 after SIGTERM
(:mod:`unisockets.cli._entry`).
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import click
import trio

from ._entry import run_trio
from ._options import ice_options, rtc_configuration

__all__ = ["demo"]

#: The demo's two nodes share this machine: their peer link stays on loopback.
LOOPBACK = ["127.0.0.1"]


async def run_demo(messages: int, port: int, **node_options: Any) -> None:
    """Run the demo, printing each step.

    Args:
        messages: how many messages to echo.
        port: the port the echo server binds on its node.
        node_options: more keyword arguments of :func:`unisockets.open_node`
            for both nodes (``rtc_configuration``, ``link_timeout``).

    Raises:
        OSError, trio.TooSlowError, unisockets.signaling.SignalingError: a step failed.
    """
    import unisockets

    start = time.perf_counter()

    def join(url: str) -> AbstractAsyncContextManager[unisockets.Node]:
        return unisockets.open_node(url, "10.0.0", ice_addresses=LOOPBACK, **node_options)

    def step(text: str, since: float) -> float:
        now = time.perf_counter()
        click.echo(f"  {text:<56} {1000 * (now - since):8.1f} ms")
        return now

    click.echo("unisockets demo: two nodes, one echo, over a real WebRTC data channel")
    async with unisockets.open_signaling_server(host="127.0.0.1", port=0) as server:
        t = step(f"signaling server listening on {server.url}", start)
        async with join(server.url) as alice:
            t = step(f"node A joined as {alice.address}", t)
            async with alice.listen(port) as listener:
                t = step(f"node A listening on {alice.address}:{port}", t)
                async with join(server.url) as bob:
                    t = step(f"node B joined as {bob.address}", t)

                    async def echo_one(stream: unisockets.SocketStream) -> None:
                        async with stream:
                            while data := await stream.receive_some(65536):
                                await stream.send_all(data)

                    async with trio.open_nursery() as nursery:

                        async def serve() -> None:
                            stream = await listener.accept()
                            nursery.start_soon(echo_one, stream)

                        nursery.start_soon(serve)
                        stream = await bob.connect((alice.address, port))
                        local = "{}:{}".format(*stream.local_address)
                        t = step(f"node B connected from {local} (peer link + channel)", t)
                        rtts = []
                        for index in range(messages):
                            payload = f"hello #{index + 1} from {bob.address}".encode()
                            sent = time.perf_counter()
                            await stream.send_all(payload)
                            echoed = b""
                            while len(echoed) < len(payload):
                                chunk = await stream.receive_some(65536)
                                if not chunk:
                                    raise ConnectionError("the echo server closed early")
                                echoed += chunk
                            if echoed != payload:
                                raise ConnectionError(f"echo mismatch: {echoed!r} != {payload!r}")
                            rtts.append(time.perf_counter() - sent)
                            label = "first echo" if index == 0 else "echo"
                            t = step(f"{label}: {echoed.decode()!r}", sent)
                        await stream.send_eof()
                        if await stream.receive_some(1) != b"":
                            raise ConnectionError("expected EOF from the echo server")
                        await stream.aclose()
                        t = step("half-closed; server saw EOF and closed", t)
    median = sorted(rtts)[len(rtts) // 2] if rtts else 0.0
    click.echo(
        f"done: {messages} echoes, median round trip {1e6 * median:.0f} us, "
        f"total {time.perf_counter() - start:.2f} s"
    )


@click.command(short_help="Echo over WebRTC between two nodes, in one process.")
@click.option("--messages", default=5, show_default=True, help="How many messages to echo.")
@click.option(
    "--port",
    default=1234,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port the echo server binds.",
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Give up after this many seconds.",
)
@ice_options
def demo(
    messages: int,
    port: int,
    timeout: float,
    ice_servers: tuple[str, ...],
    ice_username: str | None,
    ice_credential: str | None,
    link_timeout: float,
) -> None:
    """Echo over WebRTC between two nodes of an embedded signaling server.

    Both nodes stay on 127.0.0.1; --ice-server adds STUN/TURN candidates, as
    nodes on other machines would need.
    """
    configuration = rtc_configuration(ice_servers, ice_username, ice_credential)

    async def main() -> None:
        try:
            with trio.fail_after(timeout):
                await run_demo(
                    messages, port, rtc_configuration=configuration, link_timeout=link_timeout
                )
        except trio.TooSlowError:
            raise click.ClickException(f"demo failed: no result within {timeout} s") from None

    run_trio("demo", main)
