"""The signaling client's outbox: every message, in order, paced, in batches (private).

Part of :mod:`unisockets.signaling.client` (see its module docstring): the
session core (:class:`~unisockets.protocol.session.SignalingSession`) makes
messages in the order it expects the server to answer them; :class:`Outbox`
writes them in that order, one writer at a time, to the current session's
WebSocket. It keeps to the client's send rate with a token bucket
(:class:`~unisockets.protocol.pacing.TokenBucket`, a fresh full one per
session, as the server's is), and writes everything the bucket allows with
one write (up to :data:`MAX_BATCH` messages), so that a busy trio run spends
one scheduler round on many messages instead of one on each. When the last
message of a request is written, it says so (``on_written``): the request's
answer is due from then on.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

import trio

from unisockets.protocol import Message, encode
from unisockets.protocol.pacing import TokenBucket
from unisockets.protocol.session import Send, Ticket

from ._client_connection import ClientWebSocket, ConnectionClosed
from .errors import SignalingError

logger: Final = logging.getLogger("unisockets.signaling.client")

#: Most messages written to the WebSocket with one write.
MAX_BATCH: Final = 512

#: A message to write, with the ticket whose request it completes (or None).
Entry = tuple[Message, Ticket | None]


class Outbox:
    """The ordered, paced queue of a signaling client's messages.

    Args:
        send_rate: ``(messages per second, burst)`` to keep to, or None (no pacing).
        write_timeout: seconds one write may take before the session counts as broken.
        on_written: called with each ticket whose request was written, and the time.
        on_broken: called with a reason when a write fails (the driver ends the session).
    """

    def __init__(
        self,
        send_rate: tuple[float, int] | None,
        write_timeout: float,
        on_written: Callable[[Ticket, float], None],
        on_broken: Callable[[str], None],
    ) -> None:
        self._send_rate = send_rate
        self._write_timeout = write_timeout
        self._on_written = on_written
        self._on_broken = on_broken
        self._entries: deque[Entry] = deque()
        self._lock = trio.Lock()
        self._bucket: TokenBucket | None = None
        self._ws: ClientWebSocket | None = None
        self._nursery: trio.Nursery | None = None
        self._generation = 0  # grows with every session start and end
        self._flush_started = False  # a task that will write the outbox is started

    def __bool__(self) -> bool:
        """Whether messages wait to be written."""
        return bool(self._entries)

    def start_session(self, ws: ClientWebSocket, nursery: trio.Nursery) -> None:
        """Write to ``ws`` from now on; tasks that write later run in ``nursery``."""
        self._ws, self._nursery = ws, nursery
        self._generation += 1
        self._bucket = None  # the server's bucket starts full too
        self._flush_started = False

    def end_session(self) -> None:
        """Forget the session's WebSocket and what was not written (the core decides anew)."""
        self._ws = self._nursery = None
        self._generation += 1
        self._entries.clear()

    def queue(self, send: Send) -> None:
        """Put ``send``'s messages at the end, its ticket beside the last one."""
        *first, last = send.messages
        self._entries.extend((message, None) for message in first)
        self._entries.append((last, send.ticket))

    async def send(self, entries: list[Entry]) -> None:
        """Queue ``entries`` and write the outbox; a cancelled write is finished by a task.

        Raises:
            SignalingError: the session ended (or a write failed) before all was written.
        """
        self._entries.extend(entries)
        try:
            await self.flush()
        except trio.Cancelled:
            self.flush_later()
            raise

    async def send_quietly(self) -> None:
        """Write the outbox; a session that ends first is no error (the server forgets)."""
        with contextlib.suppress(SignalingError):
            await self.flush()

    def flush_later(self) -> None:
        """Have a task write the outbox (one waits to, however often this is called)."""
        if self._entries and self._nursery is not None and not self._flush_started:
            self._flush_started = True
            self._nursery.start_soon(self._flush_quietly)

    async def _flush_quietly(self) -> None:
        self._flush_started = False  # what is queued from now on, this flush or the next writes
        await self.send_quietly()

    async def flush(self) -> None:
        """Write the outbox in order under the lock, in paced batches.

        Raises:
            SignalingError: the session ended (or a write failed) before all was written.
        """
        generation = self._generation
        async with self._lock:
            while self._entries:
                ws = self._ws
                if ws is None or generation != self._generation:
                    raise SignalingError("the connection to the signaling server was lost")
                count = await self._pace(min(len(self._entries), MAX_BATCH))
                if generation != self._generation:
                    raise SignalingError("the connection to the signaling server was lost")
                batch = [self._entries.popleft() for _ in range(min(count, len(self._entries)))]
                texts = [encode(message) for message, _ in batch]
                if logger.isEnabledFor(logging.DEBUG):
                    for text in texts:
                        logger.debug("sending %s", text)
                try:
                    # A half-written frame would break the WebSocket: never cancel a write.
                    with trio.CancelScope(shield=True):
                        with trio.fail_after(self._write_timeout):
                            await ws.send(texts)
                except (ConnectionClosed, trio.TooSlowError) as exc:
                    self._on_broken(f"sending failed: {exc!r}")
                    raise SignalingError("the connection to the signaling server broke") from exc
                now = trio.current_time()
                for _, ticket in batch:
                    if ticket is not None:
                        self._on_written(ticket, now)

    async def _pace(self, wanted: int) -> int:
        """Wait until the token bucket allows a message; take up to ``wanted`` tokens.

        Returns:
            How many messages may be written now (at least 1; ``wanted``
            without a send rate). Cancellable: nothing is popped yet.
        """
        if self._send_rate is None:
            return wanted
        rate, burst = self._send_rate
        if self._bucket is None:
            self._bucket = TokenBucket(rate, burst, trio.current_time())
        # Pacing: sleeping until the next token is the point of this loop.
        while not self._bucket.take(trio.current_time()):  # noqa: ASYNC110
            await trio.sleep(self._bucket.wait_time())
        taken, now = 1, trio.current_time()
        while taken < wanted and self._bucket.take(now):
            taken += 1
        return taken
