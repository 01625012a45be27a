"""When a lazy node closes a peer link that carries no connection (sans-IO).

docs/protocol.md, "Lazy peer links": a node that sets its links up on demand
also closes a link once it has carried no connection (no data channel of
ours) for ``timeout`` seconds, so that a node holds links only to the peers
it talks to. Only links to modern peers close so: an original node makes its
one link on ``greeting`` and never again, so its link stays. Shared by every
driver of a peer link; it reads no clock (``now`` is an argument, seconds on
any monotonic clock).
"""

from __future__ import annotations

import math

__all__ = ["LinkIdle"]


class LinkIdle:
    """The idle timer of one peer link.

    Args:
        timeout: seconds without a connection after which the link closes,
            > 0; ``None`` never closes it (eager links).
        now: when the link was made, seconds (a new link starts idle).

    Raises:
        ValueError: ``timeout`` is not a positive finite number or None.
    """

    def __init__(self, timeout: float | None, now: float) -> None:
        if timeout is not None and not (
            isinstance(timeout, int | float) and 0 < timeout < math.inf
        ):
            raise ValueError(f"an idle timeout is a positive number of seconds, not {timeout!r}")
        self.timeout = timeout
        self._since = now  # idle since then; inf while connections are open
        self.modern = False

    def became_modern(self, now: float) -> None:
        """The peer is known to be one of ours (its link is up): idle time counts from ``now``.

        A link set up slowly (a loaded machine, a far peer) is not closed the
        moment it is up for having been idle while it was being set up: the
        connection that asked for it has not had its turn yet.
        """
        self.modern = True
        if self._since != math.inf:
            self._since = now

    def connections(self, count: int, now: float) -> None:
        """The link now carries ``count`` connections (data channels of ours, open or opening).

        A connection waiting for the link to come up counts: its driver
        reports it before it waits, so the link is never closed under it.
        """
        if count > 0:
            self._since = math.inf
        elif self._since == math.inf:
            self._since = now

    def deadline(self) -> float:
        """When the link is to close, seconds (``inf``: not now, or never)."""
        if self.timeout is None or not self.modern:
            return math.inf
        return self._since + self.timeout

    def expired(self, now: float) -> bool:
        """Whether the link has been idle for ``timeout`` seconds at ``now``."""
        return now >= self.deadline()
