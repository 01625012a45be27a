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

:func:`retry_pipe` is the connecting side's rule for a pipe that failed to
open on its link (both drivers' ``open_pipe``): try once more on a new link
if the link was replaced (signaling was lost, or the peer restarted it), or
was connected when the call began and died under it (stale).
"""

from __future__ import annotations

import enum
from typing import Protocol

from .negotiation_events import PeerKind

__all__ = ["FailedLink", "LinkWait", "PipeRetry", "retry_pipe"]


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


class PipeRetry(enum.Enum):
    """What a connecting side does when its pipe failed to open (:func:`retry_pipe`)."""

    RAISE = "raise"  # the failure is the caller's
    RETRY = "retry"  # open the pipe once more, on the peer's next link (made if none)
    FAIL_AND_RETRY = "fail-and-retry"  # the link still counts as up but is dead: fail it, retry


class FailedLink(Protocol):
    """What :func:`retry_pipe` reads of a driver's peer link (both drivers' links have it)."""

    replaced: bool  # it failed because a new link to the peer takes over
    failure: BaseException | None  # why it failed, None while it has not

    @property
    def kind(self) -> PeerKind | None:
        """The peer's kind once known."""
        ...


def retry_pipe(link: FailedLink, *, was_connected: bool, closing: bool) -> PipeRetry:
    """Whether a pipe that failed to open on a link is opened once more on a new link.

    The connecting side's rule of both drivers' ``open_pipe``: it makes the
    next link itself (a :class:`LinkWait` that offers), so it tries once
    more only where a new link can help: the link was replaced while the
    pipe waited on it, or it was connected when the call began (stale: the
    peer restarted it, closed it a moment ago, or a new node took the id
    and the probe of the old link failed; docs/protocol.md, "Goodbye is not
    death"). The driver calls this at most once per ``open_pipe`` call.

    Args:
        link: the link the pipe failed on: whether it was ``replaced``
            (:class:`~unisockets.protocol.negotiation_events.Fail`
            ``replaced``), has failed by now (``failure``), and the peer's
            ``kind`` (a live legacy link carries no pipes).
        was_connected: the link was connected when the call took it.
        closing: the node is closing.

    Returns:
        :attr:`PipeRetry.RAISE` for a closing node, a fresh link of ours
        that failed, or a live legacy link; :attr:`PipeRetry.RETRY` when the
        link failed; :attr:`PipeRetry.FAIL_AND_RETRY` when it still counts
        as up (a channel cannot fail to open on a live link: it is dead).
    """
    wait = LinkWait(offer=True)
    go_on = wait.go_on(was_connected=was_connected, peer_left=False, replaced=link.replaced)
    if closing or not go_on:
        return PipeRetry.RAISE
    if link.failure is not None:
        return PipeRetry.RETRY
    return PipeRetry.RAISE if link.kind is PeerKind.LEGACY else PipeRetry.FAIL_AND_RETRY
