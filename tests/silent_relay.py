"""A TCP relay on 127.0.0.1 that can go silent: a NAT that forgot a connection.

While :attr:`SilentRelay.silent` is set, the relay keeps every connection
open but forwards nothing, either way: no close, no reset, no error, as when
a NAT drops an idle mapping. New connections made after it speaks again go
through. Used by the tests of what a silently cut signaling connection does.
"""

from __future__ import annotations

import contextlib

import trio

__all__ = ["SilentRelay", "start_relay"]


class SilentRelay:
    """A running relay (see :func:`start_relay`).

    Attributes:
        url: ``ws://127.0.0.1:PORT`` of the relay, for a WebSocket client.
        silent: while true, nothing is forwarded on any connection.
    """

    def __init__(self, port: int) -> None:
        self.url = f"ws://127.0.0.1:{port}"
        self.silent = False


async def start_relay(nursery: trio.Nursery, target_port: int) -> SilentRelay:
    """Relay a new port on 127.0.0.1 to ``target_port`` (in ``nursery``, until it is cancelled).

    Args:
        nursery: where the relay's tasks run.
        target_port: the TCP port on 127.0.0.1 to relay to.

    Returns:
        The relay.
    """
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    relay = SilentRelay(listeners[0].socket.getsockname()[1])

    async def pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while data := await source.receive_some():
                if not relay.silent:
                    await sink.send_all(data)

    async def serve(client: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream("127.0.0.1", target_port)
        async with client, upstream, trio.open_nursery() as pumps:
            pumps.start_soon(pump, client, upstream)
            pumps.start_soon(pump, upstream, client)

    nursery.start_soon(trio.serve_listeners, serve, listeners)
    return relay
