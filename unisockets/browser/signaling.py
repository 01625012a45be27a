"""The signaling client in the browser: the sans-IO protocol over the page's ``WebSocket``.

:class:`BrowserSignaling` feeds every text frame of the browser's WebSocket to
:class:`~unisockets.protocol.client.SignalingClientProtocol` and acts on the
events it returns (docs/protocol.md, "Flows"), with the native client's
behaviour (:mod:`unisockets.signaling.client`):

- answers to our requests resolve the futures that :meth:`bind`,
  :meth:`connect` and :meth:`shutdown` wait on (a cancelled or timed-out
  request is cancelled in the protocol, and a late success is undone);
- ``accept`` (:class:`~unisockets.protocol.events.IncomingConnection`) goes to
  the queue of that bound alias, read by :meth:`next_connection`, and the
  alias accepts again at once (``accepting``);
- every other event (peers greeted, offers, answers, candidates, leaves, and
  :class:`~unisockets.protocol.events.Disconnected`,
  :class:`~unisockets.protocol.events.IdChanged`,
  :class:`~unisockets.protocol.events.Reconnected`) goes to the ``on_event``
  callback: the node hands them to its peer links and to the user.

There is no reader task: the WebSocket's ``message`` listener does the work,
synchronously. Every message goes out through one outbox in the order the
protocol made it, paced by a token bucket (``send_rate``, by default
:data:`~unisockets.browser.pacing.DEFAULT_SEND_RATE`, 90 % of our server's
per-client limits) so that a burst is slowed down instead of being
disconnected for flooding (close 1008). ``WebSocket.send`` never blocks; a
timer sends what the bucket held back.

Reconnection (run by :meth:`maintain` in the node's task group): when the
WebSocket closes, requests in flight fail with :class:`SignalingError`, and
the client reconnects with capped, jittered exponential backoff
(:func:`~unisockets.browser.pacing.backoff_delay`) and knocks again. Back
with the same id, it binds its aliases again and accepts again where it
accepted; with a new id, the protocol reports
:class:`~unisockets.protocol.events.IdChanged` and the aliases are lost
(their :meth:`next_connection` fails). Requests made while disconnected wait
for the next session within their timeout. :meth:`close` stops all of it.

A frame the protocol rejects
(:class:`~unisockets.protocol.errors.RemoteProtocolError`) is logged and
ignored, as the native client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ..protocol.client import SignalingClientProtocol
from ..protocol.errors import LocalProtocolError, RemoteProtocolError
from ..protocol.events import (
    AliasRemoved,
    BindRejected,
    BindSucceeded,
    CancelledRequestSucceeded,
    ConnectRefused,
    ConnectSucceeded,
    Disconnected,
    Event,
    IdChanged,
    IncomingConnection,
    Joined,
    JoinRejected,
    Request,
    RequestFailed,
    ShutdownRejected,
    ShutdownSucceeded,
)
from ..protocol.messages import Message
from ..protocol.pacing import (
    DEFAULT_BACKOFF,
    DEFAULT_SEND_RATE,
    TokenBucket,
    backoff_delay,
    check_backoff,
    check_send_rate,
)
from ..protocol.wire import encode
from ._js import Listeners, js_global, logger, settle
from .errors import SignalingError, oserror

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "MAX_QUEUED_CONNECTIONS", "BrowserSignaling"]

#: Seconds a bind, connect or shutdown (or the join) may wait for the server's answer.
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
#: ``accept`` announcements kept per bound alias while nobody reads them.
MAX_QUEUED_CONNECTIONS: Final = 1024

_ANSWERS: Final = (
    BindSucceeded,
    BindRejected,
    ConnectSucceeded,
    ConnectRefused,
    ShutdownSucceeded,
    ShutdownRejected,
    RequestFailed,
)

#: What an alias's queue holds: a client alias, or why no more will come.
_Incoming = asyncio.Queue[str | SignalingError]


class BrowserSignaling:
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
    ) -> None:
        if not (isinstance(request_timeout, int | float) and request_timeout > 0):
            raise ValueError(f"request_timeout must be positive, got {request_timeout!r}")
        self.url = url
        self.protocol = SignalingClientProtocol(subnet=subnet)
        self.close_reason: str | None = None
        self._on_event = on_event
        self._request_timeout = float(request_timeout)
        self._reconnect = reconnect
        self._backoff = check_backoff(backoff)
        self._send_rate = check_send_rate(send_rate)
        self._loop: asyncio.AbstractEventLoop | None = None
        # The current WebSocket (None between sessions) and its listeners.
        self._ws: Any = None
        self._ws_listeners = Listeners()
        self._session = 0  # sessions (WebSockets) that ended so far
        self._last_id: str | None = None
        self._last_reason = "not open"
        self._attempt: asyncio.Future[str] | None = None  # the join in progress
        self._joined = asyncio.Event()  # set while joined, and once closed (to wake waiters)
        self._lost = asyncio.Event()  # set while a session is needed (for maintain())
        self._closed = False
        self._requests: dict[Request, asyncio.Future[Event]] = {}
        # What the node holds, to bind again after a reconnection with the same id.
        self._bound: set[str] = set()
        self._accepting: set[str] = set()
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
        if self._last_id is None:
            raise SignalingError(f"not joined to {self.url}: {self._last_reason}")
        return self._last_id

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open and we are joined (not between sessions)."""
        return self.protocol.id is not None and not self._closed

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
        return self._session

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

        Waits :func:`~unisockets.browser.pacing.backoff_delay` before each
        attempt; back with the same id, binds the aliases again and accepts
        again where it accepted. Without ``reconnect`` it closes the client
        at the first loss instead.
        """
        failures = 0
        while not self._closed:
            await self._lost.wait()
            if self._closed:
                return
            if not self._reconnect:
                self.close(f"signaling lost: {self._last_reason}")
                return
            delay = backoff_delay(failures, self._backoff)
            failures += 1
            logger.info("reconnecting to %s in %.2f s (%s)", self.url, delay, self._last_reason)
            await asyncio.sleep(delay)
            if self._closed:
                return
            try:
                await self._join()
            except SignalingError as exc:
                logger.info("reconnecting to %s failed: %s", self.url, exc)
                self._lost.set()
                continue
            failures = 0
            await self._restore()

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
        if self._ws is not None:
            self._drop_session(self._ws, reason)
        for alias in sorted(self._bound | set(self._incoming)):
            self._lose_alias(alias, f"signaling to {self.url} was closed: {reason}")
        self._joined.set()  # waiters for a session see the client closed
        self._lost.set()  # maintain() returns

    # --- requests ----------------------------------------------------------------------------

    async def bind(self, alias: str) -> None:
        """Bind our ``alias`` (``"<our id>:<port>"``); it is bound again after a reconnection.

        Raises:
            OSError: ``EADDRINUSE`` when taken, ``EADDRNOTAVAIL`` when
                ``alias`` is not on our (current) id, ``ETIMEDOUT`` without an
                answer within the request timeout (also while disconnected).
            SignalingError: the session ended while waiting, or the client is closed.
        """
        event = await self._request(
            functools.partial(self.protocol.bind, alias), errno.EADDRNOTAVAIL
        )
        if isinstance(event, BindRejected):
            raise oserror(errno.EADDRINUSE, alias)
        self._bound.add(alias)

    async def shutdown(self, alias: str) -> None:
        """Release our ``alias`` (a bound one, or a connection alias).

        It is not bound again after a reconnection. While disconnected it
        returns at once: the server forgot our aliases with the session.

        Raises:
            OSError: ``EPERM`` when the server says it is not ours,
                ``EADDRNOTAVAIL`` when it is not on our id, ``ETIMEDOUT``
                without an answer.
            SignalingError: the session ended while waiting, or the client is closed.
        """
        self._lose_alias(alias, f"{alias} was shut down")
        if not self.connected:
            self._check_open()
            await asyncio.sleep(0)
            return
        event = await self._request(
            functools.partial(self.protocol.shutdown, alias), errno.EADDRNOTAVAIL
        )
        if isinstance(event, ShutdownRejected):
            raise oserror(errno.EPERM, f"{alias} is not ours")

    async def connect(self, remote_alias: str) -> tuple[str, str, str]:
        """Ask the server to connect us to ``remote_alias``.

        Returns:
            ``(our connection alias, remote alias, its holder's id)``; the
            connection alias belongs to the current :attr:`session`. The
            holder is the node to open the data channel to: the remote
            alias's address, or another node's id for an alias on an address
            it claimed (docs/protocol.md, "Bind and listen").

        Raises:
            OSError: ``ECONNREFUSED`` when nobody accepts there, ``EINVAL`` for
                a bad alias, ``ETIMEDOUT`` without an answer.
            SignalingError: the session ended while waiting, or the client is closed.
        """
        event = await self._request(
            functools.partial(self.protocol.connect, remote_alias), errno.EINVAL
        )
        if isinstance(event, ConnectRefused):
            raise oserror(errno.ECONNREFUSED, remote_alias)
        assert isinstance(event, ConnectSucceeded)
        return event.local_alias, event.remote_alias, event.remote_id

    def listen(self, alias: str) -> None:
        """Accept connections on our bound ``alias`` from now on (sends ``accepting``).

        The alias accepts again after each connection and after a
        reconnection with the same id, until it is shut down or lost. Take
        the connections with :meth:`next_connection`. While disconnected,
        the next session sends ``accepting``.

        Raises:
            OSError: ``EINVAL`` when ``alias`` is not bound by us.
            SignalingError: the client is closed.
        """
        self._check_open()
        if alias not in self._bound:
            raise oserror(errno.EINVAL, f"{alias} is not bound by this node")
        if alias in self._accepting:
            return
        self._incoming[alias] = asyncio.Queue()  # a lost alias's queue only holds its error
        self._accepting.add(alias)
        if self.connected:
            with contextlib.suppress(LocalProtocolError):  # being bound again: that accepts too
                self._send(self.protocol.accept(alias))

    async def next_connection(self, alias: str) -> str:
        """Wait for the next connection to our ``alias`` (across reconnections).

        Returns:
            The client's connection alias.

        Raises:
            SignalingError: the alias was lost (shut down, taken while we were
                away, our id changed) or the client is closed; the message says which.
        """
        queue = self._incoming.get(alias)
        if queue is None:
            raise SignalingError(f"{alias} is not listening")
        item = await queue.get()
        if isinstance(item, SignalingError):
            queue.put_nowait(item)  # for the next caller too
            raise SignalingError(str(item))
        return item

    def forget_alias(self, alias: str) -> None:
        """Stop listening on ``alias`` locally: no more accepting, no binding again."""
        self._lose_alias(alias, f"{alias} is no longer listening")
        self._incoming.pop(alias, None)

    def send_offer(self, peer_id: str, sdp: str) -> None:
        """Relay our SDP offer to ``peer_id`` (docs/protocol.md, "Peer link").

        Raises:
            SignalingError: not joined right now.
            ValueError: ``peer_id`` is us or not an id, or a bad SDP.
        """
        self._send_to_peer(lambda: self.protocol.offer(peer_id, sdp))

    def send_answer(self, peer_id: str, sdp: str) -> None:
        """Relay our SDP answer to ``peer_id``.

        Raises:
            SignalingError, ValueError: as :meth:`send_offer`.
        """
        self._send_to_peer(lambda: self.protocol.answer(peer_id, sdp))

    def send_candidate(self, peer_id: str, candidate: str) -> None:
        """Trickle one ICE candidate (a JSON ``RTCIceCandidateInit`` string) to ``peer_id``.

        Raises:
            SignalingError, ValueError: as :meth:`send_offer`.
        """
        self._send_to_peer(lambda: self.protocol.candidate(peer_id, candidate))

    # --- internals: requests -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SignalingError(f"signaling to {self.url} is closed: {self.close_reason}")

    async def _wait_joined(self) -> None:
        while not self._closed and not self.connected:
            await self._joined.wait()
        self._check_open()

    async def _request(
        self, make: Callable[[], tuple[Request, list[Message]]], bad_errno: int
    ) -> Event:
        """Make a request in the current (or next) session and wait for its answer."""
        try:
            async with asyncio.timeout(self._request_timeout):
                await self._wait_joined()
                try:
                    request, messages = make()
                except LocalProtocolError as exc:
                    raise oserror(bad_errno, str(exc)) from None
                future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
                self._requests[request] = future
                session = self._session
                try:
                    self._send(messages)
                    event = await future
                except BaseException:
                    self._abandon(request, future, session)
                    raise
        except TimeoutError as exc:
            if isinstance(exc, OSError):
                raise
            raise oserror(
                errno.ETIMEDOUT, f"no answer from {self.url} within {self._request_timeout} s"
            ) from None
        if isinstance(event, RequestFailed):
            raise SignalingError(event.reason)
        return event

    def _abandon(self, request: Request, future: asyncio.Future[Event], session: int) -> None:
        """The caller of ``request`` is gone: cancel it, or undo its success."""
        self._requests.pop(request, None)
        if session != self._session or not self.connected:
            return  # the session ended: the server forgot it all
        try:
            if not future.done():
                messages = self.protocol.cancel(request)
            elif future.cancelled() or future.exception() is not None:
                return
            elif isinstance(result := future.result(), BindSucceeded):
                messages = self.protocol.shutdown(result.alias)[1]  # its answer wakes nobody
            elif isinstance(result, ConnectSucceeded):
                messages = self.protocol.shutdown(result.local_alias)[1]
            else:
                return
            self._send(messages)
        except (LocalProtocolError, SignalingError) as exc:
            logger.debug("could not abandon %r: %s", request, exc)

    async def _restore(self) -> None:
        """Back with the same id: bind our aliases again and accept again where we did."""
        for alias in sorted(self._bound):
            try:
                event = await self._request(
                    functools.partial(self.protocol.bind, alias), errno.EADDRNOTAVAIL
                )
            except SignalingError:
                return  # lost again (or closed): the next session tries
            except OSError as exc:
                self._lose_alias(alias, f"{alias} could not be bound again: {exc}")
                continue
            if isinstance(event, BindRejected):
                self._lose_alias(alias, f"{alias} was taken by another node while we were away")
                continue
            try:
                if alias not in self._bound:  # shut down while we were binding it again
                    self._send(self.protocol.shutdown(alias)[1])
                elif alias in self._accepting:
                    self._send(self.protocol.accept(alias))
            except (LocalProtocolError, SignalingError):
                return  # the session ended meanwhile: the next one tries
            logger.info("bound %s again", alias)

    def _lose_alias(self, alias: str, reason: str) -> None:
        """Stop holding ``alias``: no binding again, no accepting; waiting calls fail."""
        self._bound.discard(alias)
        self._accepting.discard(alias)
        queue = self._incoming.get(alias)
        if queue is not None:
            queue.put_nowait(SignalingError(reason))

    # --- internals: the WebSocket ------------------------------------------------------------

    async def _join(self) -> str:
        """One session: open a WebSocket, knock, wait for ``acknowledged``; return our id."""
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        joined: asyncio.Future[str] = loop.create_future()
        self._attempt = joined
        try:
            ws = js_global("WebSocket").new(self.url)
        except Exception as exc:  # a SyntaxError for a bad URL
            raise SignalingError(f"cannot open a WebSocket to {self.url!r}: {exc}") from exc
        self._ws = ws
        self._ws_listeners = listeners = Listeners()
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
                self._send([self.protocol.knock()])
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
        if not self.connected:
            raise SignalingError(f"not connected to {self.url}: {self._last_reason}")
        try:
            message = build()
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from None
        self._send([message])

    def _send(self, messages: list[Message]) -> None:
        """Queue ``messages`` in order and send what the token bucket allows now."""
        if self._ws is None:
            raise SignalingError(f"not connected to {self.url}: {self._last_reason}")
        self._outbox.extend(encode(message) for message in messages)
        if self._flush_timer is None:
            self._flush()

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
        try:
            events = self.protocol.receive_data(data)
        except RemoteProtocolError as exc:
            logger.warning("ignoring a signaling message: %s", exc)
            return
        for event in events:
            self._dispatch(event)

    def _on_close(self, ws: Any, js_event: Any) -> None:
        code, text = js_event.code, str(js_event.reason or "")
        reason = f"the WebSocket closed with code {code}" + (f" ({text})" if text else "")
        if ws is self._ws and self.connected:
            logger.warning("lost the signaling server %s as %s: %s", self.url, self.id, reason)
        self._drop_session(ws, reason)

    def _drop_session(self, ws: Any, reason: str) -> None:
        """End the session of ``ws`` (idempotent): fail its requests, wake the reconnection."""
        if ws is not self._ws:
            return
        self._ws = None
        self._ws_listeners.clear()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._outbox.clear()
        self._bucket = None
        self._session += 1
        self._last_reason = reason
        self._joined.clear()
        try:
            ws.close(1000)
        except Exception:
            logger.debug("closing the WebSocket failed", exc_info=True)
        if self._attempt is not None:
            settle(self._attempt, error=SignalingError(f"cannot join {self.url}: {reason}"))
        for event in self.protocol.connection_lost(reason):
            if isinstance(event, Disconnected):
                if not self._closed:
                    self._report(event)
            else:
                self._dispatch(event)
        for request, future in list(self._requests.items()):
            settle(future, error=SignalingError(reason))
            del self._requests[request]
        if not self._closed:
            self._lost.set()

    # --- internals: events -------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Joined):
            self._last_id = event.id
            self._lost.clear()
            self._joined.set()
            if self._attempt is not None:
                settle(self._attempt, event.id)
            logger.info("joined %s as %s", self.url, event.id)
        elif isinstance(event, JoinRejected):
            if self._attempt is not None:
                error = SignalingError(f"cannot join {self.url}: subnet {event.subnet} is full")
                settle(self._attempt, error=error)
        elif isinstance(event, _ANSWERS):
            future = self._requests.pop(event.request, None)
            if future is not None:
                settle(future, event)
        elif isinstance(event, CancelledRequestSucceeded):
            with contextlib.suppress(SignalingError):
                self._send([event.undo])
        elif isinstance(event, IncomingConnection):
            self._incoming_connection(event)
        elif isinstance(event, AliasRemoved):
            if event.owner_id == self.protocol.id:  # a cancelled shutdown took effect
                self._lose_alias(event.alias, f"{event.alias} was shut down")
        elif isinstance(event, IdChanged):
            lost = sorted(self._bound | set(self._incoming))
            logger.warning(
                "our id changed from %s to %s; aliases lost: %s",
                event.old_id,
                event.new_id,
                ", ".join(lost) or "none",
            )
            for alias in lost:
                self._lose_alias(
                    alias, f"{alias} is lost: our id changed from {event.old_id} to {event.new_id}"
                )
            self._report(event)
        else:
            self._report(event)

    def _incoming_connection(self, event: IncomingConnection) -> None:
        alias = event.bound_alias
        queue = self._incoming.get(alias)
        if alias not in self._bound or queue is None:
            logger.info("no listener on %s: dropping %s", alias, event.client_alias)
            return
        if queue.qsize() >= MAX_QUEUED_CONNECTIONS:
            logger.warning("dropping a connection to %s: nobody accepts", alias)
        else:
            queue.put_nowait(event.client_alias)
        if alias in self._accepting:
            with contextlib.suppress(LocalProtocolError, SignalingError):
                self._send(self.protocol.accept(alias))

    def _report(self, event: Event) -> None:
        try:
            self._on_event(event)
        except Exception:
            logger.exception("signaling event handler failed for %r", event)
