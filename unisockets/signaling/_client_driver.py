"""The machinery under :class:`~unisockets.signaling.client.SignalingClient` (private).

What the module docstring of :mod:`unisockets.signaling.client` describes,
as trio code: one WebSocket session at a time (knock, join, read, end,
reconnect after the core's backoff), requests that wait for the core to
settle them, and the carrying out of the session core's outputs. Its parts:
the WebSocket (``_client_connection``), the paced outbox every message goes
through in order (``_client_outbox``), the keepalive (``_client_keepalive``),
what callers wait on (``_client_requests``). The public methods are
:class:`~unisockets.signaling.client.SignalingClient`'s.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Final

import trio

from unisockets.protocol import (
    MAX_MESSAGE_LENGTH,
    LocalProtocolError,
    Message,
)
from unisockets.protocol.client_states import JoinState
from unisockets.protocol.consent import ConsentPolicy
from unisockets.protocol.events import Event
from unisockets.protocol.pacing import DEFAULT_SEND_RATE, check_send_rate
from unisockets.protocol.session import (
    AliasLost,
    Deliver,
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

from ._client_connection import (
    ClientWebSocket,
    ConnectionClosed,
    HandshakeError,
    open_client_websocket,
)
from ._client_keepalive import Keepalive
from ._client_outbox import Outbox
from ._client_requests import AcceptQueues, Waiters, request_error
from ._client_websocket import describe
from .errors import JoinRejectedError, SignalingError

logger: Final = logging.getLogger("unisockets.signaling.client")

#: Seconds a normal close of the WebSocket may take before it is cut.
CLOSE_TIMEOUT: Final = 2.0


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
        send_rate = check_send_rate(send_rate)
        try:
            self._core = SignalingSession(
                subnet,
                request_timeout=request_timeout,
                reconnect=reconnect,
                backoff=backoff,
                lazy_links=lazy_links,
                deadline_from_write=True,
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
        self._liveness: Keepalive | None = None  # the current session's pings
        self._rejoin_now = trio.Event()  # set by rejoin(): cut the backoff short
        self._task_status: trio.TaskStatus[None] | None = None
        # The current WebSocket and its nursery (None between sessions).
        self._ws: ClientWebSocket | None = None
        self._session_nursery: trio.Nursery | None = None
        self._break_reason: str | None = None
        self._joined = trio.Event()  # set while joined (and once closed, to wake waiters)
        self._outbox = Outbox(send_rate, request_timeout, self._written, self._break_session)
        self._accepts = AcceptQueues()
        self._waiters = Waiters()  # the requests callers wait for
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
        self._accepts.lose_all()
        self._events_send.close()

    # --- requests -------------------------------------------------------------------------

    async def _call(self, start: Callable[[float], tuple[Ticket, list[Output]]]) -> Ticket:
        """Make a request in the session core and wait for it to settle (cancel-safe).

        Raises:
            OSError, TimeoutError, SignalingError: as the core's :class:`Failure` says.
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # no side effect when already cancelled
        ticket, outputs = start(trio.current_time())
        try:
            with self._waiters.waiting(ticket) as waiter, waiter.scope:
                await self._apply(outputs)  # (the scope's deadline follows the ticket's)
                await waiter.done.wait()
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
                await self._outbox.send([(message, None)])
        except trio.TooSlowError:
            raise TimeoutError("not connected to the signaling server") from None

    async def _wait_joined(self) -> None:
        """Wait for a session; raise SignalingError if the client is closed."""
        while not self._closed and not self._joined.is_set():
            await self._joined.wait()
        if self._closed:
            raise SignalingError("the signaling client is closed")

    def _written(self, ticket: Ticket, now: float) -> None:
        """``ticket``'s request is written: its answer is due from now (the core says when)."""
        self._core.written(ticket, now)
        self._waiters.retime(ticket)

    # --- sessions -------------------------------------------------------------------------

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, join and read; reconnect until closed. Reports started once joined."""
        self._task_status = task_status
        error: SignalingError | None
        while not self._closed:
            self._break_reason = None
            try:
                async with open_client_websocket(
                    self._url,
                    self._ssl_context,
                    connect_timeout=self._timeout,
                    close_timeout=CLOSE_TIMEOUT,
                    max_message_size=MAX_MESSAGE_LENGTH,
                ) as ws:
                    reason = await self._run_session(ws)
            except JoinRejectedError as exc:
                reason, error = str(exc), exc
            except (HandshakeError, OSError, ConnectionClosed, trio.TooSlowError) as exc:
                # We ended the session on purpose (keepalive, a failed write):
                # that is the reason, not how closing the dead WebSocket went.
                reason = self._break_reason or describe(exc)
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

    async def _run_session(self, ws: ClientWebSocket) -> str:
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
            self._outbox.start_session(ws, nursery)
            self._break_reason = None
            try:
                await self._join(ws)
                joined = True
            except (ConnectionClosed, trio.TooSlowError, SignalingError) as exc:
                failure = exc
            else:
                if self._keepalive is not None:
                    self._liveness = Keepalive(ws, self._keepalive, self._break_session)
                    nursery.start_soon(self._liveness.run)
                reason = await self._read(ws)
            nursery.cancel_scope.cancel()
        self._liveness = None
        if failure is not None:
            raise failure
        if not joined:  # a write failed and broke the session
            raise SignalingError(self._break_reason or "the session ended before the join")
        return self._break_reason or reason

    async def _join(self, ws: ClientWebSocket) -> None:
        await self._apply(self._core.connection_made(trio.current_time()))  # the knock
        while self._core.joining:
            with trio.fail_at(self._core.join_deadline):
                batch = await ws.receive()
            await self._handle(batch)
        if self._protocol.join_state is JoinState.REJECTED:
            raise JoinRejectedError(f"the subnet {self._protocol.subnet} of {self._url} is full")
        if self._task_status is not None:
            self._task_status.started()
            self._task_status = None

    async def _read(self, ws: ClientWebSocket) -> str:
        """Feed frames to the state machine until the WebSocket closes; return why.

        Every message of one read is handled in one step (one write of the
        replies, one scheduler round), however many came.
        """
        while True:
            try:
                batch = await ws.receive()
            except ConnectionClosed as exc:
                return describe(exc)
            await self._handle(batch)

    async def _handle(self, batch: list[str | bytes]) -> None:
        """Feed ``batch`` to the core, then carry out all it says at once."""
        now = trio.current_time()
        if self._liveness is not None:  # any frame shows the connection is alive
            self._liveness.heard(now)
        outputs: list[Output] = []
        for data in batch:
            logger.debug("received %s", data)
            outputs += self._core.receive_data(data, now)
        await self._apply(outputs, write=False)

    def _break_session(self, reason: str) -> None:
        """End the current session from inside (a write failed)."""
        if self._session_nursery is not None:
            self._break_reason = self._break_reason or reason
            self._session_nursery.cancel_scope.cancel()

    def _end_session(self, reason: str) -> list[Output]:
        """Forget the connection; returns what the core says (failed requests, what next)."""
        self._ws = None
        self._session_nursery = None
        self._outbox.end_session()
        if self._joined.is_set() and not self._closed:
            self._joined = trio.Event()
        outputs = self._core.connection_lost(reason, trio.current_time())
        self._waiters.retime()  # requests carried over to the next session: new deadlines
        return outputs

    # --- applying the core's outputs ------------------------------------------------------

    async def _apply(self, outputs: list[Output], *, write: bool = True) -> Retry | Stop | None:
        """Carry out ``outputs``: queue, wake, then write and publish; returns the verdict.

        Every message enters the outbox before anything waits, so messages go
        out in the order the core made them (the order it expects answers in).
        ``write=False`` (the reader) leaves the writing to a task instead of
        waiting for it: a reader that waited for a paced outbox would stop
        reading the answers to what it wrote.
        """
        verdict: Retry | Stop | None = None
        events: list[Event] = []
        for output in outputs:
            if isinstance(output, Send):
                self._outbox.queue(output)
            elif isinstance(output, Publish):
                events.append(output.event)
            elif isinstance(output, Retry | Stop):
                verdict = output
            else:
                self._apply_one(output)
        if not write:
            self._outbox.flush_later()
        elif self._outbox:
            await self._outbox.send_quietly()
        for event in events:
            await self._publish(event)
        return verdict

    def _apply_now(self, outputs: list[Output]) -> None:
        """:meth:`_apply` without waiting: messages are sent by a task, events dropped if full."""
        for output in outputs:
            if isinstance(output, Send):
                self._outbox.queue(output)
                self._outbox.flush_later()
            elif isinstance(output, Publish):
                with contextlib.suppress(
                    trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
                ):
                    self._events_send.send_nowait(output.event)
            elif not isinstance(output, Retry | Stop):
                self._apply_one(output)

    def _apply_one(self, output: Output) -> None:
        if isinstance(output, Settled):
            self._waiters.settled(output.ticket)
        elif isinstance(output, Deliver):
            self._accepts.deliver(output.alias, output.client_alias)
        elif isinstance(output, AliasLost):
            self._accepts.lose(output.alias)
        elif isinstance(output, SessionJoined):
            self._joined.set()
        elif isinstance(output, Log):
            logger.log(output.level, "%s: %s", self._url, output.text)

    async def _publish(self, event: Event) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._events_send.send(event)  # (unless nobody listens any more)
