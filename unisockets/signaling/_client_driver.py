"""The machinery under :class:`~unisockets.signaling.client.SignalingClient` (private).

What the module docstring of :mod:`unisockets.signaling.client` describes,
as trio code: one WebSocket session at a time (knock, join, read, end,
reconnect after the core's backoff), requests that wait for the core to
settle them, the one paced outbox every message goes through in order, and
the carrying out of the session core's outputs. The public methods are
:class:`~unisockets.signaling.client.SignalingClient`'s.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

import trio
from trio_websocket import (
    ConnectionClosed,
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
from unisockets.protocol.consent import EXPIRE, SEND_CHECK, ConsentFreshness, ConsentPolicy
from unisockets.protocol.events import Event
from unisockets.protocol.pacing import DEFAULT_SEND_RATE, TokenBucket, check_send_rate
from unisockets.protocol.session import (
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

from ._client_websocket import describe, tls_failure
from .errors import JoinRejectedError, SignalingError

logger: Final = logging.getLogger("unisockets.signaling.client")

#: Incoming connections queued per bound alias before new ones are dropped (logged).
MAX_PENDING_ACCEPTS: Final = 1024
#: Seconds a normal close of the WebSocket may take before it is cut.
CLOSE_TIMEOUT: Final = 2.0
#: Frames trio-websocket buffers before it stops reading the socket.
_MESSAGE_QUEUE_SIZE: Final = 16
_AcceptChannel = tuple[trio.MemorySendChannel[str], trio.MemoryReceiveChannel[str]]


#: The client's WebSocket keepalive by default: a ping every 12-18 s (under the
#: 20 s after which some NATs drop an idle TCP connection), dead after 45 s
#: without an answer and 3 unanswered pings.
DEFAULT_KEEPALIVE: Final = ConsentPolicy(interval=15.0, jitter=0.2, lifetime=45.0)


class ClientDriver:
    """The state and the tasks of a signaling client; its API is the subclass's.

    See :class:`~unisockets.signaling.client.SignalingClient` for the
    arguments (given by :func:`~unisockets.signaling.client.open_signaling_client`).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        subnet: str,
        *,
        ssl_context: ssl.SSLContext | None,
        request_timeout: float,
        reconnect: bool,
        backoff: tuple[float, float],
        event_buffer: int,
        send_rate: tuple[float, int] | None = DEFAULT_SEND_RATE,
        keepalive: ConsentPolicy | None = None,
        lazy_links: bool = False,
    ) -> None:
        if event_buffer < 1:
            raise ValueError(f"event_buffer must be at least 1, got {event_buffer!r}")
        self._send_rate = check_send_rate(send_rate)
        self._bucket: TokenBucket | None = None  # one per session: the server's starts full too
        try:
            self._core = SignalingSession(
                subnet,
                request_timeout=request_timeout,
                reconnect=reconnect,
                backoff=backoff,
                lazy_links=lazy_links,
            )
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from None
        self._protocol = self._core.protocol
        #: every URL to try, in turn (instances of one network); the current one first.
        self._urls = [url] if isinstance(url, str) else list(url)
        if not self._urls:
            raise ValueError("at least one signaling URL is needed")
        self._url = self._urls[0]
        self._ssl_context = ssl_context
        self._timeout = request_timeout
        self._closed = False
        self._keepalive = keepalive
        self._liveness: ConsentFreshness | None = None  # the current session's pings
        self._liveness_changed = trio.Event()
        self._rejoin_now = trio.Event()  # set by rejoin(): cut the backoff short
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

    async def _close(self) -> None:
        """Close the WebSocket normally and fail everything that waits; idempotent."""
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
            raise request_error(ticket.error)
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
            self._break_reason = None
            try:
                # The whole opening handshake is bounded: trio-websocket's
                # connect_timeout leaves its reader task waiting on a server that
                # accepts TCP and never answers the upgrade, and the attempt hangs.
                # (Twice the timeout: its own ConnectionTimeout comes first where it works.)
                opening_deadline = trio.current_time() + 2 * self._timeout
                with trio.CancelScope(deadline=opening_deadline) as opening:
                    async with open_websocket_url(
                        self._url,
                        self._ssl_context,
                        message_queue_size=_MESSAGE_QUEUE_SIZE,
                        max_message_size=MAX_MESSAGE_LENGTH,
                        connect_timeout=self._timeout,
                        disconnect_timeout=CLOSE_TIMEOUT,
                    ) as ws:
                        opening.deadline = math.inf  # open: the session bounds its own waits
                        reason = await self._run_session(ws)
                if opening.cancelled_caught:
                    raise trio.TooSlowError(
                        f"no WebSocket handshake from {self._url} within {2 * self._timeout:g} s"
                    )
            except JoinRejectedError as exc:
                reason, error = str(exc), exc
            except (HandshakeError, OSError, ConnectionClosed, trio.TooSlowError) as exc:
                # We ended the session on purpose (keepalive, a failed write):
                # that is the reason, not how closing the dead WebSocket went.
                reason = self._break_reason or describe(exc)
                if isinstance(exc, ConnectionTimeout) and self._task_status is not None:
                    # trio-websocket waits out the timeout when TLS fails: say why.
                    with trio.move_on_after(self._timeout):
                        reason = await tls_failure(self._url, self._ssl_context) or reason
                error = SignalingError(f"cannot join {self._url}: {reason}")
                error.__cause__ = exc
            else:
                error = None
            if error is not None and len(self._urls) > 1:
                # another instance of the same network may serve us: the next URL, in turn
                tried = self._urls.index(self._url) + 1
                self._url = self._urls[tried % len(self._urls)]
                never_opened = self._ws is None  # else the session must end first
                if self._task_status is not None and tried < len(self._urls) and never_opened:
                    logger.info("cannot join (%s): trying %s", reason, self._url)
                    continue  # the first join tries each URL once before it fails
            verdict = await self._apply(self._end_session(reason))
            if self._task_status is not None:  # never joined: open_signaling_client fails
                assert error is not None
                raise error
            if self._closed or not isinstance(verdict, Retry):
                break
            logger.info("reconnecting to %s in %.2f s (%s)", self._url, verdict.delay, reason)
            with trio.move_on_after(verdict.delay):  # or sooner: rejoin()
                await self._rejoin_now.wait()
            self._rejoin_now = trio.Event()
        await self._close()

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
                if self._keepalive is not None:
                    nursery.start_soon(self._keep_alive, ws, self._keepalive)
                reason = await self._read(ws)
            nursery.cancel_scope.cancel()
        self._liveness = None
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
            raise JoinRejectedError(f"the subnet {self._protocol.subnet} of {self._url} is full")
        if self._task_status is not None:
            self._task_status.started()
            self._task_status = None

    async def _read(self, ws: WebSocketConnection) -> str:
        """Feed frames to the state machine until the WebSocket closes; return why."""
        while True:
            try:
                await self._receive(ws)
            except ConnectionClosed as exc:
                return describe(exc)

    async def _receive(self, ws: WebSocketConnection) -> None:
        await self._handle(await ws.get_message())

    async def _keep_alive(self, ws: WebSocketConnection, policy: ConsentPolicy) -> None:
        """Ping the server as ``policy`` says; end the session when it stops answering.

        Any frame from the server counts as an answer too. The decisions
        (when to ping, when the connection is dead) are
        :class:`~unisockets.protocol.consent.ConsentFreshness`'s.
        """
        liveness = self._liveness = ConsentFreshness(trio.current_time(), policy, random.Random())
        async with trio.open_nursery() as pings:
            while True:
                action = liveness.poll(trio.current_time())
                if action is SEND_CHECK:
                    pings.start_soon(self._ping, ws, liveness, policy)
                    continue
                if action is EXPIRE:
                    silent = trio.current_time() - liveness.last_answer
                    self._break_session(
                        f"no answer from the signaling server for {silent:.0f} s "
                        f"({liveness.unanswered} pings): the connection is dead"
                    )
                    return
                self._liveness_changed = trio.Event()
                with trio.move_on_at(liveness.deadline()):
                    await self._liveness_changed.wait()

    async def _ping(
        self, ws: WebSocketConnection, liveness: ConsentFreshness, policy: ConsentPolicy
    ) -> None:
        """One ping: its pong (within one stretched interval) answers it."""
        with trio.move_on_after(policy.interval * (1 + policy.jitter)) as waiting:
            try:
                await ws.ping()
            except ConnectionClosed:
                return  # the session is ending anyway
        if waiting.cancelled_caught:
            liveness.check_unanswered(trio.current_time())
        else:
            liveness.check_answered(trio.current_time())
        self._liveness_changed.set()

    async def _handle(self, data: str | bytes) -> None:
        logger.debug("received %s", data)
        if self._liveness is not None:  # any frame shows the connection is alive
            self._liveness.check_answered(trio.current_time())
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


def request_error(failure: Failure) -> Exception:
    """The exception a caller gets for the core's ``failure`` (see the module docstring)."""
    if failure.kind is FailureKind.OS:
        return OSError(failure.errno, failure.text)
    if failure.kind is FailureKind.TIMEOUT:
        return TimeoutError(failure.text)
    return SignalingError(failure.text)
