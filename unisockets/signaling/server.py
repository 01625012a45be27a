"""The signaling server: the sans-IO server protocol driven over real WebSockets.

A thin trio driver (docs/index.md, "The layers"): the state machine
:class:`~unisockets.protocol.server.SignalingServerProtocol` decides
everything; this module moves its inputs and outputs over real WebSockets
(:mod:`~unisockets.signaling._server_connection`: wsproto over a
non-blocking socket, TLS through :class:`ssl.SSLObject`) and enforces the
limits of :class:`~unisockets.signaling.limits.ServerLimits`.

How it runs, built for the cost per relayed message (docs/benchmarks.md,
"Signaling server"):

- One task per TCP connection, all in the server's nursery, runs the
  handshakes (TLS, HTTP upgrade) and the close. In between, a plain-TCP
  connection is read by the one shared reader
  (:class:`~unisockets.signaling._server_reader.SharedReader`: a
  level-triggered epoll of its own that one task waits on), which takes the
  ready connections a round at a time and reads each once: whatever the
  kernel has, up to 64 KiB, and *every* message in it goes to the state
  machine before the next connection's turn. No task switch and no epoll
  re-arm per message; the connection's own task only waits for the join
  deadline and for its end. TLS connections keep reading in their own task.
  One pinger task serves all clients.
- The state machine is synchronous and trio runs one task at a time, so the
  reader feeds it a client's batch and queues every output with no
  checkpoint in between: that is the server's one lock. Each output becomes
  a WebSocket frame once (a broadcast shares it; a relay written as
  :func:`~unisockets.protocol.wire.encode` writes it is passed on as it
  came) and is appended to its recipient's outgoing buffer; after the
  batch, each recipient's buffer is written with one ``send``. Only what the
  kernel does not take waits for a drain task of the recipient's. Queuing
  never waits; a client whose buffer overflows is closed as a slow consumer,
  so one slow reader never holds up the others.
- Whatever a client sends, the worst outcome is that *this* client is closed
  with a code and a reason (1002 broken framing, 1003 binary frame, 1007
  invalid UTF-8, 1008 protocol violation, rate or handshake limit, slow
  consumer, 1009 oversize, 1011 missed ping or internal error) and leaves like
  any other: ``goodbye`` and alias removals go to the rest (docs/protocol.md,
  "Leave"). Unexpected exceptions are logged and end only the client they
  happened in.
- Leaving the server (the ``async with`` of :func:`open_signaling_server`, or
  cancelling :func:`serve_signaling`) closes every client with 1001 and gives
  them ``close_timeout`` seconds to take it before cutting the connections.

Logs go to the stdlib logger ``"unisockets.signaling.server"``: joins (id,
remote address), leaves, binds, connects (accepted or refused) at INFO, every
error close with its reason at WARNING, unexpected exceptions at ERROR.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import trio

from unisockets.protocol import (
    Message,
)
from unisockets.protocol.server import DEFAULT_SUFFIXES, SignalingServerProtocol

from .._nursery import open_owned_nursery
from ._server_accept import ServerAccepting, _Connection
from ._server_client import Client, logger
from ._server_connection import (
    text_frame,
)
from ._server_reader import SharedReader
from ._server_socket import SocketTransport
from .cluster import ClusterProtocol, new_instance_id, run_cluster
from .limits import DEFAULT_LIMITS, ServerLimits
from .metrics import ServerMetrics

__all__ = ["SignalingServer", "open_signaling_server", "serve_signaling"]


class SignalingServer(ServerAccepting):
    """A running signaling server, as yielded by :func:`open_signaling_server`.

    Do not construct it yourself: use :func:`open_signaling_server` or
    :func:`serve_signaling`.

    Attributes:
        host: the host the server was asked to listen on, e.g. ``"127.0.0.1"``.
        port: the TCP port it listens on (the kernel's pick when asked for 0).
        url: the URL nodes connect to: ``ws://host:port``, or ``wss://`` with
            TLS; IPv6 hosts in brackets.
        limits: the limits it enforces.
    """

    def __init__(
        self,
        listeners: list[trio.SocketListener],
        *,
        host: str,
        protocol: SignalingServerProtocol[int] | ClusterProtocol,
        limits: ServerLimits,
        ssl_context: ssl.SSLContext | None,
        redis: str | None = None,
    ) -> None:
        self._listeners = listeners
        self._protocol = protocol
        self._redis = redis
        #: what the server counts (``--metrics-port``: :mod:`unisockets.signaling.metrics`).
        self.metrics = ServerMetrics()
        if isinstance(protocol, ClusterProtocol):
            protocol.applied = self.metrics.request  # the owner counts what it applies
        self._ssl_context = ssl_context
        self.limits = limits
        self.host = host
        self.port: int = listeners[0].socket.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'wss' if ssl_context is not None else 'ws'}://{shown}:{self.port}"
        self._keys = itertools.count(1)
        self._connections: set[_Connection] = set()
        #: Connections that have not finished the WebSocket upgrade (max_handshakes).
        self._handshaking = 0
        self._clients: dict[int, Client] = {}
        self._dirty: list[SocketTransport] = []
        self._slots = 0
        self._reader: SharedReader[Client] | None = None
        self._closing = False
        self._drained = trio.Event()
        #: Knocks may wait until then (the rejoin grace): joins get that much longer.
        self._hold_end = trio.current_time() + limits.rejoin_grace
        #: Set when the state machine's next deadline may have moved earlier.
        self._timer_wake = trio.Event()

    @property
    def client_count(self) -> int:
        """WebSocket clients connected now (members or not yet joined)."""
        return len(self._clients)

    @property
    def member_ids(self) -> list[str]:
        """Ids of the clients that joined a subnet, in the order they connected."""
        ids = (self._protocol.member_id(key) for key in self._clients)
        return [member for member in ids if member is not None]

    def subnet_sizes(self) -> dict[str, int]:
        """Members per subnet (with Redis: of the subnets this instance owns)."""
        protocol = self._protocol
        if isinstance(protocol, ClusterProtocol):
            return {subnet: len(machine.members) for subnet, machine in protocol.owned.items()}
        return {subnet: len(ids) for subnet, ids in protocol.subnets.items()}

    @property
    def queue_depth(self) -> int | None:
        """With Redis: inputs and items waiting for other instances; ``None`` without."""
        protocol = self._protocol
        return protocol.queue_depth if isinstance(protocol, ClusterProtocol) else None

    def health_problem(self) -> str | None:
        """Why this instance should get no new clients now, or ``None`` when it is healthy."""
        if self._closing:
            return "shutting down"
        protocol = self._protocol
        if isinstance(protocol, ClusterProtocol) and not protocol.healthy:
            return "Redis unreachable"
        return None

    async def serve(
        self, *, task_status: trio.TaskStatus[SignalingServer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Accept clients until cancelled, then close them all (1001) and return.

        On cancellation every client gets close 1001 ("server shutting down")
        and up to ``limits.close_timeout`` seconds to take it; the shutdown
        runs shielded, then the remaining connections are cut.

        Args:
            task_status: for ``await nursery.start(server.serve)``: reports
                ``self`` once the listeners accept connections.
        """
        reader = self._reader = SharedReader() if SharedReader.available() else None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    if reader is not None:
                        nursery.start_soon(reader.run, self._read_ready)
                    await nursery.start(
                        partial(
                            trio.serve_listeners,
                            self._handle_stream,
                            list(self._listeners),
                            handler_nursery=nursery,
                        )
                    )
                    nursery.start_soon(self._ping_all)
                    if isinstance(self._protocol, SignalingServerProtocol):
                        nursery.start_soon(self._expire_loop, self._protocol)
                    logger.info("listening on %s", self.url)
                    task_status.started(self)
                    await trio.sleep_forever()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._shut_down()
        finally:
            self._reader = None
            if reader is not None:
                reader.close()

    async def _shut_down(self) -> None:
        """Close every client with 1001, wait ``close_timeout`` for them, then cut the rest."""
        self._closing = True
        for connection in list(self._connections):
            if connection.client is None:
                connection.scope.cancel()
            else:
                connection.client.fail(1001, "server shutting down")
        if self._connections:
            with trio.move_on_after(self.limits.close_timeout + 1.0):
                await self._drained.wait()
        for connection in list(self._connections):
            connection.scope.cancel()
        logger.info("stopped listening on %s", self.url)


class _LocalClients:
    """A server's clients as a cluster's routing reaches them (``cluster.routing.LocalClients``)."""

    def __init__(self, server: SignalingServer) -> None:
        self._server = server

    def deliver(self, outputs: list[tuple[int, Message]]) -> None:
        self._server._deliver(outputs)
        self._server._flush()

    def send_texts(self, frames: list[tuple[int, str]]) -> None:
        clients = self._server._clients
        for key, text in frames:
            client = clients.get(key)
            if client is not None:
                client.send(text_frame(text.encode()))
        self._server._flush()

    def fail(self, key: int, code: int, reason: str) -> None:
        client = self._server._clients.get(key)
        if client is not None:
            client.fail(code, reason)


@asynccontextmanager
async def _clustered(server: SignalingServer) -> AsyncIterator[None]:
    """Connect a server to its cluster for the body, if it has one (``redis=``)."""
    protocol = server._protocol
    if server._redis is None or not isinstance(protocol, ClusterProtocol):
        yield
        return
    async with run_cluster(protocol, server._redis, _LocalClients(server)):
        yield


async def serve_signaling(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ServerLimits = DEFAULT_LIMITS,
    suffixes: range = DEFAULT_SUFFIXES,
    ssl_context: ssl.SSLContext | None = None,
    redis: str | None = None,
    task_status: trio.TaskStatus[SignalingServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a signaling server until cancelled (``nursery.start()``-compatible).

    ``server = await nursery.start(serve_signaling, "127.0.0.1", 0)`` returns
    once the server listens. Cancelling it closes every client with 1001 and
    gives them ``limits.close_timeout`` seconds to take it (the close runs
    shielded).

    Args:
        host: the address to listen on, e.g. ``"127.0.0.1"``, ``"0.0.0.0"``,
            ``"::"``. A name that resolves to several addresses gets one
            listener each; with ``port=0`` their ports may differ and
            ``server.port`` is the first one's.
        port: the TCP port, or 0 for one the kernel picks (see ``server.port``).
        limits: what the server allows each client (rates, sizes, client
            counts, timeouts): a :class:`~unisockets.signaling.limits.ServerLimits`,
            e.g. ``ServerLimits(max_clients=100)``; every field has a
            public-server default (docs/signaling-server.md, "Limits").
        suffixes: the last octets handed out as ids, lowest first; the
            default 1..254 skips the network and broadcast addresses,
            ``range(0, 256)`` is the original server's.
        ssl_context: a server-side TLS context to serve ``wss://``, or ``None``.
        redis: ``redis://HOST:PORT/DB`` to serve one network with every other
            instance given the same URL (docs/signaling-server.md, "Several
            instances over Redis"); ``None``: this process alone.
        task_status: reports the :class:`SignalingServer` once listening.

    Raises:
        TypeError: ``limits`` is not a ``ServerLimits``.
        LocalProtocolError: ``suffixes`` is not a non-empty range in 0..255.
        OSError: the address cannot be bound (e.g. ``EADDRINUSE``).
        ClusterError: ``redis`` is given and Redis cannot be reached there
            (an ``OSError``).
    """
    server = await _open_server(
        host, port, limits=limits, suffixes=suffixes, ssl_context=ssl_context, redis=redis
    )
    async with _clustered(server):
        await server.serve(task_status=task_status)


@asynccontextmanager
async def open_signaling_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ServerLimits = DEFAULT_LIMITS,
    suffixes: range = DEFAULT_SUFFIXES,
    ssl_context: ssl.SSLContext | None = None,
    redis: str | None = None,
) -> AsyncIterator[SignalingServer]:
    """Run a signaling server for the body of an ``async with``.

    ``async with open_signaling_server() as server:`` listens on
    ``server.url``; leaving the block closes every client (1001), waits up to
    ``limits.close_timeout`` seconds for them, and stops. The arguments are
    those of :func:`serve_signaling`, e.g.
    ``open_signaling_server("0.0.0.0", 6999, limits=ServerLimits(max_clients=100))``.
    An exception from the body propagates as it is (not wrapped in an
    exception group).

    Yields:
        The running :class:`SignalingServer`.

    Raises:
        TypeError: ``limits`` is not a ``ServerLimits``.
        LocalProtocolError: ``suffixes`` is not a non-empty range in 0..255.
        OSError: the address cannot be bound (e.g. ``EADDRINUSE``).
        ClusterError: ``redis`` is given and Redis cannot be reached there
            (an ``OSError``).
    """
    server = await _open_server(
        host, port, limits=limits, suffixes=suffixes, ssl_context=ssl_context, redis=redis
    )
    async with _clustered(server), open_owned_nursery() as nursery:
        await nursery.start(server.serve)
        yield server


async def _open_server(
    host: str,
    port: int,
    *,
    limits: ServerLimits,
    suffixes: range,
    ssl_context: ssl.SSLContext | None,
    redis: str | None = None,
) -> SignalingServer:
    """Check the arguments, bind the listeners and build the (not yet serving) server."""
    if not isinstance(limits, ServerLimits):
        raise TypeError(
            "limits must be a unisockets.signaling.ServerLimits,"
            f" e.g. ServerLimits(max_clients=100), got {type(limits).__name__}"
        )
    protocol: SignalingServerProtocol[int] | ClusterProtocol
    if redis is None:
        protocol = SignalingServerProtocol(
            suffixes=suffixes, rejoin_grace=limits.rejoin_grace, now=trio.current_time()
        )
    else:
        protocol = ClusterProtocol(
            new_instance_id(),
            suffixes=suffixes,
            rejoin_grace=limits.rejoin_grace,
            clock=trio.current_time,
        )
    listeners = await trio.open_tcp_listeners(port, host=host)
    return SignalingServer(
        listeners,
        host=host,
        protocol=protocol,
        limits=limits,
        ssl_context=ssl_context,
        redis=redis,
    )
