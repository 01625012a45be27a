"""The trio stream backends the workloads run on, and the server side they all talk to.

Backends (keys used on the command line):

- ``tcp``: plain :func:`trio.serve_tcp` / :func:`trio.open_tcp_stream` on
  127.0.0.1, the physical limit of this machine;
- ``native``: unisockets' native fallback, ``open_node(None)``, the same API
  over OS TCP (its raw backend is ``tcp``);
- ``webrtc``: unisockets overlay nodes on an embedded signaling server,
  streams over aiortc data channels (its raw backend is raw aiortc,
  :mod:`benchmarks.raw_aiortc`);
- ``str0m``: the same over the native WebRTC backend (str0m in Rust,
  ``open_node(..., webrtc_backend="native")``; needs the extension built).

Every server runs :func:`serve_connection` on each accepted stream: the first
byte picks the mode, ``b"s"`` + 8-byte big-endian length (sink: count that many
bytes, then answer ``b"k"``) or ``b"e"`` (echo until EOF). The server runs in
this process (one-process runs) or in a child, ``python -m benchmarks.streams
--child '{"backend": ...}'``, which prints ``{"ready": info}`` and serves until
its stdin closes, then prints ``{"peak_rss": bytes}``.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from . import common

if TYPE_CHECKING:
    from unisockets.signaling.limits import ServerLimits

__all__ = [
    "LABELS",
    "LOOPBACK",
    "PAIRS",
    "TRIO_BACKENDS",
    "Client",
    "open_client",
    "open_server",
    "open_signaling",
    "receive_exactly",
    "serve_connection",
]

#: Display names of every backend, raw ones first within each pair.
LABELS = {
    "tcp": "trio TCP loopback (raw)",
    "native": "unisockets native fallback",
    "aiortc": "aiortc data channel (raw)",
    "webrtc": "unisockets over WebRTC",
    "str0m": "unisockets over WebRTC, native core (str0m)",
}
#: ``(ours, raw)``: each ours row is printed with its ratio to the raw row.
PAIRS = (("native", "tcp"), ("webrtc", "aiortc"), ("str0m", "aiortc"))
#: Backends implemented here (aiortc is in :mod:`benchmarks.raw_aiortc`).
TRIO_BACKENDS = ("tcp", "native", "webrtc", "str0m")
#: The backends that run overlay nodes on a signaling server.
OVERLAY_BACKENDS = ("webrtc", "str0m")
#: ICE host addresses: peers on one machine stay on loopback.
LOOPBACK = ["127.0.0.1"]
#: The listening port of overlay servers.
OVERLAY_PORT = 7000


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    """Read exactly ``size`` bytes.

    Raises:
        EOFError: the stream ended first.
    """
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            raise EOFError(f"stream ended after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


async def serve_connection(stream: trio.abc.Stream) -> None:
    """Serve one connection in the mode its first byte names (sink or echo), then close it."""
    try:
        async with stream:
            mode = await receive_exactly(stream, 1)
            if mode == b"s":
                total = int.from_bytes(await receive_exactly(stream, 8), "big")
                received = 0
                while received < total:
                    chunk = await stream.receive_some(1 << 20)
                    if not chunk:
                        raise EOFError("sink: stream ended early")
                    received += len(chunk)
                await stream.send_all(b"k")
                while await stream.receive_some(1 << 16):
                    pass
            elif mode == b"e":
                while chunk := await stream.receive_some(1 << 16):
                    await stream.send_all(chunk)
            else:
                raise ValueError(f"unknown mode {mode!r}")
    except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError) as exc:
        logging.getLogger("benchmarks").debug("connection ended: %r", exc)


#: The asyncio bridge the nodes of this process share (set by :func:`open_signaling`).
_BRIDGE: contextvars.ContextVar[Any] = contextvars.ContextVar("benchmark_bridge", default=None)


def _overlay_node(url: str, backend: str = "webrtc") -> Any:
    """``open_node(url)`` gathering ICE candidates on loopback only (str0m: the native core).

    aiortc nodes opened within :func:`open_signaling` share its asyncio bridge
    (one aiortc loop per process, as plain aiortc code has).
    """
    from unisockets.net import open_node

    if backend == "str0m":
        return open_node(url, "10.0.0", ice_addresses=LOOPBACK, webrtc_backend="native")
    return open_node(
        url, "10.0.0", ice_addresses=LOOPBACK, webrtc_backend="aiortc", asyncio_bridge=_BRIDGE.get()
    )


@asynccontextmanager
async def open_signaling(limits: ServerLimits | None = None) -> AsyncIterator[str]:
    """Run an embedded signaling server on 127.0.0.1; yield its URL.

    The nodes this process opens in the block share one asyncio bridge.

    Args:
        limits: the server's limits, or ``None`` for the defaults (e.g. a higher
            ``max_messages_per_second`` for the many-streams workload).
    """
    from unisockets.signaling.limits import DEFAULT_LIMITS
    from unisockets.signaling.server import open_signaling_server
    from unisockets.transport.bridge import open_asyncio_bridge

    if limits is None:
        limits = DEFAULT_LIMITS
    async with (
        open_signaling_server(host="127.0.0.1", port=0, limits=limits) as server,
        open_asyncio_bridge(name="unisockets-asyncio benchmark") as bridge,
    ):
        token = _BRIDGE.set(bridge)
        try:
            yield server.url
        finally:
            _BRIDGE.reset(token)


async def _accept_loop(listener: trio.abc.Listener[Any], nursery: trio.Nursery) -> None:
    while True:
        try:
            stream = await listener.accept()
        except trio.ClosedResourceError:
            return
        nursery.start_soon(serve_connection, stream)


@asynccontextmanager
async def open_server(
    backend: str, *, url: str | None = None, backlog: int = 128
) -> AsyncIterator[dict[str, Any]]:
    """Run a server of ``backend`` in this process; yield how to reach it (JSON-able).

    Args:
        backend: ``"tcp"``, ``"native"`` or ``"webrtc"``.
        url: the signaling server's URL (``webrtc`` only).
        backlog: the listen backlog (connections waiting for accept).

    Yields:
        ``{"host": ..., "port": ...}`` (plus ``"url"`` for ``webrtc``).
    """
    async with trio.open_nursery() as nursery:
        if backend == "tcp":
            listeners = await nursery.start(
                partial(trio.serve_tcp, serve_connection, 0, host="127.0.0.1", backlog=backlog)
            )
            port = listeners[0].socket.getsockname()[1]
            yield {"host": "127.0.0.1", "port": port}
        elif backend == "native":
            from unisockets.net import NativeListener, open_node

            async with open_node(None) as node:
                listener = await node.listen(0, backlog)
                assert isinstance(listener, NativeListener)
                nursery.start_soon(_accept_loop, listener, nursery)
                yield {"host": listener.address[0], "port": listener.address[1]}
                await listener.aclose()
        elif backend in OVERLAY_BACKENDS:
            assert url is not None
            async with _overlay_node(url, backend) as node:
                listener = await node.listen(OVERLAY_PORT, backlog)
                nursery.start_soon(_accept_loop, listener, nursery)
                yield {"host": node.address, "port": OVERLAY_PORT, "url": url}
                await listener.aclose()
        else:
            raise ValueError(f"unknown backend {backend!r}")
        nursery.cancel_scope.cancel()


class Client:
    """Opens connections to one server of one backend (a node for unisockets backends)."""

    def __init__(self, backend: str, info: dict[str, Any], node: Any) -> None:
        self.backend = backend
        self.info = info
        self.node = node

    async def connect(self) -> trio.abc.HalfCloseableStream:
        """Open one connection to the server."""
        if self.backend == "tcp":
            sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
            try:
                await sock.connect((self.info["host"], self.info["port"]))
            except BaseException:
                sock.close()
                raise
            return trio.SocketStream(sock)  # sets TCP_NODELAY, as open_tcp_stream does
        stream: trio.abc.HalfCloseableStream = await self.node.connect(
            (self.info["host"], self.info["port"])
        )
        return stream


@asynccontextmanager
async def open_client(backend: str, info: dict[str, Any]) -> AsyncIterator[Client]:
    """A :class:`Client` of the server ``info`` describes (joins a node for unisockets backends)."""
    if backend == "tcp":
        yield Client(backend, info, None)
    elif backend == "native":
        from unisockets.net import open_node

        async with open_node(None) as node:
            yield Client(backend, info, node)
    elif backend in OVERLAY_BACKENDS:
        async with _overlay_node(info["url"], backend) as node:
            yield Client(backend, info, node)
    else:
        raise ValueError(f"unknown backend {backend!r}")


@asynccontextmanager
async def open_remote_server(
    backend: str, *, url: str | None = None, backlog: int = 128
) -> AsyncIterator[tuple[dict[str, Any], common.TrioChild]]:
    """Run the server of ``backend`` in a child process; yield ``(info, child)``.

    After the block, ``child`` has reported its peak RSS: read it with
    ``await child.receive()`` inside the block only after closing (see
    :func:`child_peak_rss`).
    """
    params = {"backend": backend, "url": url, "backlog": backlog}
    async with common.open_trio_child("benchmarks.streams", params) as child:
        message = await child.receive()
        yield message["ready"], child


async def child_peak_rss(child: common.TrioChild) -> int:
    """Ask the child for its peak RSS since it was ready, in bytes."""
    await child.send({"peak_rss": True})
    return int((await child.receive())["peak_rss"])


async def _child_main(params: dict[str, Any]) -> None:
    """A child's life: serve, report ready, answer RSS queries until stdin closes."""
    parent = common.TrioParent()
    common.raise_fd_limit(20000)
    async with open_server(
        params["backend"], url=params.get("url"), backlog=params.get("backlog", 128)
    ) as info:
        common.reset_peak_rss()
        parent.send({"ready": info})
        while (message := await parent.receive()) is not None:
            if message.get("peak_rss"):
                parent.send({"peak_rss": common.peak_rss()})
            if message.get("reset_peak_rss"):
                common.reset_peak_rss()
                parent.send({"ok": True})
    await parent.aclose()


def main() -> None:
    """Entry point of the child (``--child JSON``)."""
    args = common.parse_args("benchmark server child", TRIO_BACKENDS)
    if args.child is None:
        sys.exit("this module is the server child of the benchmarks; run bulk, rtt, ... instead")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    trio.run(_child_main, args.child)


if __name__ == "__main__":
    main()
