"""One WebSocket client of the signaling server: its outgoing frames and how it ends.

A :class:`Client` is the server's handle on one accepted WebSocket. Other
clients' tasks queue frames for it with :meth:`Client.send` (never waiting)
on its :class:`~unisockets.signaling._server_socket.SocketTransport`, whose
outgoing bytes are bounded; the server then writes them with one ``send``
per client and batch. Whoever decides that the client must go (its reader on
bad input, the pinger, a sender finding its buffer full, the server shutting
down) calls :meth:`Client.fail`, which records the close code and reason and
stops the client's reader; the client's own task then leaves the network and
closes the WebSocket. No method here waits, so the server can call them while
it feeds its synchronous state machine.
"""

from __future__ import annotations

import logging
from typing import Final

import trio

from unisockets.protocol import Acknowledged, Alias, Bind, Connect, Knock, Message, Shutdown

from ._server_connection import ServerWebSocket
from ._server_socket import SocketTransport
from .limits import TokenBucket

__all__ = ["Client", "close_reason_text"]

logger: Final = logging.getLogger("unisockets.signaling.server")

#: Longest close reason RFC 6455 §5.5 allows (a control frame holds 125 bytes, 2 are the code).
MAX_CLOSE_REASON_BYTES: Final = 123

#: Close codes that end a connection normally (RFC 6455 §7.4.1): normal, going away, none given.
NORMAL_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})


def close_reason_text(reason: str) -> str:
    """Cut ``reason`` to the 123 UTF-8 bytes a close frame can carry (RFC 6455 §5.5).

    Args:
        reason: any text.

    Returns:
        ``reason`` itself if it fits, else its longest prefix that fits,
        cut on a character boundary.
    """
    data = reason.encode("utf-8")
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return data[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


class Client:
    """The server's state for one accepted WebSocket client.

    Args:
        key: the client's key in the signaling state machine (unique per server).
        ws: the accepted WebSocket.
        remote: the peer's address for logs, e.g. ``"127.0.0.1:53422"``.
        send_queue_bytes: how many outgoing bytes (frames the kernel has not
            taken yet) may wait; a frame that would go over it makes the
            client a slow consumer (one frame alone is always queued,
            whatever its size).
        dirty: where to note the client's transport when it needs a
            :meth:`~unisockets.signaling._server_socket.SocketTransport.flush`
            (the server flushes them all after each batch).
        bucket: the rate limiter of the client's incoming messages.

    Attributes:
        key: as given.
        ws: as given.
        remote: as given.
        name: how logs name the client: its id once it joined, else ``remote``.
        bucket: as given.
        reading: the cancel scope around the client's reader and pinger;
            :meth:`fail` cancels it.
        close_code: the WebSocket close code the server will send, or
            ``None`` while the client is healthy or when there is nothing to
            send (the connection is already gone).
        close_reason: the reason sent with ``close_code``, or why it ended.
        discard: whether the close must drop what is still queued (slow consumer).
        failed: whether :meth:`fail` was called.
        left: whether the client has left the signaling state machine.
    """

    __slots__ = (
        "_dirty",
        "_queue_limit",
        "_transport",
        "bucket",
        "close_code",
        "close_reason",
        "discard",
        "failed",
        "key",
        "left",
        "name",
        "reading",
        "remote",
        "ws",
    )

    def __init__(
        self,
        key: int,
        ws: ServerWebSocket,
        remote: str,
        send_queue_bytes: int,
        dirty: list[SocketTransport],
        bucket: TokenBucket,
    ) -> None:
        self.key = key
        self.ws = ws
        self._transport = ws.transport
        self._dirty = dirty
        self.remote = remote
        self.name = remote
        self.bucket = bucket
        self.reading = trio.CancelScope()
        self._queue_limit = send_queue_bytes
        self.close_code: int | None = None
        self.close_reason = ""
        self.discard = False
        self.failed = False
        self.left = False

    def send(self, frame: bytes) -> None:
        """Queue one frame, without waiting; the server's next flush writes it.

        Dropped silently once the client is failing or finished. If the
        outgoing bytes would go over ``send_queue_bytes``, the client is a
        slow consumer: it fails with 1008 and what is queued is discarded.

        Args:
            frame: the whole WebSocket frame, e.g. from
                :func:`~unisockets.signaling._server_connection.text_frame`.
        """
        if self.failed or self.left:
            return
        transport = self._transport
        queued = transport.queued
        if queued and queued + len(frame) > self._queue_limit:
            self.fail(1008, "slow consumer", discard=True)
            return
        if transport.queue(frame):
            self._dirty.append(transport)

    def fail(self, code: int | None, reason: str, *, discard: bool = False) -> None:
        """End the client: record why, and stop its reader and pinger.

        Only the first call counts. Never waits; the client's own task then
        leaves the network, sends what is queued and closes the WebSocket.

        Args:
            code: the close code to send (RFC 6455 §7.4.1), or ``None`` when
                the connection is already gone and nothing can be sent.
            reason: a human-readable reason, sent in the close frame (cut to
                123 bytes) and logged.
            discard: drop the messages still queued instead of sending them
                before the close frame (for slow consumers).
        """
        if self.failed:
            return
        self.failed = True
        self.close_code = code
        self.close_reason = reason
        self.discard = discard
        self.reading.cancel()
        if code is None:
            return  # nothing to send; the caller logged how the connection ended
        if code in NORMAL_CLOSE_CODES:
            logger.info("%s: closing (%s): %s", self.name, code, reason)
        else:
            logger.warning("%s: error close %d: %s", self.name, code, reason)

    def log_request(self, message: Message, replies: list[Message]) -> None:
        """Log a join, bind, shutdown or connect, with its outcome read from the server's replies.

        Args:
            message: what the client sent.
            replies: the messages the server sends back to this client for it, in order.
        """
        if not replies and isinstance(message, Knock | Bind | Shutdown | Connect):
            # several instances (docs/signaling-server.md): the subnet's owner answers later
            logger.debug("%s: %s forwarded to its subnet's owner", self.name, message.OPCODE)
        elif isinstance(message, Knock):
            ack = next((r for r in replies if isinstance(r, Acknowledged)), None)
            if ack is not None and not ack.rejected:
                self.name = ack.id
                logger.info("join %s (%s)", ack.id, self.remote)
            else:
                logger.info("%s: knock on full subnet %s rejected", self.remote, message.subnet)
        elif isinstance(message, Bind | Shutdown):
            verb = "bind" if isinstance(message, Bind) else "shutdown"
            reply = next(
                (r for r in replies if isinstance(r, Alias) and r.alias == message.alias), None
            )
            # a bind is done when its alias is set, a shutdown when its alias is unset
            done = reply is not None and reply.set == isinstance(message, Bind)
            outcome = "ok" if done else "refused"
            logger.info("%s %s %s: %s", verb, self.name, message.alias, outcome)
        elif isinstance(message, Connect):
            local = next(
                (
                    r.alias
                    for r in replies
                    if isinstance(r, Alias)
                    and r.client_connection_id == message.client_connection_id
                    and r.is_connection_alias
                ),
                None,
            )
            if local is not None:
                logger.info("connect %s -> %s: accepted", local, message.remote_alias)
            else:
                logger.info("connect %s -> %s: refused", self.name, message.remote_alias)
        else:
            logger.debug("%s: %s", self.name, message.OPCODE)
