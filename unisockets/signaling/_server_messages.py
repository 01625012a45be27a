"""The signaling server's message path: reading frames, feeding the machine, writing outputs.

:class:`ServerMessages` is the part of
:class:`~unisockets.signaling.server.SignalingServer` that moves messages
(docs/signaling-server.md; how it runs: the module docstring of
:mod:`unisockets.signaling.server`): the shared reader's callback and the
per-client read loop hand each read's frames to the state machine (or a
cluster's routing), in order and under the client's rate limit; outputs are
framed once and queued on their recipients' transports, written by
:meth:`ServerMessages._flush`; a closed or failed client leaves the machine
once. The server's other half (listening, handshakes, the client tasks,
timers) stays in :mod:`unisockets.signaling.server`.
"""

from __future__ import annotations

import logging
import math
from typing import Final

import trio

from unisockets.protocol import (
    Answer,
    Candidate,
    Knock,
    Message,
    Offer,
    RemoteProtocolError,
    encode,
)
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.wire import decode_canonical

from ._server_client import NORMAL_CLOSE_CODES, Client, logger
from ._server_connection import PeerClosed, PeerViolation, text_frame
from ._server_reader import SharedReader
from ._server_socket import SocketTransport
from .cluster import ClusterProtocol
from .limits import ServerLimits, TokenBucket
from .metrics import ServerMetrics

__all__ = ["ServerMessages"]

#: What the server passes on unchanged; logged at DEBUG only, so not even looked at otherwise.
_RELAYED: Final = (Offer, Answer, Candidate)


def _debug_enabled() -> bool:
    return logger.isEnabledFor(logging.DEBUG)


class ServerMessages:
    """The message path of a signaling server.

    A base of :class:`~unisockets.signaling.server.SignalingServer`; the
    attributes below are the server's (set by its ``__init__``).
    """

    limits: ServerLimits
    metrics: ServerMetrics
    _protocol: SignalingServerProtocol[int] | ClusterProtocol
    _clients: dict[int, Client]
    _dirty: list[SocketTransport]
    _reader: SharedReader[Client] | None
    _timer_wake: trio.Event

    async def _read_shared(
        self, reader: SharedReader[Client], client: Client, deadline: float
    ) -> None:
        """Let the shared reader serve the client (:meth:`_read_ready`) until it must go.

        This task only waits: for the join deadline, then for :meth:`Client.fail`
        (whoever calls it) to cancel ``client.reading`` around it.
        """
        fd = client.ws.transport.fileno()
        reader.add(fd, client)
        try:
            if not client.failed:
                try:
                    self._after_read(client, client.ws.receive_pipelined(), trio.current_time())
                finally:
                    self._flush()
            with trio.move_on_at(deadline):
                await trio.sleep_forever()
            if self._protocol.member_id(client.key) is None:
                client.fail(1008, f"did not join within {self.limits.handshake_timeout:g} s")
            await trio.sleep_forever()
        finally:
            reader.remove(fd, client)

    def _read_ready(self, clients: list[Client]) -> None:
        """The shared reader's callback: read each client once and handle what came.

        One ``recv`` (up to 64 KiB) per client and round bounds what one
        client can make the server do before the others get their turn.
        A failed client leaves the reader here (its task then closes it).
        """
        reader = self._reader
        now = trio.current_time()
        for client in clients:
            if not client.failed:
                try:
                    try:
                        data = client.ws.transport.receive_now()
                    except trio.BrokenResourceError as exc:
                        self._closed_by_peer(client, PeerClosed(1006, str(exc)))
                    else:
                        if data is not None:
                            self._after_read(client, client.ws.receive_data(data), now)
                except Exception:
                    logger.exception("%s: unexpected error", client.name)
                    client.fail(1011, "internal server error")
                finally:
                    self._flush()
            if client.failed and reader is not None:
                reader.remove(client.ws.transport.fileno(), client)

    def _after_read(self, client: Client, batch: list[str | bytes], now: float) -> None:
        """Handle the messages of one read, then how the WebSocket ended, if it did."""
        if batch and not self._receive_batch(client, batch, client.bucket, now):
            return
        error = client.ws.error
        if error is None:
            return
        if isinstance(error, PeerClosed):
            self._closed_by_peer(client, error)
        else:
            client.fail(error.code, error.reason)

    async def _read(self, client: Client, deadline: float) -> None:
        """Feed the client's messages to the state machine, a batch per read, until it must go.

        The path of TLS connections (and where there is no epoll): the
        client's own task reads.
        """
        limits = self.limits
        bucket = client.bucket
        ws = client.ws
        joined = False
        with trio.CancelScope(deadline=deadline) as joining:
            while True:
                try:
                    batch = await ws.receive()
                except PeerClosed as exc:
                    self._closed_by_peer(client, exc)
                    return
                except PeerViolation as exc:
                    client.fail(exc.code, exc.reason)
                    return
                try:
                    if not self._receive_batch(client, batch, bucket, trio.current_time()):
                        return
                finally:
                    self._flush()
                if not joined and self._protocol.member_id(client.key) is not None:
                    joined = True
                    joining.deadline = math.inf
        client.fail(1008, f"did not join within {limits.handshake_timeout:g} s")

    def _receive_batch(
        self, client: Client, batch: list[str | bytes], bucket: TokenBucket, now: float
    ) -> bool:
        """Handle one read's messages in order; ``False`` once the client failed."""
        limits = self.limits
        for data in batch:
            if isinstance(data, bytes):
                client.fail(1003, "binary frames are not supported: send JSON text frames")
                return False
            if not bucket.take(now):
                self.metrics.rate_limited += 1
                client.fail(
                    1008,
                    f"rate limit exceeded ({limits.max_messages_per_second:g} messages/s,"
                    f" burst {limits.burst})",
                )
                return False
            try:
                self._handle(client, data)
            except RemoteProtocolError as exc:
                client.fail(exc.close_code, str(exc))
                return False
            except Exception:
                logger.exception("%s: unexpected error handling %.200r", client.name, data)
                client.fail(1011, "internal server error")
                return False
            if client.failed:
                return False
        return True

    def _handle(self, client: Client, data: str) -> None:
        """Decode one frame, feed it to the state machine, queue and log the outputs.

        A function of its own so that the outputs die with it: ``_read`` then
        waits for the next frame, which may be hours away, and a join's outputs
        hold a ``greeting`` for every member of the subnet (measured: 12 KiB
        per node with full subnets, a quarter of the server's memory per node).
        """
        message, canonical = decode_canonical(data)
        protocol = self._protocol
        if isinstance(protocol, ClusterProtocol):  # forwarded as it came when it is canonical
            outputs = protocol.receive(client.key, message, data if canonical else None)
        else:
            outputs = protocol.receive(client.key, message)
            if isinstance(message, Knock):
                self._close_replaced(protocol)
        if canonical and len(outputs) == 1 and outputs[0][1] is message:
            # a relay of a message written as encode() writes it: pass the text on as it came
            recipient = self._clients.get(outputs[0][0])
            if recipient is not None:
                recipient.send(text_frame(data.encode()))
        else:
            self._deliver(outputs)
        if isinstance(message, _RELAYED):
            self.metrics.relays += 1
        elif not isinstance(self._protocol, ClusterProtocol):
            self.metrics.request(message, [out for key, out in outputs if key == client.key])
        if not isinstance(message, _RELAYED) or _debug_enabled():
            client.log_request(message, [out for key, out in outputs if key == client.key])

    def _close_replaced(self, protocol: SignalingServerProtocol[int]) -> None:
        """Close the connections a knock replaced (same node, id and token on a newer one)."""
        for key in protocol.take_replaced():
            old = self._clients.get(key)
            if old is not None:
                old.fail(1000, "replaced by a newer connection of this node")

    async def _expire_loop(self, protocol: SignalingServerProtocol[int]) -> None:
        """Feed time to the state machine at its deadlines (rejoin grace, kept ids)."""
        while True:
            woken = self._timer_wake
            with trio.move_on_at(protocol.next_deadline()):
                await woken.wait()
                self._timer_wake = trio.Event()
                continue
            self._deliver(protocol.expire(trio.current_time()))
            self._flush()

    async def _ping_all(self) -> None:
        """Each ``ping_interval``: fail the clients whose last ping is unanswered, ping the rest."""
        interval = self.limits.ping_interval
        while True:
            await trio.sleep(interval)
            for client in list(self._clients.values()):
                if client.failed:
                    continue
                if client.ws.awaiting_pong:
                    client.fail(1011, f"no pong within {interval:g} s")
                else:
                    client.ws.ping()

    def _closed_by_peer(self, client: Client, exc: PeerClosed) -> None:
        """Record a connection the peer closed (or that broke): nothing left to send."""
        if client.failed:
            return
        code, text = exc.code, exc.reason
        if code in NORMAL_CLOSE_CODES or code == 1006:  # 1006: no close frame, e.g. TCP reset
            logger.debug("%s: closed by the client (%d %s)", client.name, code, text)
        else:
            logger.warning("%s: error close %d: %s", client.name, code, text)
        client.fail(None, f"closed {code}{' ' + text if text else ''}")

    def _leave(self, client: Client) -> None:
        """Take the client out of the state machine once, and tell the others."""
        if client.left:
            return
        client.left = True
        self._clients.pop(client.key, None)
        member = self._protocol.member_id(client.key)
        try:
            if isinstance(self._protocol, ClusterProtocol):
                outputs = self._protocol.client_disconnected(client.key)
            else:
                outputs = self._protocol.client_disconnected(client.key, now=trio.current_time())
            self._timer_wake.set()  # it may keep the id: a new deadline
        except Exception:
            logger.exception("%s: unexpected error on leave", client.name)
            return
        if member is not None:
            self.metrics.leaves += 1
            logger.info("leave %s (%s): %s", member, client.remote, client.close_reason)
        else:
            logger.debug("%s: gone without joining: %s", client.remote, client.close_reason)
        self._deliver(outputs)
        self._flush()

    def _deliver(self, outputs: list[tuple[int, Message]]) -> None:
        """Queue each output for its recipient, in order, framing each message once.

        Everything is encoded before anything is queued, so that a message
        that cannot be encoded (a bug) leaves no half-delivered broadcast.
        The frames are written by the next :meth:`_flush`.
        """
        if len(outputs) == 1:  # a relay: the common case
            key, message = outputs[0]
            client = self._clients.get(key)
            if client is not None:
                client.send(text_frame(encode(message).encode()))
            return
        encoded: dict[int, bytes] = {}
        frames: list[tuple[Client, bytes]] = []
        for key, message in outputs:
            client = self._clients.get(key)
            if client is None:
                continue
            frame = encoded.get(id(message))
            if frame is None:
                frame = encoded[id(message)] = text_frame(encode(message).encode())
            frames.append((client, frame))
        for client, frame in frames:
            client.send(frame)

    def _flush(self) -> None:
        """Write every client's newly queued frames, one ``send`` each (leftovers: drain tasks)."""
        dirty = self._dirty
        if dirty:
            for transport in dirty:
                transport.flush()
            dirty.clear()
