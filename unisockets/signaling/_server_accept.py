"""The signaling server's connections: from an accepted TCP stream to a client's end.

:class:`ServerAccepting` is the part of
:class:`~unisockets.signaling.server.SignalingServer` that runs each
connection (how it runs: the module docstring of
:mod:`unisockets.signaling.server`): the WebSocket upgrade under
``max_handshakes`` and ``handshake_timeout``, refusing clients over
``max_clients``, the client's reading (the shared reader, or its own task
with TLS) until it fails or closes, the close handshake, and its leave.
Its messages are :class:`~unisockets.signaling._server_messages.ServerMessages`'.
"""

from __future__ import annotations

import itertools
import socket
import ssl

import trio

from unisockets.protocol.server import SignalingServerProtocol

from ._server_client import Client, close_reason_text, logger
from ._server_connection import HandshakeError, ServerWebSocket
from ._server_messages import ServerMessages
from ._server_socket import SocketTransport
from .cluster import ClusterProtocol
from .limits import TokenBucket

__all__ = ["ServerAccepting"]


class _Connection:
    """One TCP connection: its shielded cancel scope, and its client once the WebSocket is open."""

    __slots__ = ("client", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope(shield=True)
        self.client: Client | None = None


class ServerAccepting(ServerMessages):
    """How a signaling server runs its connections.

    A base of :class:`~unisockets.signaling.server.SignalingServer`; the
    attributes below are the server's (set by its ``__init__``).
    """

    _ssl_context: ssl.SSLContext | None
    _keys: itertools.count[int]
    _connections: set[_Connection]
    _handshaking: int
    _slots: int
    _closing: bool
    _drained: trio.Event
    _hold_end: float

    async def _handle_stream(self, stream: trio.SocketStream) -> None:
        """Serve one TCP connection from accept to close; never raises (but Cancelled)."""
        remote = _peer_name(stream.socket)
        # From here on the connection is a plain non-blocking socket (TCP_NODELAY already set).
        sock = socket.socket(fileno=stream.socket.detach())
        transport = SocketTransport(sock, self._ssl_context)
        if self._closing:
            transport.close()
            return
        connection = _Connection()
        self._connections.add(connection)
        # Shielded so that leaving the server can close each client gracefully;
        # _shut_down() cancels the scope when the grace period is over.
        with connection.scope:
            try:
                await self._run_connection(connection, transport, remote)
            except* Exception as group:
                logger.error("%s: unexpected error", remote, exc_info=group)
            finally:
                transport.close()
                self._connections.discard(connection)
                if self._closing and not self._connections:
                    self._drained.set()

    async def _run_connection(
        self, connection: _Connection, transport: SocketTransport, remote: str
    ) -> None:
        limits = self.limits
        if self._handshaking >= limits.max_handshakes:
            logger.warning(
                "%s: closed: %d connections are already in the WebSocket handshake",
                remote,
                self._handshaking,
            )
            await trio.lowlevel.checkpoint()
            return
        deadline = trio.current_time() + limits.handshake_timeout
        ws = ServerWebSocket(transport, limits.max_message_size)
        requested = False
        self._handshaking += 1
        try:
            with trio.move_on_at(deadline):
                try:
                    await ws.receive_request()
                except HandshakeError as exc:
                    logger.info("%s: gone before the WebSocket handshake: %s", remote, exc)
                    return
                requested = True
        finally:
            self._handshaking -= 1
        if not requested:
            logger.info("%s: no WebSocket handshake within %g s", remote, limits.handshake_timeout)
            return
        await self._serve_request(connection, ws, remote, deadline)

    async def _serve_request(
        self, connection: _Connection, ws: ServerWebSocket, remote: str, deadline: float
    ) -> None:
        full = self._slots >= self.limits.max_clients
        if not full:
            self._slots += 1
        try:
            accepted = False
            with trio.move_on_at(deadline):
                await ws.accept()
                accepted = True
            if not accepted:
                logger.info("%s: WebSocket handshake timed out", remote)
                return
            if full:
                logger.warning(
                    "%s: error close 1013: server full (%d clients)", remote, self._slots
                )
                await self._close(ws, 1013, f"server full ({self.limits.max_clients} clients)")
                return
            limits = self.limits
            client = Client(
                next(self._keys),
                ws,
                remote,
                limits.send_queue_bytes,
                self._dirty,
                TokenBucket(limits.max_messages_per_second, limits.burst, trio.current_time()),
            )
            self._clients[client.key] = client
            connection.client = client
            try:
                self._deliver(self._protocol.client_connected(client.key))
                protocol = self._protocol
                if isinstance(protocol, SignalingServerProtocol) and protocol.holding:
                    # a knock may wait for the end of the grace
                    deadline = max(deadline, self._hold_end + limits.handshake_timeout)
                elif isinstance(protocol, ClusterProtocol) and protocol.rejoin_grace:
                    # its subnet's owner may hold the knock for up to a grace
                    deadline += protocol.rejoin_grace
                await self._run_client(client, deadline)
            finally:
                self._leave(client)
        finally:
            if not full:
                self._slots -= 1

    async def _run_client(self, client: Client, deadline: float) -> None:
        """Run one client's reader (drain tasks alongside); leave; close the WebSocket."""
        if self._closing:
            client.fail(1001, "server shutting down")
        async with trio.open_nursery() as nursery:  # the drain tasks of the transport
            client.ws.transport.attach(nursery)
            with client.reading:
                if self._reader is not None and not client.ws.transport.tls:
                    await self._read_shared(self._reader, client, deadline)
                else:
                    await self._read(client, deadline)
            # Leave at once, so the others learn it without waiting for the close handshake.
            self._leave(client)
            code = client.close_code
            self.metrics.closes["none" if code is None else str(code)] += 1
            if code is None:
                with trio.move_on_after(self.limits.close_timeout):
                    await client.ws.wait_closed()  # e.g. the echo of the peer's close frame
            else:
                reason = close_reason_text(client.close_reason)
                await self._close(client.ws, code, reason, discard=client.discard)
            nursery.cancel_scope.cancel()

    async def _close(
        self, ws: ServerWebSocket, code: int, reason: str, *, discard: bool = False
    ) -> None:
        """Send a close frame and wait up to ``close_timeout`` for the peer's reply."""
        with trio.move_on_after(self.limits.close_timeout):
            ws.close(code, reason, discard=discard)
            await ws.wait_closed()


def _peer_name(sock: trio.socket.SocketType) -> str:
    """``"host:port"`` of the socket's peer for logs (``"[v6]:port"``)."""
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "(disconnected)"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
