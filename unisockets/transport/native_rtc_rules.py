"""The decisions a native peer connection makes around its core's I/O, for every driver.

The native WebRTC core (``unisockets._rtc``, str0m) is driven by one task per
peer connection: under trio by :class:`~unisockets.transport.native_rtc_link.NativePeerLink`,
under asyncio by :class:`~unisockets.aio.native_rtc.NativePeerConnection`.
What that task decides after each round of input, whatever the driver, is here:

- which channels waiting for room in str0m's send buffer are retried, in
  which order (:func:`retry_in_order`);
- which deferred stream resets are due (:func:`due_resets`; why they wait:
  :data:`~unisockets.transport.native_rtc_pipe.RESET_DEFER`);
- when the peer's silence expires consent (RFC 7675, section 5.1:
  :func:`consent_deadline`, :func:`consent_expired`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["CONSENT_SLACK", "consent_deadline", "consent_expired", "due_resets", "retry_in_order"]

T = TypeVar("T")

#: Seconds past the consent lifetime the I/O task wakes, so the silence is over it then.
CONSENT_SLACK = 0.01


def retry_in_order(
    wanting: Iterable[T],
    into: dict[T, None],
    flush: Callable[[T], None],
    backlogged: Callable[[T], object],
) -> None:
    """Retry the channels waiting for room, in the order they asked, until str0m refuses one.

    str0m's send buffer is one for every channel of the peer connection
    (128 KiB), so once it refuses a channel's message the channels behind
    would be refused too, and each refused write costs str0m a pass over every
    channel: those behind keep their place instead (a FIFO). A channel
    behind with only a reset pending (no backlog) is flushed all the same.

    Args:
        wanting: the waiting channels, oldest first (taken out of the owner's set).
        into: the owner's new set of waiting channels (``flush`` may add to
            it); the channels kept waiting are added after those.
        flush: hands a channel's backlog to str0m (and resets it if due).
        backlogged: whether a channel still has messages str0m refused (truthy).
    """
    refused = False
    for channel in wanting:
        if refused and backlogged(channel):
            into.setdefault(channel, None)  # behind the refused one, in order
            continue
        flush(channel)
        if backlogged(channel):
            refused = True


def due_resets(
    deferred: set[T], now: float, due: Callable[[T], float | None], gone: Callable[[T], object]
) -> list[T]:
    """Take the channels whose deferred reset is due (or moot: the channel is gone).

    Args:
        deferred: the channels whose reset waits; the ones returned are removed.
        now: the driver's clock (s).
        due: when a channel's reset is due (its ``reset_due``), or None: now.
        gone: whether the channel is closed in the native peer already (truthy).

    Returns:
        The channels to flush now (each resets, unless the peer's reset came).
    """
    ready = [channel for channel in deferred if gone(channel) or now >= (due(channel) or now)]
    deferred.difference_update(ready)
    return ready


def consent_deadline(now: float, lifetime: float, silence: float) -> float:
    """When the peer's silence will have reached the consent lifetime (RFC 7675).

    Args:
        now: the driver's clock (s).
        lifetime: :attr:`~unisockets.protocol.consent.ConsentPolicy.lifetime` (s).
        silence: seconds since the peer last sent anything (``Peer.silence()``).

    Returns:
        The clock time at which to wake and judge (just past it).
    """
    return now + lifetime - silence + CONSENT_SLACK


def consent_expired(silence: float, lifetime: float) -> bool:
    """Whether consent expired: nothing at all from the peer for longer than ``lifetime`` s.

    Judged right after the socket was read, so a starved process first reads
    what the peer sent meanwhile (:mod:`unisockets.protocol.consent`'s rule).

    Args:
        silence: seconds since the peer last sent anything.
        lifetime: the consent lifetime (s).

    Returns:
        True when the link must fail.
    """
    return silence > lifetime
