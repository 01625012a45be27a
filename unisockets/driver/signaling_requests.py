"""The requests of the asyncio driver's signaling client: bind, connect, shutdown, listen, relay.

:class:`SignalingRequests` is the half of
:class:`~unisockets.driver.signaling.DriverSignaling` that callers use: each
request is made in the session core
(:class:`~unisockets.protocol.session.SignalingSession`, the native
client's core too), which returns a ticket; the caller waits on a future
until the ticket settles or its deadline passes (``ETIMEDOUT``), and a
caller that gives up (cancelled) tells the core, which undoes a late success.
Connections announced to a bound alias wait in its queue for
:meth:`SignalingRequests.next_connection`. The WebSocket, the paced outbox
and reconnection are :mod:`unisockets.driver.signaling`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..protocol.client import SignalingClientProtocol
from ..protocol.messages import Message
from ..protocol.session import Failure, FailureKind, Output, SignalingSession, Ticket
from .errors import SignalingError, oserror
from .runtime import settle

__all__ = ["SignalingRequests"]

#: What an alias's queue holds: a client alias, or why no more will come.
_Incoming = asyncio.Queue[str | SignalingError]


class SignalingRequests:
    """Requests over the signaling session (a base of :class:`~.signaling.DriverSignaling`).

    Attributes:
        protocol: the sans-IO state machine (read-only use: ids, aliases, peers).
    """

    protocol: SignalingClientProtocol
    _core: SignalingSession
    _incoming: dict[str, _Incoming]

    def _apply(self, outputs: list[Output]) -> None:
        """Carry out the core's ``outputs`` (:meth:`DriverSignaling._apply`)."""
        raise NotImplementedError

    def _send_to_peer(self, build: Callable[[], Message]) -> None:
        """Send a message to a peer through the server (:meth:`DriverSignaling._send_to_peer`)."""
        raise NotImplementedError

    async def bind(self, alias: str) -> None:
        """Bind our ``alias`` (``"<our id>:<port>"``); it is bound again after a reconnection.

        Raises:
            OSError: ``EADDRINUSE`` when taken, ``EADDRNOTAVAIL`` when
                ``alias`` is not on our (current) id or is another node's
                address, ``ETIMEDOUT`` without an answer within the request
                timeout (also while disconnected).
            SignalingError: the session ended while waiting, or the client is closed.
        """
        await self._call(lambda now: self._core.bind(alias, now))

    async def shutdown(self, alias: str, *, session: int | None = None) -> None:
        """Release our ``alias`` (a bound one, or a connection alias).

        It is not bound again after a reconnection. While disconnected, or
        when ``session`` (the session a connection alias was made in) has
        ended, it returns at once: the server forgot our aliases with the session.

        Raises:
            OSError: ``EINVAL`` when the server says it is not ours,
                ``EADDRNOTAVAIL`` when it is not on our id, ``ETIMEDOUT``
                without an answer.
            SignalingError: the session ended while waiting, or the client is closed.
        """
        await self._call(lambda now: self._core.shutdown(alias, now, session=session))

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
        ticket = await self._call(lambda now: self._core.connect(remote_alias, now))
        assert ticket.result is not None
        return ticket.result.local_alias, ticket.result.remote_alias, ticket.result.remote_id

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
        new = alias not in self._core.accepting
        failure, outputs = self._core.listen(alias)
        if failure is not None:
            raise self._error(failure)
        if new:
            self._incoming[alias] = asyncio.Queue()  # a lost alias's queue only holds its error
        self._apply(outputs)

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
        self._apply(self._core.forget_alias(alias))
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

    # --- waiting for a ticket ---

    async def _call(self, start: Callable[[float], tuple[Ticket, list[Output]]]) -> Ticket:
        """Make a request in the session core and wait for it to settle (cancel-safe)."""
        loop = asyncio.get_running_loop()
        ticket, outputs = start(loop.time())
        future: asyncio.Future[None] = loop.create_future()
        ticket.handle = future
        if ticket.done:
            settle(future)
        self._apply(outputs)
        try:
            async with asyncio.timeout_at(ticket.deadline):
                await future
        except TimeoutError:
            if not ticket.done:  # asyncio may wake a hair early: expire at the deadline
                self._apply(self._core.expire(max(loop.time(), ticket.deadline)))
        except BaseException:
            self._apply(self._core.give_up(ticket))
            raise
        if ticket.error is not None:
            raise self._error(ticket.error)
        return ticket

    def _error(self, failure: Failure) -> Exception:
        if failure.kind is FailureKind.SIGNALING:
            return SignalingError(failure.text)
        return oserror(failure.errno, failure.text)
