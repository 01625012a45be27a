"""The node's signaling client: the signaling session driven over a WebSocket with trio.

A thin trio driver (docs/index.md, "The layers") around
:class:`~unisockets.protocol.session.SignalingSession`, which makes every
decision (the same core drives the browser's client): request bookkeeping
and timeouts, the undoing of late successes, what a reconnection restores
or loses, session numbers, which events the node sees, reconnection backoff.
This module moves its messages over a WebSocket of its own on wsproto
(``_client_connection``: every message of one read is handled in one step,
and the outbox is written with one write, so a busy trio run does not make
each message wait a scheduler round), turns the core's outputs into return
values and exceptions, and runs the tasks.

How it runs (all tasks in the nursery of :func:`open_signaling_client`):

- One *session* per WebSocket: knock, wait for ``acknowledged``, then a
  reader task feeds every frame of each read to the core and carries out
  what it says, all at once:
  settled requests wake their callers; peer events go to
  :attr:`SignalingClient.events`.
- Every message goes out through one outbox, written in order under one
  lock, as many messages per write as the pacing allows.
  Messages enter the outbox in the order the core made them, which is the
  order it expects the server to answer them in.
- The outbox is paced by a token bucket (``send_rate``), by default a little
  under the limits our server enforces per client
  (:class:`~unisockets.signaling.limits.ServerLimits`: 500 messages/s, bursts
  of 2,500). A node that opens thousands of connections at once is slowed
  down instead of being disconnected for flooding (close 1008).
- Requests (:meth:`~SignalingClient.bind`, :meth:`~SignalingClient.connect`,
  :meth:`~SignalingClient.shutdown`) wait for their answer up to
  ``request_timeout`` seconds, counted from when the request is written
  to the WebSocket (time spent behind other messages in the paced outbox
  does not count; then :class:`TimeoutError`). They are
  cancel-safe: cancelling one cancels it in the core, and a success that
  arrives after all is undone (a ``shutdown`` of the alias it got).
- When the WebSocket breaks (or is found dead), the client reconnects with
  capped, jittered exponential backoff and knocks again. Requests it was
  answering wait for the next session within their timeout, and are sent
  again there: the server forgot what the ended session asked. A shutdown
  it was answering is done (the server forgot the alias with the session,
  and a newer connection may hold the same alias by now). Only a client
  that stops (``reconnect=False``, or closed) fails them with
  :class:`~unisockets.signaling.errors.SignalingError`. Back with the
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

import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

import trio

from unisockets.protocol.consent import ConsentPolicy
from unisockets.protocol.pacing import DEFAULT_BACKOFF, DEFAULT_SEND_RATE
from unisockets.protocol.session import TRANSPORT_EVENTS

from ._client_driver import CLOSE_TIMEOUT as CLOSE_TIMEOUT
from ._client_driver import DEFAULT_KEEPALIVE as DEFAULT_KEEPALIVE
from ._client_driver import ClientDriver
from ._client_requests import MAX_PENDING_ACCEPTS as MAX_PENDING_ACCEPTS
from ._client_requests import request_error
from .errors import JoinRejectedError as JoinRejectedError
from .errors import SignalingError

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_EVENT_BUFFER",
    "DEFAULT_KEEPALIVE",
    "DEFAULT_SEND_RATE",
    "TRANSPORT_EVENTS",
    "SignalingClient",
    "open_signaling_client",
]

#: Events :attr:`SignalingClient.events` buffers before the reader waits for the consumer.
DEFAULT_EVENT_BUFFER: Final = 1024


class SignalingClient(ClientDriver):
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

    def rejoin(self) -> None:
        """Reconnect now instead of at the end of the backoff (if the connection is lost).

        For a program that knows the network is back before the backoff ends.
        Does nothing while joined or once closed.
        """
        if not self._closed and not self.connected:
            self._rejoin_now.set()

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
            SignalingError: the client closed first (or lost the server
                with ``reconnect=False``).
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
            raise request_error(failure)
        if alias in self._core.accepting:
            self._accepts.channel(alias)
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
        _, receive = self._accepts.channel(alias)
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
            SignalingError: the client closed first (or lost the server
                with ``reconnect=False``).
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
            SignalingError: the client closed first (or lost the server
                with ``reconnect=False``).
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
            SignalingError: the client is closed (or lost the server with
                ``reconnect=False``). A connection that breaks first is no
                error: the server forgot the alias with the session.
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
        await self._close()


@asynccontextmanager
async def open_signaling_client(
    url: str | Sequence[str],
    subnet: str = "10.0.0",
    *,
    ssl_context: ssl.SSLContext | None = None,
    request_timeout: float = 10.0,
    reconnect: bool = True,
    backoff: tuple[float, float] = DEFAULT_BACKOFF,
    event_buffer: int = DEFAULT_EVENT_BUFFER,
    send_rate: tuple[float, int] | None = DEFAULT_SEND_RATE,
    keepalive: ConsentPolicy | None = DEFAULT_KEEPALIVE,
    lazy_links: bool = False,
) -> AsyncIterator[SignalingClient]:
    """Join a signaling server for the body of an ``async with``.

    Connects to ``url``, knocks and waits for ``acknowledged``; the client it
    yields runs its tasks in a nursery of its own. Leaving the block closes
    the WebSocket normally and ends every task. An exception from the body
    propagates as it is (not wrapped in an exception group).

    Args:
        url: the server's ``ws://`` or ``wss://`` URL, or several URLs of
            instances serving one network (docs/signaling-server.md, "Several
            instances over Redis"): the join tries each in turn until one
            answers, and a reconnection after a failed attempt moves on to
            the next one (with the usual backoff).
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
        keepalive: how often the client pings the server (WebSocket pings,
            RFC 6455 section 5.5.2) and when it takes the connection for dead
            and reconnects; :data:`DEFAULT_KEEPALIVE` pings every 12-18 s,
            under the 20 s after which some NATs drop an idle TCP connection,
            and gives up after 45 s without an answer and 3 unanswered pings
            (the rule of :mod:`unisockets.protocol.consent`, so a starved
            process does not drop a healthy connection). ``None``: no pings.
        lazy_links: say in the knock that this node sets its peer links up
            on demand (docs/protocol.md, "Lazy peer links"): a server of ours
            then sends no ``greeting`` between it and another such node.

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
        keepalive=keepalive,
        lazy_links=lazy_links,
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
