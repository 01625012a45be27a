"""Fixtures for the WebRTC transport tests: transports wired by an in-test signaling relay.

The relay (:class:`DirectSignal`) stands in for the signaling server: what
one transport sends goes straight into the other's ``handle_*`` method, in
one trio process. It can also strip the candidates out of SDPs so that only
trickled ``candidate`` messages connect the peers (as browsers do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from unisockets.transport.base import SignalSender
from unisockets.transport.webrtc import LOOPBACK, WebRTCTransport, open_webrtc_transport

from ..cpu_load import cpu_load  # noqa: F401 - a fixture for this folder's tests


def strip_candidates(sdp: str) -> str:
    """Remove ``a=candidate`` and ``a=end-of-candidates`` lines from an SDP."""
    lines = sdp.split("\r\n")
    return "\r\n".join(
        line
        for line in lines
        if not line.startswith("a=candidate") and not line.startswith("a=end-of-candidates")
    )


async def wait_until(predicate: Callable[[], bool], *, interval: float = 0.005) -> None:
    """Poll ``predicate`` until it is true (for states no event announces; wrap in fail_after)."""
    while not predicate():  # noqa: ASYNC110 - the state has no event to wait on
        await trio.sleep(interval)


class DirectSignal(SignalSender):
    """Delivers one transport's signaling straight to other transports' ``handle_*``.

    Attributes:
        sender_id: the id of the transport this relay sends for.
        peers: the transports it can reach, by id (filled in by the test).
        sent: every message sent, as ``(kind, peer_id)`` tuples, in order.
        rewrite_sdp: applied to every SDP before delivery.
        drop: when it returns True for ``(kind, peer_id)``, the message is dropped.
    """

    def __init__(self, sender_id: str) -> None:
        self.sender_id = sender_id
        self.peers: dict[str, WebRTCTransport] = {}
        self.sent: list[tuple[str, str]] = []
        self.rewrite_sdp: Callable[[str], str] = lambda sdp: sdp
        self.drop: Callable[[str, str], bool] = lambda kind, peer_id: False

    def _target(self, kind: str, peer_id: str) -> WebRTCTransport | None:
        self.sent.append((kind, peer_id))
        if self.drop(kind, peer_id):
            return None
        return self.peers.get(peer_id)

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        """Deliver an offer to ``peer_id``'s transport."""
        target = self._target("offer", peer_id)
        if target is not None:
            await target.handle_offer(self.sender_id, self.rewrite_sdp(sdp))

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        """Deliver an answer to ``peer_id``'s transport."""
        target = self._target("answer", peer_id)
        if target is not None:
            await target.handle_answer(self.sender_id, self.rewrite_sdp(sdp))

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        """Deliver a candidate to ``peer_id``'s transport."""
        target = self._target("candidate", peer_id)
        if target is not None:
            await target.handle_candidate(self.sender_id, candidate)


class Mesh:
    """Several transports wired together through :class:`DirectSignal` relays.

    Attributes:
        transports: the transports by id.
        signals: their relays by id.
    """

    def __init__(self) -> None:
        self.transports: dict[str, WebRTCTransport] = {}
        self.signals: dict[str, DirectSignal] = {}

    def __getitem__(self, node_id: str) -> WebRTCTransport:
        return self.transports[node_id]


@asynccontextmanager
async def open_mesh(*ids: str, **options: Any) -> AsyncIterator[Mesh]:
    """Open one loopback WebRTC transport per id, each able to signal every other."""
    mesh = Mesh()
    async with AsyncExitStack() as stack:
        for node_id in ids:
            signal = DirectSignal(node_id)
            transport = await stack.enter_async_context(
                open_webrtc_transport(node_id, signal, host_addresses=LOOPBACK, **options)
            )
            mesh.signals[node_id] = signal
            mesh.transports[node_id] = transport
        for signal in mesh.signals.values():
            signal.peers.update(mesh.transports)
        yield mesh


@pytest.fixture
def mesh_factory() -> Callable[..., object]:
    """:func:`open_mesh`, as a fixture for tests that prefer one."""
    return open_mesh
