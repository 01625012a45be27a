"""A node's signaling *session* across WebSocket connections, sans-IO.

:class:`~unisockets.protocol.client.SignalingClientProtocol` knows one
WebSocket connection. :class:`SignalingSession` wraps it and spans all of
them, so that both drivers of a node's signaling (trio in
:mod:`unisockets.signaling.client`, the browser's asyncio in
:mod:`unisockets.browser.signaling`) behave the same by construction. The
drivers only move WebSocket frames, keep timers, pace the outbox and wake
callers (docs/index.md, "The layers").

Inputs are method calls: :meth:`~SignalingSession.connection_made`,
:meth:`~SignalingSession.receive_data`, :meth:`~SignalingSession.connection_lost`,
the requests (:meth:`~SignalingSession.bind`, :meth:`~SignalingSession.connect`,
:meth:`~SignalingSession.shutdown`, :meth:`~SignalingSession.listen`), a caller
giving up (:meth:`~SignalingSession.give_up`), time passing
(:meth:`~SignalingSession.expire`) and :meth:`~SignalingSession.close`.
Outputs are lists of data (:mod:`unisockets.protocol.session_outputs`, also
importable from here), in the order the driver must apply them:
:class:`Send`, :class:`Settled`, :class:`Publish`, :class:`Deliver`,
:class:`AliasLost`, :class:`SessionJoined`, :class:`JoinRefused`,
:class:`Retry`, :class:`Stop` and :class:`Log`. Time is an argument
(seconds on any monotonic clock); randomness (reconnection jitter, connection
ids) comes from an injected :class:`random.Random`.

Decisions it owns:

- **Request bookkeeping.** Each bind, connect or shutdown is a
  :class:`Ticket` with a deadline (``now + request_timeout``; with
  ``deadline_from_write``, ``request_timeout`` after the driver wrote it, see
  :meth:`~SignalingSession.written`). Made while disconnected, it waits for
  the next session; :meth:`expire` fails it with a timeout at its deadline.
  The answer settles it with a result or a :class:`Failure` carrying the
  errno (``EADDRINUSE``/``EADDRNOTAVAIL`` for a refused bind,
  ``ECONNREFUSED``, ``EINVAL`` for a refused shutdown).
- **Late successes are undone.** A caller that gives up (cancelled, timed
  out) cancels its request in the protocol; if it already succeeded in the
  current session, the alias it got is shut down.
- **What survives a reconnection.** Bound aliases and the ones that accept
  are kept; back with the same id, they are bound again and accept again (a
  bind refused then loses the alias). With a new id
  (:class:`~unisockets.protocol.events.IdChanged`) or when our own alias is
  removed, the alias is lost: :class:`AliasLost`.
- **Sessions.** :attr:`~SignalingSession.session` grows by one each time a
  connection ends. A connection alias belongs to the session that made it
  (:attr:`Connection.session`): a shutdown for an ended session, or any
  shutdown made while disconnected, sends nothing (the server forgot our
  aliases with the session; the alias may belong to a newer connection).
  A bind or connect in flight when its connection ends is carried over to
  the next session within its deadline (a shutdown in flight is done: the
  server forgot the alias); only a core that stops fails them.
- **Dispatch.** Which protocol events the node sees (:data:`TRANSPORT_EVENTS`),
  where an incoming connection goes, when to send ``accepting`` again.
- **Reconnection.** After a loss: :class:`Retry` with a capped, jittered
  exponential backoff, or :class:`Stop` when the first join failed or
  reconnection is off.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import random
import secrets
import uuid
from typing import Final

from . import session_outputs
from .client import SignalingClientProtocol
from .client_states import JoinState
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    AliasRemoved,
    AnswerReceived,
    BindRejected,
    BindSucceeded,
    CancelledRequestSucceeded,
    CandidateReceived,
    ConnectRefused,
    ConnectSucceeded,
    Disconnected,
    Event,
    IdChanged,
    IncomingConnection,
    Joined,
    JoinRejected,
    OfferReceived,
    PeerGreeted,
    PeerLeft,
    Reconnected,
    Request,
    RequestFailed,
    RequestKind,
    ShutdownRejected,
    ShutdownSucceeded,
)
from .pacing import DEFAULT_BACKOFF, backoff_delay, check_backoff
from .session_outputs import *  # noqa: F403 - its outputs, importable from here too
from .session_outputs import (
    AliasLost,
    Connection,
    Deliver,
    Failure,
    FailureKind,
    JoinRefused,
    Log,
    Output,
    Publish,
    Retry,
    Send,
    SessionJoined,
    Settled,
    Stop,
    Ticket,
)

__all__ = ["TRANSPORT_EVENTS", "SignalingSession"]
__all__ += session_outputs.__all__  # listed once, in session_outputs.py

#: The protocol events a node sees (its transport and its user); the rest are the session's.
TRANSPORT_EVENTS: Final = (
    PeerGreeted,
    OfferReceived,
    AnswerReceived,
    CandidateReceived,
    PeerLeft,
    IdChanged,
    Reconnected,
    Disconnected,
)
_ANSWERS: Final = (
    BindSucceeded,
    BindRejected,
    ConnectSucceeded,
    ConnectRefused,
    ShutdownSucceeded,
    ShutdownRejected,
    RequestFailed,
)
_Answer = (
    BindSucceeded
    | BindRejected
    | ConnectSucceeded
    | ConnectRefused
    | ShutdownSucceeded
    | ShutdownRejected
    | RequestFailed
)


class SignalingSession:
    """A node's signaling across WebSocket connections (see the module docstring).

    Args:
        subnet: the subnet to join, three octets such as ``"10.0.0"``.
        request_timeout: seconds a request (or a join) waits for its answer, > 0.
        reconnect: connect again after a loss; if false, the first loss stops it.
        backoff: ``(base, cap)`` in seconds: reconnection attempt ``n`` waits
            between half and all of ``min(cap, base * 2**n)``.
        rng: the source of reconnection jitter and connection ids (and of
            the rejoin token when given; else the token comes from
            :mod:`secrets`).
        stable_id: ask for our previous id when we knock again, with a
            rejoin token made here (docs/protocol.md, "Stable addresses");
            false knocks with ``subnet`` alone, as original nodes do.
        lazy_links: the node sets its peer links up on demand, and says so
            in its knock (docs/protocol.md, "Lazy peer links").
        deadline_from_write: the driver reports when it has written each
            request (:meth:`written`), and a request's answer is due
            ``request_timeout`` after that write, not after the call: time a
            request spends behind others in the driver's paced outbox does
            not count against it. False: the deadline counts from the call
            (or, for a request made while disconnected, from the call too).

    Raises:
        ValueError: a bad timeout or backoff.
        LocalProtocolError: ``subnet`` is not a three-octet subnet.

    Attributes:
        protocol: the per-connection state machine (read-only use: peers, aliases).
    """

    def __init__(
        self,
        subnet: str,
        *,
        request_timeout: float,
        reconnect: bool = True,
        backoff: tuple[float, float] = DEFAULT_BACKOFF,
        rng: random.Random | None = None,
        stable_id: bool = True,
        lazy_links: bool = False,
        deadline_from_write: bool = False,
    ) -> None:
        if not (isinstance(request_timeout, int | float) and 0 < request_timeout < math.inf):
            raise ValueError(f"request_timeout must be positive, got {request_timeout!r}")
        self._backoff = check_backoff(backoff)
        token: str | None = None
        if stable_id:
            token = secrets.token_hex(16) if rng is None else f"{rng.getrandbits(128):032x}"
        self.protocol = SignalingClientProtocol(
            subnet=subnet, token=token, stable_id=stable_id, lazy_links=lazy_links
        )
        self.request_timeout = float(request_timeout)
        self._reconnect = reconnect
        self._deadline_from_write = deadline_from_write
        self._rng = rng or random.Random()
        self._session = 0
        self._up = False  # between connection_made and connection_lost
        self._closed = False
        self._last_id: str | None = None
        self._ever_joined = False
        self._failures = 0
        self._queued: list[Ticket] = []  # waiting for a session
        self._sent: dict[Request, Ticket] = {}
        self._bound: set[str] = set()  # kept across reconnections (with the same id)
        self._accepting: set[str] = set()
        self._restoring: dict[str, Ticket] = {}
        #: When the join of the current connection must be acknowledged by, seconds.
        self.join_deadline = math.inf

    # --- views ----------------------------------------------------------------------------

    @property
    def session(self) -> int:
        """The number of the current (or next) session: it grows by one as each one ends."""
        return self._session

    @property
    def id(self) -> str | None:
        """Our id, the last one while disconnected; None if never joined."""
        return self._last_id

    @property
    def connected(self) -> bool:
        """Whether we are joined right now (not closed, not between sessions)."""
        return self.protocol.id is not None and not self._closed

    @property
    def joining(self) -> bool:
        """Whether the current connection knocked and waits for ``acknowledged``."""
        return self.protocol.join_state is JoinState.KNOCKING

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called, or a :class:`Stop` was output."""
        return self._closed

    @property
    def bound(self) -> frozenset[str]:
        """Our bound aliases, bound again after a reconnection with the same id."""
        return frozenset(self._bound)

    @property
    def accepting(self) -> frozenset[str]:
        """Our bound aliases that accept connections (again after each one)."""
        return frozenset(self._accepting)

    # --- the connection -------------------------------------------------------------------

    def connection_made(self, now: float) -> list[Output]:
        """A new WebSocket is open: knock, and expect ``acknowledged`` by :attr:`join_deadline`.

        Args:
            now: the current time, seconds on the driver's monotonic clock.

        Returns:
            The ``knock`` to send first (docs/protocol.md, "Join"), or nothing once closed.

        Raises:
            LocalProtocolError: a connection is up already (no :meth:`connection_lost`).
        """
        if self._closed:
            return []
        if self._up:
            raise LocalProtocolError("connection_made twice without connection_lost")
        self._up = True
        self.join_deadline = now + self.request_timeout
        return [Send((self.protocol.knock(),))]

    def receive_data(self, data: str | bytes, now: float) -> list[Output]:
        """One text frame from the server, on the current WebSocket.

        A frame the protocol rejects is logged and ignored, as a frame after
        the connection was lost is. Requests that waited for a session are
        sent once it joined (after the rebinds of a reconnection).

        Args:
            data: the frame's payload.
            now: the current time, seconds.

        Returns:
            The outputs, in order.
        """
        if not self._up:
            return []
        try:
            events = self.protocol.receive_data(data)
        except RemoteProtocolError as exc:
            return [Log(logging.WARNING, f"ignoring a signaling message: {exc}")]
        out: list[Output] = []
        for event in events:
            self._dispatch(event, out)
        if self.connected and self._queued:
            queued, self._queued = self._queued, []
            for ticket in queued:
                self._issue(ticket, out)
        return out

    def connection_lost(self, reason: str, now: float) -> list[Output]:
        """The WebSocket closed (or an attempt never opened one): end the session, decide next.

        When the core reconnects (:class:`Retry`), requests the session was
        answering are carried over: a bind or a connect waits for the next
        session (within its deadline; one that was never written gets
        ``request_timeout`` from now), as one made while disconnected does,
        and is sent again there (the server forgot what the ended session
        asked); a shutdown succeeds, since the server forgot the alias with
        the session (the session rule: nothing is released in a later one).
        When it stops, they fail (``SIGNALING``). Requests not sent yet keep
        waiting; bound aliases are kept for the next session. Idempotent for
        the session (:attr:`session` grows once).

        Args:
            reason: why, for the failures and :class:`~unisockets.protocol.events.Disconnected`.
            now: the current time, seconds.

        Returns:
            The outputs, ending with :class:`Retry` (capped, jittered
            exponential backoff, reset by each join) or :class:`Stop` (the
            first join failed, or ``reconnect`` is off); nothing after a close.
        """
        out: list[Output] = []
        if self._up:
            retrying = not self._closed and self._ever_joined and self._reconnect
            self._end(reason, out, carry_over_at=now if retrying else None)
        if self._closed:
            return out
        if not self._ever_joined or not self._reconnect:
            self._close(reason, out)
            out.append(Stop(reason))
            return out
        delay = backoff_delay(self._failures, self._backoff, self._rng)
        self._failures += 1
        out.append(Retry(delay))
        return out

    def close(self, reason: str) -> list[Output]:
        """Stop for good: every request fails, every alias is lost; idempotent.

        Args:
            reason: why, for the failures and the lost aliases.

        Returns:
            The outputs (no :class:`Stop`: the caller is the one stopping).
        """
        out: list[Output] = []
        if not self._closed:
            self._close(reason, out)
        return out

    # --- requests -------------------------------------------------------------------------

    def bind(self, alias: str, now: float) -> tuple[Ticket, list[Output]]:
        """Bind our ``alias`` (docs/protocol.md, "Bind and listen"); bound again after a loss.

        Args:
            alias: ``"<our id>:<port>"``, or a port of an address no node has as id.
            now: the current time, seconds (the deadline is ``now + request_timeout``).

        Returns:
            The ticket (settled with no result, or a :class:`Failure`:
            ``EADDRINUSE``, ``EADDRNOTAVAIL``) and the outputs.
        """
        return self._request(RequestKind.BIND, alias, now)

    def connect(self, remote_alias: str, now: float) -> tuple[Ticket, list[Output]]:
        """Connect to ``remote_alias`` (docs/protocol.md, "Connect").

        Args:
            remote_alias: ``"<id>:<port>"`` of a listener.
            now: the current time, seconds.

        Returns:
            The ticket (settled with a :class:`Connection`, or a
            :class:`Failure`: ``ECONNREFUSED``, ``EINVAL``) and the outputs.
        """
        return self._request(RequestKind.CONNECT, remote_alias, now)

    def shutdown(
        self, alias: str, now: float, *, session: int | None = None
    ) -> tuple[Ticket, list[Output]]:
        """Release our ``alias`` (docs/protocol.md, "Shutdown"); it takes effect at once here.

        Args:
            alias: a bound alias or a connection alias.
            now: the current time, seconds.
            session: for a connection alias, the session that made it; when
                that session ended, nothing is sent (the ticket succeeds).
                Made while disconnected, nothing is sent either (the server
                forgot our aliases); a bind of ``alias`` waiting for the next
                session is undone once it succeeds (a shutdown sent before
                the bind's answer could name another node's address).

        Returns:
            The ticket (already settled when nothing is to be sent) and the outputs.
        """
        out: list[Output] = []
        self._lose(alias, f"{alias} was shut down", out)
        ticket = Ticket(RequestKind.SHUTDOWN, alias, now + self.request_timeout)
        if self._closed:
            self._fail(
                ticket, Failure(FailureKind.SIGNALING, "the signaling client is closed"), out
            )
        elif session is not None and session != self._session:
            out.append(Log(logging.DEBUG, f"not releasing {alias}: its session ended"))
            self._settle(ticket, None, out)
        elif self.connected:
            self._issue(ticket, out)
        else:
            for queued in self._queued:  # a bind of it waiting for the next session: undo it
                queued.release |= queued.kind is RequestKind.BIND and queued.target == alias
            out.append(Log(logging.DEBUG, f"not releasing {alias}: the server forgot it"))
            self._settle(ticket, None, out)
        return ticket, out

    def listen(self, alias: str) -> tuple[Failure | None, list[Output]]:
        """Accept connections on our bound ``alias`` from now on, across reconnections.

        ``accepting`` is sent now if joined, else by the next session (or
        the rebind of the alias); again after each :class:`Deliver`.

        Args:
            alias: one of :attr:`bound`.

        Returns:
            ``(None, outputs)``, or a :class:`Failure` (closed; ``EINVAL``: not bound).
        """
        if self._closed:
            return Failure(FailureKind.SIGNALING, "the signaling client is closed"), []
        if alias not in self._bound:
            return Failure(FailureKind.OS, f"{alias} is not bound by this node", errno.EINVAL), []
        if alias in self._accepting:
            return None, []
        self._accepting.add(alias)
        out: list[Output] = []
        if self.connected and alias not in self._restoring:  # else the next session, the rebind
            self._accept(alias, out)
        return None, out

    def forget_alias(self, alias: str) -> list[Output]:
        """Stop holding ``alias`` here without telling the server (no rebind, no accepting).

        Args:
            alias: the alias.

        Returns:
            The outputs (an :class:`AliasLost`; a rebind in flight is undone).
        """
        out: list[Output] = []
        self._lose(alias, f"{alias} is no longer listening", out)
        return out

    def give_up(self, ticket: Ticket) -> list[Output]:
        """The caller of ``ticket`` left (cancelled, or it did not take the result).

        A request not answered yet is cancelled in the protocol (whose late
        success it undoes); a connect that succeeded in the current session
        is undone now (a shutdown of its alias); a bind that succeeded is
        undone in whatever session holds the alias now (it may have been
        bound again after a reconnection). Nothing else is sent for a session
        that ended: the server forgot it all.

        Args:
            ticket: a ticket of this session (settled or not).

        Returns:
            The outputs; the ticket is settled silently (no :class:`Settled`).
        """
        out: list[Output] = []
        if ticket in self._queued:
            self._queued.remove(ticket)
            ticket._done = True
            return out
        request = ticket.request
        if request is None:
            return out
        self._sent.pop(request, None)
        try:
            if ticket.done and ticket.error is None and ticket.kind is RequestKind.BIND:
                # Bound for a caller that never knew: not ours to keep, in any session.
                alias = ticket.target
                if alias not in self._bound:
                    return out
                self._lose(alias, f"{alias}: its caller gave up", out)  # and any rebind
                if not self.connected or alias not in self.protocol.bound_aliases:
                    return out
                messages = self.protocol.shutdown(alias)[1]
            elif ticket.session != self._session or self._closed:
                ticket._done = True
                return out  # the session ended: the server forgot it all
            elif not ticket.done:
                ticket._done = True
                messages = self.protocol.cancel(request)
            elif ticket.error is None and ticket.result is not None:
                messages = self.protocol.shutdown(ticket.result.local_alias)[1]
            else:
                return out
        except LocalProtocolError as exc:
            out.append(Log(logging.DEBUG, f"could not abandon {request!r}: {exc}"))
            return out
        if messages:
            out.append(Send(tuple(messages)))
        return out

    def expire(self, now: float) -> list[Output]:
        """Time passed: fail every request whose deadline is at or before ``now``.

        Each fails with ``TIMEOUT`` and is given up (:meth:`give_up`: a late
        success is undone).

        Args:
            now: the current time, seconds.

        Returns:
            The outputs (a :class:`Settled` per expired ticket).
        """
        out: list[Output] = []
        for ticket in [*self._queued, *self._sent.values()]:
            if not ticket.internal and not ticket.done and ticket.deadline <= now:
                failure = Failure(
                    FailureKind.TIMEOUT,
                    f"no answer from the signaling server within {self.request_timeout} s",
                    errno.ETIMEDOUT,
                )
                out.extend(self.give_up(ticket))
                ticket.error = failure
                out.append(Settled(ticket))
        return out

    def written(self, ticket: Ticket, now: float) -> None:
        """The driver wrote ``ticket``'s request to the WebSocket at ``now``.

        With ``deadline_from_write``, the answer is now due by ``now +
        request_timeout`` (the ticket's :attr:`~Ticket.deadline`); otherwise,
        or for a ticket settled or sent in an earlier session, nothing changes.

        Args:
            ticket: the ticket of a :class:`Send` the driver carried out.
            now: when its last message was written, seconds.
        """
        if (
            self._deadline_from_write
            and not ticket.done
            and not ticket.internal
            and ticket.session == self._session
            and self._up
        ):
            ticket.deadline = now + self.request_timeout

    def next_deadline(self) -> float:
        """The earliest deadline of a request waiting for its answer.

        Returns:
            Seconds on the driver's clock (``inf`` if none): when to call :meth:`expire`.
        """
        tickets = [*self._queued, *self._sent.values()]
        return min((t.deadline for t in tickets if not t.internal and not t.done), default=math.inf)

    # --- internals ------------------------------------------------------------------------

    def _request(self, kind: RequestKind, target: str, now: float) -> tuple[Ticket, list[Output]]:
        out: list[Output] = []
        ticket = Ticket(kind, target, now + self.request_timeout)
        if self._closed:
            self._fail(
                ticket, Failure(FailureKind.SIGNALING, "the signaling client is closed"), out
            )
        elif self.connected:
            self._issue(ticket, out)
        else:
            self._queued.append(ticket)
        return ticket, out

    def _issue(self, ticket: Ticket, out: list[Output]) -> None:
        """Send ``ticket``'s request in the current session (or fail it at once)."""
        target = ticket.target
        try:
            if ticket.kind is RequestKind.BIND:
                request, messages = self.protocol.bind(target)
            elif ticket.kind is RequestKind.CONNECT:
                connection_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
                request, messages = self.protocol.connect(target, connection_id)
            else:
                request, messages = self.protocol.shutdown(target)
        except LocalProtocolError as exc:
            code = errno.EINVAL if ticket.kind is RequestKind.CONNECT else errno.EADDRNOTAVAIL
            if ticket.internal:
                self._lose(target, f"{target} could not be bound again: {exc}", out)
            else:
                self._fail(ticket, Failure(FailureKind.OS, str(exc), code), out)
            return
        ticket.request, ticket.session = request, self._session
        self._sent[request] = ticket
        if ticket.internal:
            self._restoring[target] = ticket
        elif self._deadline_from_write:
            ticket.deadline = math.inf  # until written(): the answer is due from the write
        out.append(Send(tuple(messages), ticket))

    def _settle(self, ticket: Ticket, result: Connection | None, out: list[Output]) -> None:
        ticket.result, ticket._done = result, True
        if not ticket.internal:
            out.append(Settled(ticket))

    def _fail(self, ticket: Ticket, failure: Failure, out: list[Output]) -> None:
        ticket.error, ticket._done = failure, True
        if not ticket.internal:
            out.append(Settled(ticket))

    def _accept(self, alias: str, out: list[Output]) -> None:
        # Not bound in this connection (yet): the rebind accepts.
        with contextlib.suppress(LocalProtocolError):
            out.append(Send(tuple(self.protocol.accept(alias))))

    def _dispatch(self, event: Event, out: list[Output]) -> None:
        if isinstance(event, _ANSWERS):
            self._answer(event, out)
        elif isinstance(event, CancelledRequestSucceeded):
            out.append(Send((event.undo,)))
        elif isinstance(event, IncomingConnection):
            alias = event.bound_alias
            if alias not in self._bound:  # being shut down, or a cancelled bind being undone
                out.append(
                    Log(logging.INFO, f"no listener on {alias}: dropping {event.client_alias}")
                )
                return
            out.append(Deliver(alias, event.client_alias))
            if alias in self._accepting:
                self._accept(alias, out)
        elif isinstance(event, Joined):
            self._last_id, self._ever_joined, self._failures = event.id, True, 0
            out.append(SessionJoined(event.id))
            out.append(Log(logging.INFO, f"joined as {event.id}"))
        elif isinstance(event, JoinRejected):
            out.append(JoinRefused(event.subnet))
            out.append(Log(logging.WARNING, f"rejected: subnet {event.subnet} is full"))
        elif isinstance(event, AliasRemoved):
            if event.owner_id == self.protocol.id:  # a cancelled shutdown took effect
                self._lose(event.alias, f"{event.alias} was shut down", out)
        elif isinstance(event, TRANSPORT_EVENTS):
            if isinstance(event, IdChanged):
                lost = sorted(self._bound)
                text = f"our id changed from {event.old_id} to {event.new_id}"
                out.append(
                    Log(logging.WARNING, f"{text}; aliases lost: {', '.join(lost) or 'none'}")
                )
                for alias in lost:
                    self._lose(alias, f"{alias} is lost: {text}", out)
            out.append(Publish(event))
            if isinstance(event, Reconnected):
                for alias in sorted(self._bound):
                    self._issue(Ticket(RequestKind.BIND, alias, math.inf, internal=True), out)

    def _answer(self, event: _Answer, out: list[Output]) -> None:
        ticket = self._sent.pop(event.request, None)
        if ticket is None or ticket.done:
            return
        alias = ticket.target
        if ticket.internal:
            self._rebound(ticket, event, out)
        elif isinstance(event, RequestFailed):
            self._fail(ticket, Failure(FailureKind.SIGNALING, event.reason), out)
        elif isinstance(event, BindSucceeded):
            pending = self.protocol.pending_requests
            if ticket.release:  # shut down while it waited for this session
                out.append(Send(tuple(self.protocol.shutdown(alias)[1])))
            elif not any(r.kind is RequestKind.SHUTDOWN and r.alias == alias for r in pending):
                self._bound.add(alias)  # (a shutdown made since releases it: not to keep)
            self._settle(ticket, None, out)
        elif isinstance(event, BindRejected):
            self._fail(ticket, self._bind_refusal(alias, event.member_address), out)
        elif isinstance(event, ConnectSucceeded):
            assert ticket.session is not None
            result = Connection(event.local_alias, alias, event.remote_id, ticket.session)
            self._settle(ticket, result, out)
        elif isinstance(event, ConnectRefused):
            text = f"connection to {alias} refused"
            self._fail(ticket, Failure(FailureKind.OS, text, errno.ECONNREFUSED), out)
        elif isinstance(event, ShutdownSucceeded):
            self._settle(ticket, None, out)
        else:
            text = f"shutdown rejected, {alias} is not held by this node"
            self._fail(ticket, Failure(FailureKind.OS, text, errno.EINVAL), out)

    def _bind_refusal(self, alias: str, member_address: bool) -> Failure:
        """Why the server refused our bind of ``alias``.

        Our server says when the alias is on another member's id
        (``member_address``, ``isMemberAddress`` on the wire, docs/protocol.md,
        "Bind and listen"): ``EADDRNOTAVAIL``, as bind(2) for an address that
        is not ours, even when we do not know that member (lazy links). An
        original server does not say: we guess from the members we know.
        """
        address, our_id = alias.rpartition(":")[0], self.protocol.id
        known = self.protocol.peers | set(self.protocol.aliases.values())
        if address != our_id and (member_address or address in known):
            text = f"bind rejected, {address} is another node's address"
            return Failure(FailureKind.OS, text, errno.EADDRNOTAVAIL)
        if address != our_id and alias not in self.protocol.aliases:
            # A node that joined later than the holder was never told of the alias.
            text = f"bind rejected, {alias} is in use or {address} is another node's address"
            return Failure(FailureKind.OS, text, errno.EADDRINUSE)
        return Failure(FailureKind.OS, f"bind rejected, {alias} is in use", errno.EADDRINUSE)

    def _rebound(self, ticket: Ticket, event: _Answer, out: list[Output]) -> None:
        """The answer to binding ``ticket.target`` again after a reconnection."""
        alias = ticket.target
        ticket._done = True
        if self._restoring.get(alias) is ticket:
            del self._restoring[alias]
        if isinstance(event, BindSucceeded):
            out.append(Log(logging.INFO, f"bound {alias} again"))
            if alias in self._accepting:
                self._accept(alias, out)
        elif isinstance(event, BindRejected):
            out.append(Log(logging.WARNING, f"could not bind {alias} again: it is taken"))
            self._lose(alias, f"{alias} was taken by another node while we were away", out)
        # RequestFailed: the session ended again; the alias stays bound for the next one.

    def _lose(self, alias: str, reason: str, out: list[Output]) -> None:
        """Stop holding ``alias``: no rebinding, no accepting; its accepts fail."""
        self._bound.discard(alias)
        self._accepting.discard(alias)
        ticket = self._restoring.pop(alias, None)
        if ticket is not None and ticket.request is not None:
            self._sent.pop(ticket.request, None)
            ticket._done = True
            # The protocol undoes the rebind's success, unless a later shutdown releases it.
            try:
                messages = self.protocol.cancel(ticket.request)
            except LocalProtocolError:  # pragma: no cover - restoring holds unanswered rebinds
                messages = []
            if messages:
                out.append(Send(tuple(messages)))
        out.append(AliasLost(alias, reason))

    def _end(self, reason: str, out: list[Output], *, carry_over_at: float | None = None) -> None:
        """The current connection is gone: fail what it was answering, or carry it over.

        Args:
            reason: why.
            out: the outputs so far.
            carry_over_at: the time now when another session follows (the
                callers' requests wait for it), None to fail them.
        """
        self._up = False
        self._session += 1
        self.join_deadline = math.inf
        carried: list[Ticket] = []
        for event in self.protocol.connection_lost(reason):
            if isinstance(event, RequestFailed):
                ticket = self._sent.get(event.request)
                if carry_over_at is None or ticket is None or ticket.internal or ticket.done:
                    self._answer(event, out)
                    continue
                del self._sent[event.request]
                if ticket.kind is RequestKind.SHUTDOWN:
                    out.append(Log(logging.DEBUG, f"{ticket.target} was released: {reason}"))
                    self._settle(ticket, None, out)
                    for bind in carried:  # made before it: undo their success, as in shutdown()
                        bind.release |= (
                            bind.kind is RequestKind.BIND and bind.target == ticket.target
                        )
                    continue
                ticket.request = ticket.session = None
                if ticket.deadline == math.inf:  # never written: it gets its full time
                    ticket.deadline = carry_over_at + self.request_timeout
                carried.append(ticket)
            elif isinstance(event, Disconnected) and not self._closed:
                out.append(
                    Log(logging.WARNING, f"lost the signaling server as {event.id}: {reason}")
                )
                out.append(Publish(event))
        for ticket in self._sent.values():  # internal ones (nobody waits); none else is left
            ticket._done = True
        self._sent.clear()
        self._restoring.clear()
        self._queued[:0] = carried  # before the requests made later

    def _close(self, reason: str, out: list[Output]) -> None:
        self._closed = True
        if self._up:
            self._end(reason, out)
        for ticket in self._queued:
            self._fail(ticket, Failure(FailureKind.SIGNALING, f"signaling closed: {reason}"), out)
        self._queued.clear()
        for alias in sorted(self._bound):
            self._lose(alias, f"signaling was closed: {reason}", out)
