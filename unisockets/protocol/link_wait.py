"""Whether a connection waiting on a peer link goes on to the peer's next link (sans-IO).

docs/protocol.md, "Lazy peer links": a link that carries no connection closes
after the idle timeout, on each side by its own timer. So a connection can
start on a link that is about to close: the peer closed its side a moment ago
and is connecting again on a new link, while our side of the old link has not
noticed yet (its idle timer, or the SCTP close, comes a moment later). A
connection that was waiting on that old link (for it to be connected, or for
the peer's kind) must not fail with it: the peer's next link carries it.

:class:`LinkWait` decides, for one such wait, each time the link it waited on
fails: go on to the peer's next link, or give up (raise). Shared by every
driver (trio over aiortc, asyncio in the browser); the caller bounds the
whole wait by its own timeout. It reads no clock and does no I/O.
"""

from __future__ import annotations

__all__ = ["LinkWait"]


class LinkWait:
    """One connection's wait on the link to its peer, across links that fail under it.

    Args:
        offer: True when this node connects (it makes the next link itself:
            one more try, and only on a link that was connected when the wait
            began, i.e. stale), False when the peer connects to us (it makes
            the next link: wait for it, however many fail, within the
            caller's timeout).
    """

    def __init__(self, *, offer: bool) -> None:
        self.offer = offer
        self._retried = False

    def go_on(self, *, was_connected: bool, peer_left: bool, replaced: bool) -> bool:
        """The link this wait was on failed: wait on the peer's next link (True) or raise (False).

        Args:
            was_connected: the link was connected when the wait took it (it
                may have been closed by the peer a moment before: stale).
            peer_left: signaling said the peer left (``goodbye``) since the link was made.
            replaced: the link failed because a new link to the peer took over
                (the peer restarted it: :class:`~unisockets.protocol.negotiation_events.Restart`).

        Returns:
            True: take the peer's next link (the caller makes it when
            :attr:`offer`, else waits for it); False: the wait fails.
        """
        if peer_left and not replaced:
            return False  # the peer is gone: nobody makes a next link
        if not self.offer or replaced:
            return True  # the peer is making the next link (or already made it)
        if self._retried or not was_connected:
            return False  # a fresh link of ours failed: the peer is unreachable
        self._retried = True
        return True
