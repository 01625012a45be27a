"""Lazy links in the asyncio driver: close a peer link that carried no connection for a while.

docs/protocol.md, "Lazy peer links": a node that knocked with ``lazyLinks``
sets a link up when it first connects to a peer (or a peer to it: both are
the driver's ordinary on-demand links) and closes it once it carried no
connection for ``link_idle_timeout`` seconds. The decision is
:class:`unisockets.protocol.link_idle.LinkIdle`'s, shared with the trio
transport (:mod:`unisockets.transport.webrtc_link`); this module keeps its
timer on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from ..protocol.link_idle import LinkIdle
from ..protocol.peer_link import LEGACY_LABEL
from .runtime import logger

__all__ = ["IdleTimer"]


class IdleTimer:
    """The idle timer of one peer link (see the module docstring).

    Args:
        peer_id: the peer (for the log).
        timeout: seconds without a connection before the link closes; None: never (eager).
        on_idle: closes the link (called once, from the event loop).
    """

    def __init__(self, peer_id: str, timeout: float | None, on_idle: Callable[[], object]) -> None:
        self._peer_id = peer_id
        self._loop = asyncio.get_running_loop()
        self._idle = LinkIdle(timeout, self._loop.time())
        self._on_idle = on_idle
        self._count = 0  # connections on the link (data channels of ours, open or opening)
        self._opening = 0  # connections waiting for the link to come up
        self._handle: asyncio.TimerHandle | None = None
        self._stopped = False

    def became_modern(self) -> None:
        """The peer is one of ours: its link may close when idle (counted from now)."""
        self._idle.became_modern(self._loop.time())
        self._rearm()

    def pipes_changed(self, labels: Iterable[str]) -> None:
        """The link's pipes are now those labelled ``labels``.

        Each is a connection (or a datagram socket's pipe), except the
        peer-level ``"channel"``, which every link has.
        """
        self._count = sum(label != LEGACY_LABEL for label in labels)
        self._changed()

    @contextmanager
    def opening(self) -> Iterator[None]:
        """A connection waits for the link to come up: the link is not idle meanwhile."""
        self._opening += 1
        self._changed()
        try:
            yield
        finally:
            self._opening -= 1
            self._changed()

    def stop(self) -> None:
        """The link failed or closed: never fire (idempotent)."""
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _changed(self) -> None:
        self._idle.connections(self._count + self._opening, self._loop.time())
        self._rearm()

    def _rearm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        deadline = self._idle.deadline()
        if not self._stopped and deadline != float("inf"):
            self._handle = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self._stopped:
            return
        if not self._idle.expired(self._loop.time()):
            self._rearm()
            return
        self.stop()
        logger.info("closing the idle link to %s", self._peer_id)
        self._on_idle()
