"""The asyncio driver's signaling client: the signaling session over the runtime's ``WebSocket``.

:class:`DriverSignaling` is the asyncio driver of
:class:`~unisockets.protocol.session.SignalingSession`, which makes every
decision of a node's signaling, as it does for the native client
(:mod:`unisockets.signaling.client`): request bookkeeping and timeouts, the
undoing of a late success whose caller gave up, what a reconnection restores
(bound aliases, accepting) or loses (a new id), session numbers, which events
the node sees, and the reconnection backoff. This module only moves frames,
keeps timers and wakes callers:

- the WebSocket's ``message`` listener feeds every text frame to the core,
  synchronously (there is no reader task); a binary frame is logged and ignored;
- requests (``bind``, ``connect``, ``shutdown``, ``listen``, relaying offers,
  answers and candidates) are those of the base class
  :class:`~unisockets.driver.signaling_requests.SignalingRequests`: each waits
  on a future until its ticket settles or its deadline passes (``ETIMEDOUT``);
- connections to a bound alias go to its queue, read by ``next_connection``;
- peer events (greetings, offers, answers, candidates, leaves, and
  :class:`~unisockets.protocol.events.Disconnected`,
  :class:`~unisockets.protocol.events.IdChanged`,
  :class:`~unisockets.protocol.events.Reconnected`) go to the ``on_event``
  callback: the node hands them to its peer links and to the user;
- :meth:`maintain` (in the node's task group) waits the backoff the core
  decides after each loss and opens the next WebSocket.

Every message goes out through one outbox in the order the core made it,
paced by a token bucket (``send_rate``, by default
:data:`~unisockets.protocol.pacing.DEFAULT_SEND_RATE`, 90 % of our server's
per-client limits) so that a burst is slowed down instead of being
disconnected for flooding (close 1008). ``WebSocket.send`` never blocks; a
timer sends what the bucket held back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ..protocol.errors import LocalProtocolError
from ..protocol.events import Event
from ..protocol.messages import Message
from ..protocol.pacing import DEFAULT_BACKOFF, DEFAULT_SEND_RATE, TokenBucket, check_send_rate
from ..protocol.session import (
    AliasLost,
    Deliver,
    JoinRefused,
    Output,
    Publish,
    Retry,
    Send,
    SessionJoined,
    Settled,
    SignalingSession,
    Stop,
)
from ..protocol.wire import encode
from .errors import JoinRejectedError, SignalingError
from .runtime import EventListeners, Runtime, logger, settle
from .signaling_requests import SignalingRequests, _Incoming

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "MAX_QUEUED_CONNECTIONS", "DriverSignaling"]

#: Seconds a bind, connect or shutdown (or the join) may wait for the server's answer.
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
#: ``accept`` announcements kept per bound alias while nobody reads them.
MAX_QUEUED_CONNECTIONS: Final = 1024


class DriverSignaling(SignalingRequests):
    """One node's signaling over the browser's WebSocket (see the module docstring).

    Use :meth:`open` to connect and join, run :meth:`maintain` in a task to
    reconnect, and :meth:`close` to leave.

    Args:
        url: ``ws://`` or ``wss://`` URL of the signaling server.
        subnet: the subnet to join, three octets such as ``"10.0.0"``.
        on_event: called with each event that is not an answer to a request
            (must not raise; exceptions are logged).
        request_timeout: seconds a request (or a join) may wait for its answer.
        reconnect: reconnect when the WebSocket closes; if false, the client
            closes instead (its requests then raise :class:`SignalingError`).
        backoff: ``(base, cap)`` in seconds: reconnection attempt ``n`` waits
            between half and all of ``min(cap, base * 2**n)``.
        send_rate: ``(messages per second, burst)`` the outbox keeps to;
            ``None`` sends at once.
        runtime: the platform whose WebSockets to use.
        lazy_links: knock with ``lazyLinks`` (docs/protocol.md, "Lazy peer links").

    Raises:
        ValueError: a bad timeout, backoff or send rate.
        LocalProtocolError: ``subnet`` is not a three-octet subnet.

    Attributes:
        protocol: the sans-IO state machine (read-only use: ids, aliases, peers).
        close_reason: why the client closed, or None while it is not closed.
    """

    def __init__(
        self,
        url: str,
        subnet: str,
        *,
        on_event: Callable[[Event], object],
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        reconnect: bool = True,
        backoff: tuple[float, float] = DEFAULT_BACKOFF,
        send_rate: tuple[float, int] | None = DEFAULT_SEND_RATE,
        runtime: Runtime,
        lazy_links: bool = False,
    ) -> None:
        self.url = url
        self._runtime = runtime
        self._core = SignalingSession(
            subnet,
            request_timeout=request_timeout,
            reconnect=reconnect,
            backoff=backoff,
            lazy_links=lazy_links,
        )
        self.protocol = self._core.protocol
        self.close_reason: str | None = None
        self._on_event = on_event
        self._request_timeout = self._core.request_timeout
        self._send_rate = check_send_rate(send_rate)
        self._loop: asyncio.AbstractEventLoop | None = None
        # The current WebSocket (None between sessions) and its listeners.
        self._ws: Any = None
        self._ws_listeners = EventListeners(runtime)
        self._last_reason = "not open"
        self._attempt: asyncio.Future[str] | None = None  # the join in progress
        self._lost = asyncio.Event()  # set while a session is needed (for maintain())
        self._rejoin_now = asyncio.Event()  # rejoin() cuts the backoff short
        self._retry_delay = 0.0
        self._closed = False
        self._incoming: dict[str, _Incoming] = {}
        # The paced outbox (encoded frames) of the current session.
        self._outbox: deque[str] = deque()
        self._bucket: TokenBucket | None = None
        self._flush_timer: asyncio.TimerHandle | None = None

    # --- session -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Our node id, e.g. ``"10.0.0.1"``; the last one while disconnected.

        Raises:
            SignalingError: never joined.
        """
        if self._core.id is None:
            raise SignalingError(f"not joined to {self.url}: {self._last_reason}")
        return self._core.id

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open and we are joined (not between sessions)."""
        return self._core.connected

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the session ended without ``reconnect``)."""
        return self._closed

    @property
    def session(self) -> int:
        """How many sessions (WebSockets) ended so far: a number that changes on each loss.

        A connection alias belongs to the session that made it (the server
        forgets it with the session); compare this number to know.
        """
        return self._core.session

    async def open(self) -> str:
        """Open the WebSocket, send ``knock`` and wait for ``acknowledged`` (the first session).

        Returns:
            Our id.

        Raises:
            SignalingError: the server is unreachable, closed the socket, or
                rejected the join (subnet full); or no answer within the
                request timeout. The client is closed then.
        """
        self._loop = asyncio.get_running_loop()
        try:
            return await self._join()
        except BaseException as exc:
            self.close(f"join failed: {exc}")
            raise

    async def maintain(self) -> None:
        """Reconnect whenever the session is lost, until :meth:`close` (run it in a task).

        Waits the backoff that :class:`~unisockets.protocol.session.SignalingSession`
        decides before each attempt; back with the same id, the session binds
        the aliases again and accepts again where it accepted. Without
        ``reconnect`` the client closes at the first loss instead.
        """
        while not self._closed:
            await self._lost.wait()
            if self._closed:
                return
            self._lost.clear()
            delay = self._retry_delay
            logger.info("reconnecting to %s in %.2f s (%s)", self.url, delay, self._last_reason)
            with contextlib.suppress(TimeoutError):  # the backoff ran out first
                await asyncio.wait_for(self._rejoin_now.wait(), delay)
            self._rejoin_now.clear()
            if self._closed:
                return
            try:
                await self._join()
            except SignalingError as exc:
                logger.info("reconnecting to %s failed: %s", self.url, exc)

    def rejoin(self) -> None:
        """Reconnect now instead of at the end of the backoff (if the session is lost).

        For a page that knows the network is back (the window's ``online``
        event, a user's click) before the backoff ends. Does nothing while
        joined or once closed.
        """
        if not self._closed and not self.connected:
            self._rejoin_now.set()

    def close(self, reason: str = "closed by the node") -> None:
        """Close the WebSocket and stop reconnecting (idempotent).

        The server frees our id and aliases; requests and
        :meth:`next_connection` calls that wait fail with :class:`SignalingError`.

        Args:
            reason: why, for the errors that waiting calls raise.
        """
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        self._apply(self._core.close(reason))
        if self._ws is not None:
            self._drop_session(self._ws, reason)
        self._lost.set()  # maintain() returns

    # --- internals: the core -----------------------------------------------------------------

    def _now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    def _apply(self, outputs: list[Output]) -> None:
        """Carry out the core's ``outputs`` in order."""
        for output in outputs:
            if isinstance(output, Send):
                if self._ws is not None:
                    self._outbox.extend(encode(message) for message in output.messages)
            elif isinstance(output, Settled):
                if isinstance(output.ticket.handle, asyncio.Future):
                    settle(output.ticket.handle)
            elif isinstance(output, Publish):
                self._report(output.event)
            elif isinstance(output, Deliver):
                queue = self._incoming.get(output.alias)
                if queue is None:
                    logger.info("no listener on %s: dropping %s", output.alias, output.client_alias)
                elif queue.qsize() >= MAX_QUEUED_CONNECTIONS:
                    logger.warning("dropping a connection to %s: nobody accepts", output.alias)
                else:
                    queue.put_nowait(output.client_alias)
            elif isinstance(output, AliasLost):
                queue = self._incoming.get(output.alias)
                if queue is not None:
                    queue.put_nowait(SignalingError(output.reason))
            elif isinstance(output, SessionJoined):
                if self._attempt is not None:
                    settle(self._attempt, output.id)
            elif isinstance(output, JoinRefused):
                if self._attempt is not None:
                    text = f"cannot join {self.url}: subnet {output.subnet} is full"
                    settle(self._attempt, error=JoinRejectedError(text))
            elif isinstance(output, Retry):
                self._retry_delay = output.delay
                self._lost.set()
            elif isinstance(output, Stop):
                lost = "signaling lost" if self._core.id is not None else "join failed"
                self.close(f"{lost}: {output.reason}")
            else:
                logger.log(output.level, "%s: %s", self.url, output.text)
        if self._outbox and self._flush_timer is None:
            self._flush()

    # --- internals: the WebSocket ------------------------------------------------------------

    async def _join(self) -> str:
        """One session: open a WebSocket, knock, wait for ``acknowledged``; return our id."""
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        joined: asyncio.Future[str] = loop.create_future()
        self._attempt = joined
        try:
            ws = self._runtime.websocket(self.url)
        except Exception as exc:  # a SyntaxError for a bad URL
            error = SignalingError(f"cannot open a WebSocket to {self.url!r}: {exc}")
            self._attempt = None
            self._drop_session(None, str(error))
            raise error from exc
        self._ws = ws
        self._ws_listeners = listeners = EventListeners(self._runtime)
        listeners.add(ws, "open", lambda _: settle(opened))
        listeners.add(ws, "message", lambda event: self._on_message(ws, event))
        listeners.add(ws, "close", lambda event: self._on_close(ws, event))
        try:
            async with asyncio.timeout(self._request_timeout):
                await asyncio.wait((opened, joined), return_when=asyncio.FIRST_COMPLETED)
                if not opened.done():
                    await joined  # the close listener failed it: raises
                if self._send_rate is not None:
                    rate, burst = self._send_rate
                    self._bucket = TokenBucket(rate, burst, loop.time())  # as the server's: full
                self._apply(self._core.connection_made(loop.time()))  # the knock
                return await joined
        except TimeoutError:
            reason = f"no answer from {self.url} within {self._request_timeout} s"
            self._drop_session(ws, reason)
            raise SignalingError(f"joining {self.url} timed out") from None
        except BaseException as exc:
            self._drop_session(ws, f"join failed: {exc}")
            raise
        finally:
            self._attempt = None

    def _send_to_peer(self, build: Callable[[], Message]) -> None:
        if not self.connected or self._ws is None:
            raise SignalingError(f"not connected to {self.url}: {self._last_reason}")
        try:
            message = build()
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from None
        self._apply([Send((message,))])

    def _flush(self) -> None:
        """Send from the outbox until it is empty or the bucket is; then come back later."""
        self._flush_timer = None
        ws = self._ws
        loop = self._loop or asyncio.get_running_loop()
        while self._outbox and ws is self._ws:
            if self._bucket is not None and not self._bucket.take(loop.time()):
                self._flush_timer = loop.call_later(self._bucket.wait_time(), self._flush)
                return
            text = self._outbox.popleft()
            logger.debug("sending %s", text)
            try:
                ws.send(text)
            except Exception as exc:  # InvalidStateError: closing
                self._drop_session(ws, f"sending failed: {exc}")
                return

    def _on_message(self, ws: Any, js_event: Any) -> None:
        if ws is not self._ws:
            return
        data = js_event.data
        if not isinstance(data, str):
            logger.warning("ignoring a binary signaling frame")
            return
        logger.debug("received %s", data)
        self._apply(self._core.receive_data(data, self._now()))

    def _on_close(self, ws: Any, js_event: Any) -> None:
        code, text = js_event.code, str(js_event.reason or "")
        reason = f"the WebSocket closed with code {code}" + (f" ({text})" if text else "")
        self._drop_session(ws, reason)

    def _drop_session(self, ws: Any, reason: str) -> None:
        """End the session of ``ws`` (idempotent; None: an attempt that never opened one)."""
        if ws is not self._ws:
            return
        if ws is not None:
            self._ws = None
            self._ws_listeners.clear()
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            self._outbox.clear()
            self._bucket = None
            try:
                ws.close(1000)
            except Exception:
                logger.debug("closing the WebSocket failed", exc_info=True)
        self._last_reason = reason
        if self._attempt is not None:
            settle(self._attempt, error=SignalingError(f"cannot join {self.url}: {reason}"))
        self._apply(self._core.connection_lost(reason, self._now()))

    def _report(self, event: Event) -> None:
        try:
            self._on_event(event)
        except Exception:
            logger.exception("signaling event handler failed for %r", event)
