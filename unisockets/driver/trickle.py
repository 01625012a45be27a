"""ICE candidates of one peer link in the asyncio driver: ours trickled out, the peer's added.

docs/protocol.md, "Peer link": candidates travel as JSON
``RTCIceCandidateInit`` strings (``candidate.toJSON()``) in ``candidate``
messages, and only after the description they belong to (a peer that gets a
candidate before our offer or answer has no link to add it to). Which of the
peer's candidates are added, and when, is decided by
:class:`unisockets.protocol.negotiation.Negotiation` (its
:class:`~unisockets.protocol.negotiation_events.AddCandidates` output); this
module carries both directions out on the runtime's peer connection.
"""

from __future__ import annotations

from typing import Any

from ..protocol.negotiation_events import AddCandidates
from .errors import SignalingError
from .runtime import Runtime, logger
from .signaling import DriverSignaling

__all__ = ["CandidateTrickle"]


class CandidateTrickle:
    """One peer link's candidates (see the module docstring).

    Args:
        peer_id: the peer's node id.
        signaling: the node's signaling session (our candidates go out there).
        runtime: the platform (it formats candidates and the ``addIceCandidate`` argument).
    """

    def __init__(self, peer_id: str, signaling: DriverSignaling, runtime: Runtime) -> None:
        self.peer_id = peer_id
        self._signaling = signaling
        self._runtime = runtime
        self._description_sent = False
        self._held: list[str] = []

    def reset(self) -> None:
        """A new peer connection: hold our candidates until its description was sent."""
        self._description_sent = False
        self._held.clear()

    def local(self, candidate: Any) -> None:
        """Send one of our candidates (an ``RTCIceCandidate``), or hold it till the description.

        While signaling is away it is dropped (the link completes without it, or times out).
        """
        text = self._runtime.candidate_json(candidate)
        if not self._description_sent:
            self._held.append(text)
            return
        try:
            self._signaling.send_candidate(self.peer_id, text)
        except SignalingError as exc:
            logger.debug("candidate for %s dropped: %s", self.peer_id, exc)

    def description_sent(self) -> None:
        """Our offer or answer went out: send the candidates held for it.

        Raises:
            SignalingError: signaling is away (the link fails, as its description could not go).
        """
        self._description_sent = True
        held, self._held = self._held, []
        for text in held:
            self._signaling.send_candidate(self.peer_id, text)

    async def add_remote(self, pc: Any, output: AddCandidates) -> None:
        """Add the peer's candidates the negotiation let through to ``pc``.

        A candidate ``pc`` refuses (an unparsable line) is logged and skipped.
        """
        for candidate in output.candidates:
            fields = {
                "candidate": candidate.line,
                "sdpMid": candidate.sdp_mid,
                "sdpMLineIndex": candidate.sdp_mline_index,
                "usernameFragment": candidate.ufrag,
            }
            try:
                await pc.addIceCandidate(
                    self._runtime.options({k: v for k, v in fields.items() if v is not None})
                )
            except Exception as exc:  # an unparsable line
                logger.info("candidate from %s refused: %s", self.peer_id, exc)
