"""The signaling client's keepalive: WebSocket pings, and when a silent server is dead (private).

Part of :mod:`unisockets.signaling.client` (see ``keepalive`` in
:func:`~unisockets.signaling.client.open_signaling_client`): a session pings
the server (WebSocket pings, RFC 6455 section 5.5.2) and ends when it stops
answering, so that a connection a NAT forgot is noticed and replaced. The
decisions (when to ping, when the connection is dead) are
:class:`~unisockets.protocol.consent.ConsentFreshness`'s, the rule of ICE
consent freshness (RFC 7675) that tolerates a starved process.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import trio

from unisockets.protocol.consent import EXPIRE, SEND_CHECK, ConsentFreshness, ConsentPolicy

from ._client_connection import ClientWebSocket, ConnectionClosed


class Keepalive:
    """The pings of one session's WebSocket; :meth:`run` them in the session's nursery.

    Args:
        ws: the session's WebSocket.
        policy: how often to ping and when to give up.
        on_dead: called once with a reason when the server stopped answering
            (the driver ends the session).
    """

    def __init__(
        self, ws: ClientWebSocket, policy: ConsentPolicy, on_dead: Callable[[str], None]
    ) -> None:
        self._ws = ws
        self._policy = policy
        self._on_dead = on_dead
        self._freshness = ConsentFreshness(trio.current_time(), policy, random.Random())
        self._changed = trio.Event()

    def heard(self, now: float) -> None:
        """A frame came from the server at ``now`` (seconds): it is alive, as a pong says."""
        self._freshness.check_answered(now)

    async def run(self) -> None:
        """Ping as the policy says; return once the server is found dead (after ``on_dead``)."""
        freshness = self._freshness
        async with trio.open_nursery() as pings:
            while True:
                action = freshness.poll(trio.current_time())
                if action is SEND_CHECK:
                    pings.start_soon(self._ping)
                    continue
                if action is EXPIRE:
                    silent = trio.current_time() - freshness.last_answer
                    self._on_dead(
                        f"no answer from the signaling server for {silent:.0f} s "
                        f"({freshness.unanswered} pings): the connection is dead"
                    )
                    pings.cancel_scope.cancel()
                    return
                self._changed = trio.Event()
                with trio.move_on_at(freshness.deadline()):
                    await self._changed.wait()

    async def _ping(self) -> None:
        """One ping: its pong (within one stretched interval) answers it."""
        policy = self._policy
        with trio.move_on_after(policy.interval * (1 + policy.jitter)) as waiting:
            try:
                await self._ws.ping()
            except ConnectionClosed:
                return  # the session is ending anyway
        if waiting.cancelled_caught:
            self._freshness.check_unanswered(trio.current_time())
        else:
            self._freshness.check_answered(trio.current_time())
        self._changed.set()
