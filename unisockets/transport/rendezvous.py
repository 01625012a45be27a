"""The trio driver of :class:`unisockets.protocol.rendezvous.PipeRendezvous`.

The core decides who gets which arriving pipe, how long an unclaimed pipe is
kept, and what a caller that gives up leaves behind. This driver only waits
and wakes: an ``accept_pipe`` waits on a :class:`trio.Event` with its timeout,
and one reaper task in the transport's nursery closes pipes whose claim
deadline passed. The memory and WebRTC transports both use it; the browser
driver wakes ``asyncio`` futures around the same core.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import trio

from ..protocol.rendezvous import ArrivalKind, PipeRendezvous, Waiter

__all__ = ["TrioRendezvous"]

P = TypeVar("P", bound=Hashable)


class TrioRendezvous(Generic[P]):
    """Arriving pipes and ``accept_pipe`` calls of one transport, from trio.

    Args:
        nursery: where the reaper task runs (the transport's).
        close_pipe: ``close_pipe(pipe, reason)`` closes a pipe nobody claimed
            in time, one refused, or one dropped with its link or peer (the
            reason says which, for a log line); must not raise.
        claim_timeout: seconds an unclaimed pipe is kept, > 0.
        max_unclaimed_per_peer: pipes one peer may have waiting unclaimed;
            more are refused (closed) on arrival. None: no limit.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        close_pipe: Callable[[P, str], object],
        *,
        claim_timeout: float,
        max_unclaimed_per_peer: int | None = None,
    ) -> None:
        self.core: PipeRendezvous[P] = PipeRendezvous(
            claim_timeout=claim_timeout, max_unclaimed_per_peer=max_unclaimed_per_peer
        )
        self._close_pipe = close_pipe
        self._changed = trio.Event()
        nursery.start_soon(self._reap, name="pipe rendezvous reaper")

    def arrive(self, peer_id: str, label: str, pipe: P) -> ArrivalKind:
        """A pipe from ``peer_id`` labelled ``label`` arrived.

        Returns:
            What became of it (a refused pipe is already closed).
        """
        arrival = self.core.arrive(peer_id, label, pipe, trio.current_time())
        self._settle(arrival.kind, arrival.waiter, pipe)
        return arrival.kind

    async def claim(self, peer_id: str, label: str, within: float) -> P:
        """Take the pipe ``peer_id`` opened with ``label``, waiting up to ``within`` seconds.

        Cancel-safe: a pipe handed over just as the caller was cancelled or
        timed out goes to the next caller (or back to the queue).

        Raises:
            TimeoutError: none arrived in time (the message names the key).
            BaseException: the error the wait was failed with
                (:meth:`fail_waiters`).
        """
        got = self.core.claim(peer_id, label, trio.Event())
        if not isinstance(got, Waiter):
            await trio.lowlevel.checkpoint()
            return got
        waiter = got
        event = waiter.handle
        assert isinstance(event, trio.Event)
        try:
            with trio.move_on_after(within):
                await event.wait()
        except BaseException:
            self._give_up(waiter)
            raise
        if waiter.pipe is not None:
            return waiter.pipe
        if waiter.error is not None:
            raise waiter.error
        self._give_up(waiter)
        raise TimeoutError(f"no pipe {label!r} from {peer_id} within {within} s")

    def fail_waiters(
        self,
        peer_id: str | None,
        error: Callable[[], BaseException],
        *,
        before: int | None = None,
    ) -> None:
        """Fail the callers waiting for ``peer_id`` (everyone's if None) with ``error()``.

        ``before``: only those that began waiting before that goodbye (the
        number :meth:`unisockets.protocol.rendezvous.PipeRendezvous.peer_left`
        returned).
        """
        for waiter in self.core.fail_waiters(peer_id, error, before=before):
            self._wake(waiter)

    def drop_queued(
        self, peer_id: str | None = None, *, which: Callable[[P], bool] | None = None
    ) -> None:
        """Close the unclaimed pipes of ``peer_id`` (everyone's if None), or only ``which``."""
        for pipe in self.core.drop_queued(peer_id, which=which):
            self._close_pipe(pipe, "its link failed or its peer left")
        self._changed.set()

    def _give_up(self, waiter: Waiter[P]) -> None:
        pipe = waiter.pipe
        arrival = self.core.withdraw(waiter, trio.current_time())
        if arrival is not None and pipe is not None:
            self._settle(arrival.kind, arrival.waiter, pipe)

    def _settle(self, kind: ArrivalKind, waiter: Waiter[P] | None, pipe: P) -> None:
        if kind is ArrivalKind.HANDED:
            assert waiter is not None
            self._wake(waiter)
        elif kind is ArrivalKind.QUEUED:
            self._changed.set()
        else:
            self._close_pipe(pipe, "its peer has too many pipes waiting to be accepted")

    @staticmethod
    def _wake(waiter: Waiter[P]) -> None:
        event = waiter.handle
        assert isinstance(event, trio.Event)
        event.set()

    async def _reap(self) -> None:
        while True:
            self._changed = trio.Event()
            with trio.move_on_at(self.core.next_expiry()):  # inf: until something is queued
                await self._changed.wait()
            for pipe in self.core.expire(trio.current_time()):
                self._close_pipe(pipe, f"nobody claimed it within {self.core.claim_timeout:g} s")
