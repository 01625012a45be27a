"""One task reading many connections through a level-triggered epoll of its own.

The signaling server's cost per relayed message at 10,000 clients was mostly
the I/O around it (docs/benchmarks.md, "Signaling server"): with about 0.1
messages in flight per client every message woke its connection's own task,
and each wait re-armed that socket in trio's epoll (trio modifies a
registration on every wait). :class:`SharedReader` replaces those waits for
established plain-TCP connections: each socket is registered once, level-
triggered, in a ``select.epoll`` of its own; one task waits until that epoll
has something (:func:`trio.lowlevel.wait_readable` on its file descriptor:
an epoll is itself pollable), takes the ready connections with
``poll(0)`` and hands them to a synchronous callback that reads each one
once. No task switch and no ``epoll_ctl`` per message.

Fairness: one round hands over at most ``max_events`` connections, each of
which the callback reads once (one ``recv``), and the task passes a
checkpoint between rounds, so the other tasks run and no connection waits
for more than a round. Level-triggered readiness means that what a round
left unread is reported again; Linux rotates its ready list, so with more
ready connections than ``max_events`` every one gets its turn.

Linux only (``select.epoll``); :func:`SharedReader.available` says whether
it can be used.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import trio

__all__ = ["MAX_EVENTS", "SharedReader"]

#: Most connections handed to the callback per round (then the other tasks get a turn).
MAX_EVENTS: Final = 256

T = TypeVar("T")


class SharedReader(Generic[T]):
    """A level-triggered epoll of connections, served by one task (:meth:`run`).

    Args:
        max_events: most ready connections handed over per round.

    Raises:
        OSError: the epoll could not be created (e.g. out of file descriptors).
    """

    __slots__ = ("_epoll", "_items", "_max_events")

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self._epoll = select.epoll()
        self._items: dict[int, T] = {}
        self._max_events = max_events

    @staticmethod
    def available() -> bool:
        """Whether this platform has ``select.epoll`` (Linux)."""
        return hasattr(select, "epoll")

    def __len__(self) -> int:
        """How many connections are registered."""
        return len(self._items)

    def add(self, fd: int, item: T) -> None:
        """Register an open socket; :meth:`run` hands ``item`` over whenever it is readable.

        Args:
            fd: the socket's file descriptor; it must stay open until
                :meth:`remove` (the caller closes it only after that).
            item: what the callback gets for it, e.g. the connection's client.

        Raises:
            OSError: ``fd`` cannot be registered (closed, already registered).
        """
        self._epoll.register(fd, select.EPOLLIN)
        self._items[fd] = item

    def remove(self, fd: int, item: T) -> None:
        """Unregister ``fd`` if it is still registered for ``item``; idempotent.

        Comparing the item keeps a late call for a closed connection from
        removing a new connection that got the same file descriptor.

        Args:
            fd: as given to :meth:`add`.
            item: as given to :meth:`add`.
        """
        if self._items.get(fd) is item:
            del self._items[fd]
            with contextlib.suppress(OSError):  # closed already: the kernel dropped it
                self._epoll.unregister(fd)

    async def run(self, handle: Callable[[list[T]], None]) -> None:
        """Hand the readable connections to ``handle``, round after round, until cancelled.

        Args:
            handle: a synchronous callback that reads (once) each connection
                it gets. It must read, or :meth:`remove`, every one of them
                that is readable, or the next round hands it over again at
                once. Its exceptions end :meth:`run`.
        """
        epoll = self._epoll
        items = self._items
        max_events = self._max_events
        while True:
            events = epoll.poll(0, max_events)
            if not events:
                await trio.lowlevel.wait_readable(epoll.fileno())
                continue
            ready = [item for fd, _ in events if (item := items.get(fd)) is not None]
            if ready:
                handle(ready)
            await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Close the epoll (the sockets stay open); call it once :meth:`run` has ended."""
        self._items.clear()
        self._epoll.close()
