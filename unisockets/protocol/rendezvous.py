"""Where arriving pipes meet the ``accept_pipe`` calls waiting for them, sans-IO.

A node's transport gets pipes (data channels, in-memory pipes) that a peer
opened with a label, and ``accept_pipe(peer_id, label)`` calls that want them.
Either may come first. :class:`PipeRendezvous` pairs them by ``(peer_id,
label)`` in arrival order, keeps a pipe that nobody asked for yet for
``claim_timeout`` seconds, and makes every other decision of the meeting, so
that every driver (trio over WebRTC or memory, asyncio in the browser)
behaves the same:

- A pipe arrives: the longest-waiting caller for its key gets it; with none,
  it is queued until its claim deadline, unless its peer already has
  ``max_unclaimed_per_peer`` pipes queued (then it is refused: close it).
- A caller claims: the oldest queued pipe for its key, or it waits.
- **One cancel rule.** A caller that gives up (cancelled, timed out) after a
  pipe was already handed to it does not lose that pipe: the pipe goes to the
  next caller waiting for the key, or back to the head of the queue with a
  fresh claim deadline. Like a kernel's accept queue, a connection is lost
  only when nobody claims it in time.
- A peer leaves or the transport closes: its waiting callers fail and its
  queued pipes are returned to be closed. A failed link alone only drops the
  queued pipes that were on it (the callers may get theirs on the next link),
  never those of a newer link to the same id (:meth:`PipeRendezvous.drop_queued`
  with ``which``): ids are reused.

It reads no clock (``now`` is passed in, seconds on any monotonic clock) and
does no I/O: it returns the callers to wake and the pipes to close. A
:class:`Waiter` carries a ``handle``, whatever the driver wakes it with (a
``trio.Event``, an ``asyncio.Future``).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Arrival", "ArrivalKind", "PipeRendezvous", "Waiter"]

P = TypeVar("P", bound=Hashable)


class Waiter(Generic[P]):
    """One ``accept_pipe`` call waiting for the pipe of ``key``.

    Attributes:
        key: ``(peer_id, label)``.
        handle: the driver's means to wake the caller (set by the driver).
        pipe: the pipe handed over, or None.
        error: why the wait failed (set when the peer left or the transport
            closed), or None.
        leaves: how many times signaling had said the peer left when the
            wait began (:meth:`PipeRendezvous.peer_left`): a wait that began
            after a goodbye is for the node that has the id now.
    """

    __slots__ = ("error", "handle", "key", "leaves", "pipe")

    def __init__(self, key: tuple[str, str], handle: object = None, leaves: int = 0) -> None:
        self.key = key
        self.handle = handle
        self.leaves = leaves
        self.pipe: P | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        """Whether the wait is over (a pipe or an error)."""
        return self.pipe is not None or self.error is not None

    def __repr__(self) -> str:
        state = "pipe" if self.pipe is not None else "error" if self.error else "waiting"
        return f"<Waiter {self.key[0]} {self.key[1]!r} {state}>"


class ArrivalKind(enum.Enum):
    """What became of an arriving pipe."""

    HANDED = "handed"  # to a waiting caller: wake ``Arrival.waiter``
    QUEUED = "queued"  # kept until claimed or until its claim deadline
    REFUSED = "refused"  # its peer has too many pipes queued: close it


@dataclass(frozen=True, slots=True)
class Arrival(Generic[P]):
    """The outcome of :meth:`PipeRendezvous.arrive`.

    Attributes:
        kind: an :class:`ArrivalKind`.
        waiter: with ``HANDED``, the caller to wake (its ``pipe`` is set).
    """

    kind: ArrivalKind
    waiter: Waiter[P] | None = None


class PipeRendezvous(Generic[P]):
    """Pairs arriving pipes with waiting ``accept_pipe`` calls (see the module docstring).

    Args:
        claim_timeout: seconds a pipe nobody asked for is kept, > 0.
        max_unclaimed_per_peer: pipes one peer may have queued at once (more
            are refused), or None for no limit.

    Raises:
        ValueError: a bad timeout or limit.
    """

    def __init__(self, *, claim_timeout: float, max_unclaimed_per_peer: int | None = None) -> None:
        if not (isinstance(claim_timeout, int | float) and 0 < claim_timeout < math.inf):
            raise ValueError(f"claim_timeout must be a positive number, not {claim_timeout!r}")
        if max_unclaimed_per_peer is not None and max_unclaimed_per_peer < 0:
            raise ValueError("max_unclaimed_per_peer must be >= 0")
        self.claim_timeout = float(claim_timeout)
        self.max_unclaimed_per_peer = max_unclaimed_per_peer
        self._waiters: dict[tuple[str, str], deque[Waiter[P]]] = {}
        self._queued: dict[tuple[str, str], deque[tuple[P, float]]] = {}
        self._per_peer: dict[str, int] = {}
        self._deadlines: list[tuple[float, int, tuple[str, str], P]] = []  # a lazy heap
        self._order = itertools.count()
        self._leaves: dict[str, int] = {}

    # --- inputs ----------------------------------------------------------------------------

    def peer_left(self, peer_id: str) -> int:
        """Signaling said ``peer_id`` left (``goodbye``); nothing is failed yet.

        Ids are reused: a node that joins right after another left may get
        its id, and a wait that begins after the goodbye (signaling announced
        the new node's connection) is for the new node. Pass the number
        returned here as ``before`` to :meth:`fail_waiters` when the old
        link turns out dead, so that only the waits that began before the
        goodbye fail.

        Returns:
            How many goodbyes of ``peer_id`` this rendezvous has seen, this one included.
        """
        self._leaves[peer_id] = self._leaves.get(peer_id, 0) + 1
        return self._leaves[peer_id]

    def arrive(self, peer_id: str, label: str, pipe: P, now: float) -> Arrival[P]:
        """A pipe from ``peer_id`` with ``label`` arrived.

        Args:
            peer_id: the peer that opened it.
            label: its label.
            pipe: the pipe (any hashable object).
            now: the current time in seconds.

        Returns:
            An :class:`Arrival`: the caller to wake, or that it was queued, or
            that it was refused (the driver closes it).
        """
        key = (peer_id, label)
        waiters = self._waiters.get(key)
        if waiters:
            waiter = waiters.popleft()
            if not waiters:
                del self._waiters[key]
            waiter.pipe = pipe
            return Arrival(ArrivalKind.HANDED, waiter)
        limit = self.max_unclaimed_per_peer
        if limit is not None and self._per_peer.get(peer_id, 0) >= limit:
            return Arrival(ArrivalKind.REFUSED)
        self._enqueue(key, pipe, now + self.claim_timeout, front=False)
        return Arrival(ArrivalKind.QUEUED)

    def claim(self, peer_id: str, label: str, handle: object = None) -> P | Waiter[P]:
        """An ``accept_pipe(peer_id, label)`` call: take a queued pipe or wait for one.

        Args:
            peer_id: the peer.
            label: the label.
            handle: stored in the returned :class:`Waiter` for the driver.

        Returns:
            The oldest queued pipe for the key (no longer queued), or a
            :class:`Waiter` now in line for it.
        """
        key = (peer_id, label)
        queued = self._queued.get(key)
        if queued:
            pipe, _ = queued.popleft()
            self._dequeued(key, queued, peer_id)
            return pipe
        waiter: Waiter[P] = Waiter(key, handle, self._leaves.get(peer_id, 0))
        self._waiters.setdefault(key, deque()).append(waiter)
        return waiter

    def withdraw(self, waiter: Waiter[P], now: float) -> Arrival[P] | None:
        """The caller of ``waiter`` gave up (cancelled, timed out) without taking a pipe.

        Args:
            waiter: the waiter from :meth:`claim`.
            now: the current time in seconds.

        Returns:
            None if no pipe had been handed to it; else what became of that
            pipe, as in :meth:`arrive` (the next caller got it, or it is back
            at the head of the queue; never refused).
        """
        waiters = self._waiters.get(waiter.key)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[waiter.key]
        pipe, waiter.pipe = waiter.pipe, None
        if pipe is None:
            return None
        waiters = self._waiters.get(waiter.key)
        if waiters:
            return self.arrive(waiter.key[0], waiter.key[1], pipe, now)
        self._enqueue(waiter.key, pipe, now + self.claim_timeout, front=True)
        return Arrival(ArrivalKind.QUEUED)

    def expire(self, now: float) -> list[P]:
        """Take the queued pipes whose claim deadline is at or before ``now``.

        Returns:
            Those pipes, oldest deadline first: the driver closes them.
        """
        expired: list[P] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, key, pipe = heapq.heappop(self._deadlines)
            queued = self._queued.get(key)
            if queued is None:
                continue
            for index, (queued_pipe, deadline) in enumerate(queued):
                if queued_pipe == pipe and deadline <= now:
                    del queued[index]
                    self._dequeued(key, queued, key[0])
                    expired.append(pipe)
                    break
        return expired

    def drop_queued(
        self, peer_id: str | None = None, *, which: Callable[[P], bool] | None = None
    ) -> list[P]:
        """Take the queued pipes of ``peer_id`` (every peer's if None): their link failed.

        Args:
            peer_id: the peer, or None for every peer (the transport closes).
            which: only the pipes for which it is true (e.g. those on the
                failed link, or broken ones); None: all of them. A peer id
                can be reused (a node that joins right after another left
                may get its id): the pipes of a newer link to that id stay
                queued for their callers.

        Returns:
            The pipes; the driver closes them. Waiting callers stay.
        """
        dropped: list[P] = []
        for key in [key for key in self._queued if peer_id is None or key[0] == peer_id]:
            queued = self._queued[key]
            for entry in [e for e in queued if which is None or which(e[0])]:
                queued.remove(entry)
                dropped.append(entry[0])
                self._dequeued(key, queued, key[0])
        return dropped

    def fail_waiters(
        self,
        peer_id: str | None,
        error: Callable[[], BaseException],
        *,
        before: int | None = None,
    ) -> list[Waiter[P]]:
        """Fail every caller waiting for ``peer_id`` (for any peer if None).

        Args:
            peer_id: the peer that left, or None (the transport closes).
            error: makes each caller's error (one instance each).
            before: only the callers that began waiting before that goodbye
                (the number :meth:`peer_left` returned); None: all of them.

        Returns:
            The callers to wake; each has its ``error`` set.
        """
        failed: list[Waiter[P]] = []
        for key in [key for key in self._waiters if peer_id is None or key[0] == peer_id]:
            waiters = self._waiters[key]
            for waiter in [w for w in waiters if before is None or w.leaves < before]:
                waiters.remove(waiter)
                waiter.error = error()
                failed.append(waiter)
            if not waiters:
                del self._waiters[key]
        return failed

    # --- queries ---------------------------------------------------------------------------

    def next_expiry(self) -> float:
        """The earliest claim deadline of a queued pipe, seconds (``inf`` if none)."""
        while self._deadlines:
            deadline, _, key, pipe = self._deadlines[0]
            queued = self._queued.get(key)
            if queued is not None and any(p == pipe and d == deadline for p, d in queued):
                return deadline
            heapq.heappop(self._deadlines)  # claimed or dropped since: forget it
        return math.inf

    def queued(self, peer_id: str | None = None) -> int:
        """How many pipes are queued (from ``peer_id``, or from anyone if None)."""
        if peer_id is not None:
            return self._per_peer.get(peer_id, 0)
        return sum(self._per_peer.values())

    def waiting(self, peer_id: str | None = None) -> int:
        """How many callers wait (for ``peer_id``, or for anyone if None)."""
        return sum(
            len(waiters)
            for key, waiters in self._waiters.items()
            if peer_id is None or key[0] == peer_id
        )

    # --- internals -------------------------------------------------------------------------

    def _enqueue(self, key: tuple[str, str], pipe: P, deadline: float, *, front: bool) -> None:
        queued = self._queued.setdefault(key, deque())
        if front:
            queued.appendleft((pipe, deadline))
        else:
            queued.append((pipe, deadline))
        self._per_peer[key[0]] = self._per_peer.get(key[0], 0) + 1
        heapq.heappush(self._deadlines, (deadline, next(self._order), key, pipe))

    def _dequeued(self, key: tuple[str, str], queued: deque[tuple[P, float]], peer: str) -> None:
        if not queued:
            del self._queued[key]
        left = self._per_peer.get(peer, 0) - 1
        if left > 0:
            self._per_peer[peer] = left
        else:
            self._per_peer.pop(peer, None)
