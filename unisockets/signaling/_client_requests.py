"""What a signaling client's callers wait on: tickets, moving deadlines, accept queues (private).

Part of :mod:`unisockets.signaling.client` (see its module docstring). The
session core (:class:`~unisockets.protocol.session.SignalingSession`) keeps
each request as a :class:`~unisockets.protocol.session.Ticket` and decides
when it is settled and by when it must be (its ``deadline``, which moves:
it starts when the request is written, and a request carried over to the
next session may get a new one). Here are the trio objects its callers wait
on (:class:`Waiters`), the exception each failure becomes
(:func:`request_error`), and the queues of incoming connections per bound
alias that ``accept`` reads (:class:`AcceptQueues`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import trio

from unisockets.protocol.session import Failure, FailureKind, Ticket

from .errors import SignalingError

logger: Final = logging.getLogger("unisockets.signaling.client")

#: Incoming connections queued per bound alias before new ones are dropped (logged).
MAX_PENDING_ACCEPTS: Final = 1024
AcceptChannel = tuple[trio.MemorySendChannel[str], trio.MemoryReceiveChannel[str]]


class Waiter:
    """What the caller of one request waits on: its settlement, within its deadline.

    Attributes:
        done: set when the core settles the ticket.
        scope: the caller's cancel scope; its deadline is the ticket's.
    """

    __slots__ = ("done", "scope")

    def __init__(self, deadline: float) -> None:
        self.done = trio.Event()
        self.scope = trio.CancelScope(deadline=deadline)


class Waiters:
    """The requests whose callers wait, so that their deadlines follow their tickets'."""

    def __init__(self) -> None:
        self._tickets: set[Ticket] = set()

    @contextmanager
    def waiting(self, ticket: Ticket) -> Iterator[Waiter]:
        """For the body of a ``with``: ``ticket``'s caller waits (``ticket.handle`` is its waiter).

        Yields:
            The :class:`Waiter`: wait on ``done`` inside ``scope``.
        """
        waiter = ticket.handle = Waiter(ticket.deadline)
        self._tickets.add(ticket)
        try:
            yield waiter
        finally:
            self._tickets.discard(ticket)

    @staticmethod
    def settled(ticket: Ticket) -> None:
        """The core settled ``ticket``: wake its caller (if one waits)."""
        if isinstance(ticket.handle, Waiter):
            ticket.handle.done.set()

    def retime(self, ticket: Ticket | None = None) -> None:
        """The core moved ``ticket``'s deadline (None: maybe every waiting one's): follow it."""
        for each in self._tickets if ticket is None else (ticket,):
            if isinstance(each.handle, Waiter):
                each.handle.scope.deadline = each.deadline


def request_error(failure: Failure) -> Exception:
    """The exception a caller gets for the core's ``failure``.

    Returns:
        ``OSError`` with the failure's errno, ``TimeoutError``, or
        :class:`~unisockets.signaling.errors.SignalingError`, as its kind says.
    """
    if failure.kind is FailureKind.OS:
        return OSError(failure.errno, failure.text)
    if failure.kind is FailureKind.TIMEOUT:
        return TimeoutError(failure.text)
    return SignalingError(failure.text)


class AcceptQueues:
    """The incoming connections of each bound alias, until ``accept`` takes them."""

    def __init__(self) -> None:
        self._channels: dict[str, AcceptChannel] = {}

    def channel(self, alias: str) -> AcceptChannel:
        """The queue of ``alias`` (made on first use; up to :data:`MAX_PENDING_ACCEPTS`)."""
        channel = self._channels.get(alias)
        if channel is None:
            channel = self._channels[alias] = trio.open_memory_channel[str](MAX_PENDING_ACCEPTS)
        return channel

    def deliver(self, alias: str, client_alias: str) -> None:
        """Queue a connection from ``client_alias`` to ``alias``; drop it (logged) if full."""
        send, _ = self.channel(alias)
        try:
            send.send_nowait(client_alias)
        except trio.WouldBlock:
            logger.warning(
                "%s has %d connections waiting: dropping %s",
                alias,
                MAX_PENDING_ACCEPTS,
                client_alias,
            )

    def lose(self, alias: str) -> None:
        """``alias`` is lost: waiting accepts fail once the queued connections are taken."""
        channel = self._channels.pop(alias, None)
        if channel is not None:
            channel[0].close()

    def lose_all(self) -> None:
        """:meth:`lose` every alias (the client closed)."""
        for alias in list(self._channels):
            self.lose(alias)
