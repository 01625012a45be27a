"""The node's signaling client: the signaling session driven over a WebSocket with trio.

A thin trio driver (docs/index.md, "The layers") around
:class:`~unisockets.protocol.session.SignalingSession`, which makes every
decision (the same core drives the browser's client): request bookkeeping
and timeouts, the undoing of late successes, what a reconnection restores
or loses, session numbers, which events the node sees, reconnection backoff.
This module moves its messages over trio-websocket, turns its outputs into
return values and exceptions, and runs the tasks.

How it runs (all tasks in the nursery of :func:`open_signaling_client`):

- One *session* per WebSocket: knock, wait for ``acknowledged``, then a
  reader task feeds every frame to the core and carries out what it says:
  settled requests wake their callers; peer events go to
  :attr:`SignalingClient.events`.
- Every message goes out through one outbox, written in order under one lock.
  Messages enter the outbox in the order the core made them, which is the
  order it expects the server to answer them in.
- The outbox is paced by a token bucket (``send_rate``), by default a little
  under the limits our server enforces per client
  (:class:`~unisockets.signaling.limits.ServerLimits`: 500 messages/s, bursts
  of 2,500). A node that opens thousands of connections at once is slowed
  down instead of being disconnected for flooding (close 1008).
- Requests (:meth:`~SignalingClient.bind`, :meth:`~SignalingClient.connect`,
  :meth:`~SignalingClient.shutdown`) wait for their answer up to
  ``request_timeout`` seconds (then :class:`TimeoutError`). They are
  cancel-safe: cancelling one cancels it in the core, and a success that
  arrives after all is undone (a ``shutdown`` of the alias it got).
- When the WebSocket breaks, waiting requests fail at once with
  :class:`~unisockets.signaling.errors.SignalingError`; the client reconnects
  with capped, jittered exponential backoff and knocks again. Back with the
  same id, it binds its aliases again and accepts again where it accepted;
  with a new id it emits :class:`~unisockets.protocol.events.IdChanged` and
  forgets its aliases (their waiting accepts fail). Requests made while
  disconnected wait for the next session (within their timeout); a
  shutdown made while disconnected sends nothing (the server forgot).

Logs go to the stdlib logger ``"unisockets.signaling.client"``: joins and
rejoins at INFO, lost connections and id changes at WARNING, every message at
DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final
from urllib.parse import urlsplit

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from unisockets.protocol import (
    MAX_MESSAGE_LENGTH,
    LocalProtocolError,
    Message,
    encode,
)
from unisockets.protocol.client_states import JoinState
from unisockets.protocol.events import Event
from unisockets.protocol.pacing import (
    DEFAULT_BACKOFF,
    DEFAULT_SEND_RATE,
    TokenBucket,
    check_send_rate,
)
from unisockets.protocol.session import (
    TRANSPORT_EVENTS,
    AliasLost,
    Deliver,
    Failure,
    FailureKind,
    Log,
    Output,
    Publish,
    Retry,
    Send,
    SessionJoined,
    Settled,
    SignalingSession,
    Stop,
    Ticket,
)

from .errors import JoinRejectedError, SignalingError

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_EVENT_BUFFER",
    "DEFAULT_SEND_RATE",
    "TRANSPORT_EVENTS",
    "SignalingClient",
    "open_signaling_client",
]

logger: Final = logging.getLogger("unisockets.signaling.client")

#: Events :attr:`SignalingClient.events` buffers before the reader waits for the consumer.
DEFAULT_EVENT_BUFFER: Final = 1024
#: Incoming connections queued per bound alias before new ones are dropped (logged).
MAX_PENDING_ACCEPTS: Final = 1024
#: Seconds a normal close of the WebSocket may take before it is cut.
CLOSE_TIMEOUT: Final = 2.0
#: Frames trio-websocket buffers before it stops reading the socket.
_MESSAGE_QUEUE_SIZE: Final = 16
_AcceptChannel = tuple[trio.MemorySendChannel[str], trio.MemoryReceiveChannel[str]]


class SignalingClient:
    """A node's connection to a signaling server, as yielded by :func:`open_signaling_client`.

    Do not construct it yourself.

    Attributes:
        events: transport-facing events, in the order they happened:
            :class:`~unisockets.protocol.events.PeerGreeted`,
            :class:`~unisockets.protocol.events.OfferReceived`,
            :class:`~unisockets.protocol.events.AnswerReceived`,
            :class:`~unisockets.protocol.events.CandidateReceived`,
            :class:`~unisockets.protocol.events.PeerLeft`,
            :class:`~unisockets.protocol.events.IdChanged`,
            :class:`~unisockets.protocol.events.Reconnected` and
            :class:`~unisockets.protocol.events.Disconnected`. A bounded
            channel (``event_buffer`` events): when it is full the reader
            waits, so nothing else from the server is read, answers
            included, until the consumer catches up, and a server with a
            bounded send queue eventually drops us as a slow consumer.
            Consume it (or close it to discard events). It ends
            (:class:`trio.EndOfChannel`) when the client closes.
    """

    def __init__(
        self,
        url: str,
        subnet: str,
        *,
        ssl_context: ssl.SSLContext | None,
        request_timeout: float,
        reconnect: bool,
        backoff: tuple[float, float],
        event_buffer: int,
        send_rate: tuple[float, int] | None = DEFAULT_SEND_RATE,
    ) -> None:
        if event_buffer < 1:
            raise ValueError(f"event_buffer must be at least 1, got {event_buffer!r}")
        self._send_rate = check_send_rate(send_rate)
        self._bucket: TokenBucket | None = None  # one per session: the server's starts full too
        try:
            self._core = SignalingSession(
                subnet, request_timeout=request_timeout, reconnect=reconnect, backoff=backoff
            )
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from None
        self._protocol = self._core.protocol
        self._url = url
        self._ssl_context = ssl_context
        self._timeout = request_timeout
        self._closed = False
        self._task_status: trio.TaskStatus[None] | None = None
        # The current WebSocket and its nursery (None between sessions).
        self._ws: WebSocketConnection | None = None
        self._session_nursery: trio.Nursery | None = None
        self._break_reason: str | None = None
        self._joined = trio.Event()  # set while joined (and once closed, to wake waiters)
        self._send_lock = trio.Lock()
        self._outbox: deque[Message] = deque()
        self._accepts: dict[str, _AcceptChannel] = {}
        self._events_send, self.events = trio.open_memory_channel[Event](event_buffer)

    # --- public API -----------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Our id (address) in the subnet, e.g. ``"10.0.0.1"``; the last one while disconnected."""
        if self._core.id is None:
            raise SignalingError("not joined yet")
        return self._core.id

    @property
    def subnet(self) -> str:
        """The subnet this client joins, e.g. ``"10.0.0"``."""
        return self._protocol.subnet

    @property
    def connected(self) -> bool:
        """Whether the client is joined right now (not closed, not between sessions)."""
        return self._core.connected

    @property
    def session(self) -> int:
        """The number of the current (or next) session: it grows by one each time one ends.

        A connection alias lives as long as the session that made it (the
        server forgets a member's aliases when its WebSocket goes); see
        :meth:`connect_in_session` and :meth:`shutdown`.
        """
        return self._core.session

    async def bind(self, alias: str) -> None:
        """Bind ``alias`` for this node (docs/protocol.md, "Bind and listen").

        ``alias`` is ``"<our id>:<port>"`` or a port of an address that is no
        other node's id, e.g. ``"127.0.0.1:1234"`` (docs/protocol.md, "Bind and listen").

        As docs/protocol.md, "Bind and listen" says. The alias is bound again
        after a reconnection with the same id.

        Raises:
            OSError: ``EADDRINUSE`` when the server rejects the bind (the
                alias is taken, or its address became another node's),
                ``EADDRNOTAVAIL`` when ``alias`` is on the id of a node we know.
            TimeoutError: no answer within ``request_timeout`` seconds.
            SignalingError: the connection broke first, or the client is closed.
        """
        await self._call(lambda now: self._core.bind(alias, now))

    async def listen(self, alias: str) -> None:
        """Start accepting connections on our bound ``alias`` (sends ``accepting``).

        Returns once ``accepting`` is written, so that a connect made after
        it finds the alias accepting (or at once if the alias already
        accepts, or while disconnected: the next session sends it). From
        then on the alias keeps accepting: ``accepting`` is sent again after
        each connection and after a reconnection, until the alias is shut
        down. Connections are taken with :meth:`accept`, which calls this
        itself the first time.

        Raises:
            OSError: ``EINVAL`` when ``alias`` is not bound by this node.
            SignalingError: the client is closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        failure, outputs = self._core.listen(alias)
        if failure is not None:
            raise _error(failure)
        if alias in self._core.accepting:
            self._accept_channel(alias)
        await self._apply(outputs)  # if the session breaks, the next one sends it
        await trio.lowlevel.checkpoint()

    async def accept(self, alias: str) -> str:
        """Wait for the next connection to our bound ``alias``.

        As docs/protocol.md, "Bind and listen" says. Calls :meth:`listen`
        first if nobody did. Connections that arrive while nobody waits are
        queued (up to :data:`MAX_PENDING_ACCEPTS`), so none is lost between
        calls. Cancel-safe. No timeout: it waits as long as it takes, across
        reconnections.

        Returns:
            The connecting side's alias, e.g. ``"10.0.0.2:0"``.

        Raises:
            OSError: ``EINVAL`` when ``alias`` is not bound by this node.
            SignalingError: the alias was lost (shut down, rebinding failed,
                the id changed) or the client is closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if alias not in self._core.accepting:
            await self.listen(alias)
        _, receive = self._accept_channel(alias)
        try:
            return await receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise SignalingError(f"{alias} is no longer bound by this node") from None

    async def connect(self, remote_alias: str) -> tuple[str, str, str]:
        """Connect to ``remote_alias``, e.g. ``"10.0.0.1:1234"`` (docs/protocol.md, "Connect").

        Returns:
            ``(local alias, remote alias, remote id)``: the connection alias
            the server gave us (ours to :meth:`shutdown` when the connection
            ends), ``remote_alias``, and the id of the node holding it (the
            alias's address, or another node's id when the alias is on an
            address that node claimed, docs/protocol.md, "Bind and listen").

        Raises:
            ConnectionRefusedError: ``ECONNREFUSED``: nobody accepts on ``remote_alias``.
            OSError: ``EINVAL`` for a malformed alias.
            TimeoutError: no answer within ``request_timeout`` seconds.
            SignalingError: the connection broke first, or the client is closed.
        """
        local_alias, remote_alias, remote_id, _ = await self.connect_in_session(remote_alias)
        return local_alias, remote_alias, remote_id

    async def connect_in_session(self, remote_alias: str) -> tuple[str, str, str, int]:
        """:meth:`connect`, also saying which session the connection alias belongs to.

        Returns:
            ``(local alias, remote alias, remote id, session)``: as
            :meth:`connect`, and the session to pass to :meth:`shutdown` when
            the connection ends, so that an alias that died with its session
            is never released in a later one (where the server may have given
            the same alias to a newer connection).

        Raises:
            ConnectionRefusedError: ``ECONNREFUSED``: nobody accepts on ``remote_alias``.
            OSError: ``EINVAL`` for a malformed alias.
            TimeoutError: no answer within ``request_timeout`` seconds.
            SignalingError: the connection broke first, or the client is closed.
        """
        ticket = await self._call(lambda now: self._core.connect(remote_alias, now))
        result = ticket.result
        assert result is not None
        return result.local_alias, result.remote_alias, result.remote_id, result.session

    async def shutdown(self, alias: str, *, session: int | None = None) -> None:
        """Release our ``alias``, bound or a connection's (docs/protocol.md, "Shutdown").

        Like closing a socket, it takes effect even when cancelled: the
        alias is not bound again after a reconnection, and waiting accepts
        on it fail once the queued connections are taken.

        Args:
            alias: the alias, ``"<our id>:<port>"``.
            session: for a connection alias, the session it was made in
                (from :meth:`connect_in_session`): once that session has
                ended, the server has forgotten the alias and nothing is
                sent, even if a newer connection holds the same alias now.
                None for a bound alias (bound again in every session).

        Raises:
            OSError: ``EINVAL`` when the server says we do not hold ``alias``,
                ``EADDRNOTAVAIL`` when it is not on our id.
            TimeoutError: no answer within ``request_timeout`` seconds.
            SignalingError: the connection broke first (the server forgets a
                node's aliases when it leaves), or the client is closed.
        """
        await self._call(lambda now: self._core.shutdown(alias, now, session=session))

    async def send_offer(self, answerer_id: str, sdp: str) -> None:
        """Send our SDP offer to node ``answerer_id`` (after a ``PeerGreeted``).

        Raises:
            ValueError: ``answerer_id`` is us or not an id, or ``sdp`` is empty or too long.
            TimeoutError: not connected within ``request_timeout`` seconds.
            SignalingError: the connection broke while sending, or the client is closed.
        """
        await self._send_to_peer(lambda: self._protocol.offer(answerer_id, sdp))

    async def send_answer(self, offerer_id: str, sdp: str) -> None:
        """Send our SDP answer to node ``offerer_id`` (after an ``OfferReceived``).

        Raises:
            ValueError, TimeoutError, SignalingError: as :meth:`send_offer`.
        """
        await self._send_to_peer(lambda: self._protocol.answer(offerer_id, sdp))

    async def send_candidate(self, remote_id: str, candidate: str) -> None:
        """Send one ICE candidate (a JSON RTCIceCandidateInit string) to node ``remote_id``.

        Raises:
            ValueError, TimeoutError, SignalingError: as :meth:`send_offer`.
        """
        await self._send_to_peer(lambda: self._protocol.candidate(remote_id, candidate))

    async def aclose(self) -> None:
        """Close the WebSocket normally and fail everything that waits; idempotent.

        :func:`open_signaling_client` calls it when its block ends.
        """
        if self._closed:
            return
        self._closed = True
        self._apply_now(self._core.close("the signaling client was closed"))
        ws = self._ws
        if ws is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await ws.aclose()
        self._end_session("the signaling client was closed")
        self._joined.set()  # wake calls waiting for a session: they see the client closed
        for alias in list(self._accepts):
            self._lose_alias(alias)
        self._events_send.close()

    # --- requests -------------------------------------------------------------------------

    async def _call(self, start: Callable[[float], tuple[Ticket, list[Output]]]) -> Ticket:
        """Make a request in the session core and wait for it to settle (cancel-safe).

        Raises:
            OSError, TimeoutError, SignalingError: as the core's :class:`Failure` says.
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # no side effect when already cancelled
        ticket, outputs = start(trio.current_time())
        ticket.handle = done = trio.Event()
        try:
            with trio.move_on_at(ticket.deadline):
                await self._apply(outputs)
                await done.wait()
            if not ticket.done:
                self._apply_now(self._core.expire(trio.current_time()))
        except BaseException:
            self._apply_now(self._core.give_up(ticket))
            raise
        if ticket.error is not None:
            raise _error(ticket.error)
        return ticket

    async def _send_to_peer(self, build: Callable[[], Message]) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            with trio.fail_after(self._timeout):
                await self._wait_joined()
                try:
                    message = build()
                except LocalProtocolError as exc:
                    raise ValueError(str(exc)) from None
                await self._send([message])
        except trio.TooSlowError:
            raise TimeoutError("not connected to the signaling server") from None

    async def _wait_joined(self) -> None:
        """Wait for a session; raise SignalingError if the client is closed."""
        while not self._closed and not self._joined.is_set():
            await self._joined.wait()
        if self._closed:
            raise SignalingError("the signaling client is closed")

    # --- writing --------------------------------------------------------------------------

    async def _send(self, messages: list[Message]) -> None:
        """Queue ``messages`` and write the outbox; a cancelled write is finished later."""
        self._outbox.extend(messages)
        try:
            await self._flush()
        except trio.Cancelled:
            self._flush_later()
            raise

    async def _flush(self) -> None:
        """Write the outbox in order under the send lock.

        Raises:
            SignalingError: the session ended before the outbox was written.
        """
        session = self._core.session
        async with self._send_lock:
            while self._outbox:
                ws = self._ws
                if ws is None or session != self._core.session:
                    raise SignalingError("the connection to the signaling server was lost")
                await self._pace()
                if session != self._core.session:
                    raise SignalingError("the connection to the signaling server was lost")
                message = self._outbox.popleft()
                text = encode(message)
                logger.debug("sending %s", text)
                try:
                    # A half-written frame would break the WebSocket: never cancel a write.
                    with trio.CancelScope(shield=True):
                        with trio.fail_after(self._timeout):
                            await ws.send_message(text)
                except (ConnectionClosed, trio.TooSlowError) as exc:
                    self._break_session(f"sending failed: {exc!r}")
                    raise SignalingError("the connection to the signaling server broke") from exc

    async def _pace(self) -> None:
        """Wait until the token bucket allows one more message (cancellable; nothing popped)."""
        if self._send_rate is None:
            return
        rate, burst = self._send_rate
        if self._bucket is None:
            self._bucket = TokenBucket(rate, burst, trio.current_time())
        # Pacing: sleeping until the next token is the point of this loop.
        while not self._bucket.take(trio.current_time()):  # noqa: ASYNC110
            await trio.sleep(self._bucket.wait_time())

    def _flush_later(self) -> None:
        if self._outbox and self._session_nursery is not None:
            self._session_nursery.start_soon(self._flush_quietly)

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(SignalingError):  # the session is ending with what it had
            await self._flush()

    # --- sessions -------------------------------------------------------------------------

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, join and read; reconnect until closed. Reports started once joined."""
        self._task_status = task_status
        error: SignalingError | None
        while not self._closed:
            try:
                async with open_websocket_url(
                    self._url,
                    self._ssl_context,
                    message_queue_size=_MESSAGE_QUEUE_SIZE,
                    max_message_size=MAX_MESSAGE_LENGTH,
                    connect_timeout=self._timeout,
                    disconnect_timeout=CLOSE_TIMEOUT,
                ) as ws:
                    reason = await self._run_session(ws)
            except JoinRejectedError as exc:
                reason, error = str(exc), exc
            except (HandshakeError, OSError, ConnectionClosed, trio.TooSlowError) as exc:
                reason = _describe(exc)
                if isinstance(exc, ConnectionTimeout) and self._task_status is not None:
                    # trio-websocket waits out the timeout when TLS fails: say why.
                    with trio.move_on_after(self._timeout):
                        reason = await _tls_failure(self._url, self._ssl_context) or reason
                error = SignalingError(f"cannot join {self._url}: {reason}")
                error.__cause__ = exc
            else:
                error = None
            verdict = await self._apply(self._end_session(reason))
            if self._task_status is not None:  # never joined: open_signaling_client fails
                assert error is not None
                raise error
            if self._closed or not isinstance(verdict, Retry):
                break
            logger.info("reconnecting to %s in %.2f s (%s)", self._url, verdict.delay, reason)
            await trio.sleep(verdict.delay)
        await self.aclose()

    async def _run_session(self, ws: WebSocketConnection) -> str:
        """Knock, wait for ``acknowledged``, then read until the WebSocket closes.

        Returns:
            Why the session ended.

        Raises:
            JoinRejectedError, ConnectionClosed, trio.TooSlowError, SignalingError:
                the session did not get to join.
        """
        failure: BaseException | None = None
        joined = False
        reason = "the signaling server closed the connection"
        async with trio.open_nursery() as nursery:
            self._ws = ws
            self._session_nursery = nursery
            self._break_reason = None
            self._bucket = None
            try:
                await self._join(ws)
                joined = True
            except (ConnectionClosed, trio.TooSlowError, SignalingError) as exc:
                failure = exc
            else:
                reason = await self._read(ws)
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if not joined:  # a write failed and broke the session
            raise SignalingError(self._break_reason or "the session ended before the join")
        return self._break_reason or reason

    async def _join(self, ws: WebSocketConnection) -> None:
        await self._apply(self._core.connection_made(trio.current_time()))  # the knock
        while self._core.joining:
            with trio.fail_at(self._core.join_deadline):
                data = await ws.get_message()
            await self._handle(data)
        if self._protocol.join_state is JoinState.REJECTED:
            raise JoinRejectedError(f"the subnet {self.subnet} of {self._url} is full")
        if self._task_status is not None:
            self._task_status.started()
            self._task_status = None

    async def _read(self, ws: WebSocketConnection) -> str:
        """Feed frames to the state machine until the WebSocket closes; return why."""
        while True:
            try:
                await self._receive(ws)
            except ConnectionClosed as exc:
                return _describe(exc)

    async def _receive(self, ws: WebSocketConnection) -> None:
        await self._handle(await ws.get_message())

    async def _handle(self, data: str | bytes) -> None:
        logger.debug("received %s", data)
        await self._apply(self._core.receive_data(data, trio.current_time()))

    def _break_session(self, reason: str) -> None:
        """End the current session from inside (a write failed)."""
        if self._session_nursery is not None:
            self._break_reason = self._break_reason or reason
            self._session_nursery.cancel_scope.cancel()

    def _end_session(self, reason: str) -> list[Output]:
        """Forget the connection; returns what the core says (failed requests, what next)."""
        self._ws = None
        self._session_nursery = None
        self._outbox.clear()
        if self._joined.is_set() and not self._closed:
            self._joined = trio.Event()
        return self._core.connection_lost(reason, trio.current_time())

    # --- applying the core's outputs ------------------------------------------------------

    async def _apply(self, outputs: list[Output]) -> Retry | Stop | None:
        """Carry out ``outputs``: queue, wake, then write and publish; returns the verdict.

        Every message enters the outbox before anything waits, so messages go
        out in the order the core made them (the order it expects answers in).
        """
        verdict: Retry | Stop | None = None
        events: list[Event] = []
        for output in outputs:
            if isinstance(output, Send):
                self._outbox.extend(output.messages)
            elif isinstance(output, Publish):
                events.append(output.event)
            elif isinstance(output, Retry | Stop):
                verdict = output
            else:
                self._apply_one(output)
        if self._outbox:
            await self._send_quietly([])
        for event in events:
            await self._publish(event)
        return verdict

    def _apply_now(self, outputs: list[Output]) -> None:
        """:meth:`_apply` without waiting: messages are sent by a task, events dropped if full."""
        for output in outputs:
            if isinstance(output, Send):
                self._outbox.extend(output.messages)
                self._flush_later()
            elif isinstance(output, Publish):
                with contextlib.suppress(
                    trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
                ):
                    self._events_send.send_nowait(output.event)
            elif not isinstance(output, Retry | Stop):
                self._apply_one(output)

    def _apply_one(self, output: Output) -> None:
        if isinstance(output, Settled):
            if isinstance(output.ticket.handle, trio.Event):
                output.ticket.handle.set()
        elif isinstance(output, Deliver):
            send, _ = self._accept_channel(output.alias)
            try:
                send.send_nowait(output.client_alias)
            except trio.WouldBlock:
                logger.warning(
                    "%s has %d connections waiting: dropping %s",
                    output.alias,
                    MAX_PENDING_ACCEPTS,
                    output.client_alias,
                )
        elif isinstance(output, AliasLost):
            self._lose_alias(output.alias)
        elif isinstance(output, SessionJoined):
            self._joined.set()
        elif isinstance(output, Log):
            logger.log(output.level, "%s: %s", self._url, output.text)

    async def _publish(self, event: Event) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._events_send.send(event)  # (unless nobody listens any more)

    async def _send_quietly(self, messages: list[Message]) -> None:
        with contextlib.suppress(SignalingError):  # the session is ending: the server forgets
            await self._send(messages)

    def _accept_channel(self, alias: str) -> _AcceptChannel:
        channel = self._accepts.get(alias)
        if channel is None:
            channel = self._accepts[alias] = trio.open_memory_channel[str](MAX_PENDING_ACCEPTS)
        return channel

    def _lose_alias(self, alias: str) -> None:
        """Waiting accepts on ``alias`` fail once the queued connections are taken."""
        channel = self._accepts.pop(alias, None)
        if channel is not None:
            channel[0].close()


def _error(failure: Failure) -> Exception:
    """The exception a caller gets for the core's ``failure`` (see the module docstring)."""
    if failure.kind is FailureKind.OS:
        return OSError(failure.errno, failure.text)
    if failure.kind is FailureKind.TIMEOUT:
        return TimeoutError(failure.text)
    return SignalingError(failure.text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        if exc.reason is None:
            return "connection closed"
        code, name, text = exc.reason.code, exc.reason.name, exc.reason.reason
        return f"closed with code {code} ({name})" + (f": {text}" if text else "")
    if isinstance(exc, trio.TooSlowError):
        return "no acknowledgement in time"
    if isinstance(exc, ConnectionTimeout):
        return "no WebSocket handshake in time"
    if isinstance(exc, ConnectionRejected):
        return f"the server answered HTTP {exc.status_code}, not a WebSocket upgrade"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, HandshakeError) and isinstance(cause, OSError):
        return str(cause)  # e.g. "all attempts to connect to 127.0.0.1:6999 failed"
    return f"{exc!r}" if cause is None else f"{exc!r} ({cause!r})"


async def _tls_failure(url: str, ssl_context: ssl.SSLContext | None) -> str | None:
    """Why a TLS handshake with a ``wss://`` URL's server fails, or ``None``.

    trio-websocket turns a failed TLS handshake into a wait for its connect
    timeout (``ConnectionTimeout``, the ``SSLError`` dropped), so after such a
    timeout the client tries the handshake alone to report the real cause,
    e.g. a plain ``ws://`` server or a certificate that does not verify.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "wss" or not parts.hostname:
        return None
    host, port = parts.hostname, parts.port or 443
    context = ssl_context or ssl.create_default_context()
    try:
        stream = await trio.open_ssl_over_tcp_stream(
            host, port, ssl_context=context, https_compatible=True
        )
    except OSError:
        return None
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        plain = isinstance(cause, ssl.SSLError) and cause.reason == "WRONG_VERSION_NUMBER"
        hint = " (the server does not speak TLS: a ws:// server?)" if plain else ""
        return f"TLS handshake with {host}:{port} failed: {cause or exc}{hint}"
    finally:
        await trio.aclose_forcefully(stream)
    return None


@asynccontextmanager
async def open_signaling_client(
    url: str,
    subnet: str = "10.0.0",
    *,
    ssl_context: ssl.SSLContext | None = None,
    request_timeout: float = 10.0,
    reconnect: bool = True,
    backoff: tuple[float, float] = DEFAULT_BACKOFF,
    event_buffer: int = DEFAULT_EVENT_BUFFER,
    send_rate: tuple[float, int] | None = DEFAULT_SEND_RATE,
) -> AsyncIterator[SignalingClient]:
    """Join a signaling server for the body of an ``async with``.

    Connects to ``url``, knocks and waits for ``acknowledged``; the client it
    yields runs its tasks in a nursery of its own. Leaving the block closes
    the WebSocket normally and ends every task. An exception from the body
    propagates as it is (not wrapped in an exception group).

    Args:
        url: the server's ``ws://`` or ``wss://`` URL.
        subnet: the subnet to join, three octets such as ``"10.0.0"``.
        ssl_context: the client TLS context for ``wss://`` (``None``: the default one).
        request_timeout: seconds a request (or the join) waits for its answer.
        reconnect: reconnect when the WebSocket breaks; if false, the client
            closes instead (its requests then raise SignalingError).
        backoff: ``(base, cap)`` in seconds: reconnection attempt ``n`` waits
            between half and all of ``min(cap, base * 2**n)``.
        event_buffer: how many events :attr:`SignalingClient.events` buffers.
        send_rate: ``(messages per second, burst)`` the client keeps to, so
            that a server's per-client rate limit never disconnects it; the
            default is :data:`DEFAULT_SEND_RATE` (90 % of our server's
            defaults). ``None`` sends as fast as the WebSocket takes.

    Yields:
        The joined :class:`SignalingClient`.

    Raises:
        SignalingError: the server is unreachable, did not acknowledge within
            ``request_timeout``, or rejected us (:class:`JoinRejectedError`).
        ValueError: a bad subnet, timeout, backoff, buffer size or send rate.
    """
    client = SignalingClient(
        url,
        subnet,
        ssl_context=ssl_context,
        request_timeout=request_timeout,
        reconnect=reconnect,
        backoff=backoff,
        event_buffer=event_buffer,
        send_rate=send_rate,
    )
    failure: SignalingError | None = None
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(client._run)
        except SignalingError as exc:
            failure = exc
        else:
            try:
                yield client
            except BaseException as exc:  # re-raised below, outside the nursery
                body_error = exc
            finally:
                await client.aclose()
                nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if body_error is not None:
        raise body_error
