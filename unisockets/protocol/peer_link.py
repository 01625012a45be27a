"""What two nodes' peer link says on the wire, and the verdicts drawn from it (sans-IO).

Shared by every driver of a peer link (aiortc natively, the browser's
``RTCPeerConnection`` in Pyodide), so that both speak and judge alike
(docs/protocol.md, "Legacy peers"):

- Glare, both sides offering at once, is settled by node id:
  :func:`offer_wins`.
- The original unisockets has one data channel per pair of nodes,
  :data:`LEGACY_LABEL`. Ours is opened by the offerer with the DCEP
  sub-protocol :data:`MODERN_PROTOCOL`, and a modern answerer replies
  :data:`HELLO` on it. An offerer that sees neither the hello nor other bytes
  within :data:`HELLO_GRACE` seconds of the channel opening takes its peer for
  an original node.
- That grace is a timer, and on a starved CPU a hello can be late. So a
  modern answerer also marks its SDP answer with :data:`MODERN_ANSWER_ATTRIBUTE`
  (:func:`mark_answer`; an SDP attribute that original nodes and browsers
  ignore, RFC 8866 section 5.13), and an offerer that finds it
  (:func:`answer_is_modern`) knows its peer is modern at once, with no timer.
  The hello stays for answerers that predate the mark.
"""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = [
    "ANSWERS_ATTRIBUTE",
    "HELLO",
    "HELLO_GRACE",
    "LEGACY_LABEL",
    "MODERN_ANSWER_ATTRIBUTE",
    "MODERN_PROTOCOL",
    "answer_is_modern",
    "answered_ufrag",
    "candidate_types",
    "describe_ice_failure",
    "mark_answer",
    "offer_wins",
]

#: The label of the peer-level data channel the original unisockets opens.
LEGACY_LABEL: Final = "channel"
#: The DCEP sub-protocol of our ``"channel"``: "the offerer opens one channel per connection".
MODERN_PROTOCOL: Final = "unisockets/2"
#: What a modern answerer sends, once, on a ``"channel"`` that carries MODERN_PROTOCOL
#: (UTF-8; browsers send it as a text message, which arrives as these bytes).
HELLO: Final = b"unisockets/2 hello"
#: Seconds an offerer waits for the hello after its ``"channel"`` opened; then: legacy.
#: Only answerers without :data:`MODERN_ANSWER_ATTRIBUTE` (original nodes, and ours of
#: before it) are judged by it, so a busy loop cannot make a current node look legacy.
HELLO_GRACE: Final = 3.0
#: The SDP attribute line a modern answerer adds to its answer.
MODERN_ANSWER_ATTRIBUTE: Final = "a=unisockets:2"
#: The SDP attribute a modern answer carries with the ICE ufrag of the offer it
#: answers (``a=unisockets-answers:<ufrag>``): an offerer that made a new offer
#: since (signaling rejoined) tells a late answer to its old one apart.
ANSWERS_ATTRIBUTE: Final = "a=unisockets-answers:"


def mark_answer(sdp: str, offer_ufrag: str | None = None) -> str:
    """Add :data:`MODERN_ANSWER_ATTRIBUTE` to an SDP answer we send (once).

    Args:
        sdp: the answer's SDP, as the WebRTC stack made it (CRLF lines).
        offer_ufrag: the ``a=ice-ufrag`` of the offer it answers; when given,
            an :data:`ANSWERS_ATTRIBUTE` line with it follows (unknown
            attributes are ignored by other stacks, RFC 8866 section 5.13).

    Returns:
        The SDP with the attribute(s) as its last lines; unchanged if it has them.
    """
    if not sdp.endswith("\r\n") and sdp:
        sdp += "\r\n"
    if not answer_is_modern(sdp):
        sdp += MODERN_ANSWER_ATTRIBUTE + "\r\n"
    if offer_ufrag is not None and answered_ufrag(sdp) is None:
        sdp += ANSWERS_ATTRIBUTE + offer_ufrag + "\r\n"
    return sdp


def answered_ufrag(sdp: str) -> str | None:
    """The ICE ufrag of the offer an SDP answer says it answers (:data:`ANSWERS_ATTRIBUTE`).

    Args:
        sdp: the answer's SDP.

    Returns:
        The ufrag, or None when the answer does not say (an original node, or
        ours of before the attribute).
    """
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith(ANSWERS_ATTRIBUTE):
            return line[len(ANSWERS_ATTRIBUTE) :]
    return None


def answer_is_modern(sdp: str) -> bool:
    """Whether an SDP answer comes from a modern answerer (it has our attribute line).

    Args:
        sdp: the answer's SDP.

    Returns:
        True if one of its lines is exactly :data:`MODERN_ANSWER_ATTRIBUTE`.
    """
    return any(line.strip() == MODERN_ANSWER_ATTRIBUTE for line in sdp.splitlines())


def _id_key(node_id: str) -> tuple[int, int, str]:
    """Order node ids: IP addresses numerically, anything else after them as text."""
    try:
        return (0, int(ipaddress.ip_address(node_id)), "")
    except ValueError:
        return (1, 0, node_id)


def offer_wins(local_id: str, peer_id: str) -> bool:
    """Whether our offer beats the peer's when both offer at once: the lower id wins.

    Ids are compared as IPv4 addresses, so ``10.0.0.9`` wins over ``10.0.0.10``.

    Args:
        local_id: our node id.
        peer_id: the peer's node id.

    Returns:
        True if ``local_id`` orders before ``peer_id``.
    """
    return _id_key(local_id) < _id_key(peer_id)


def candidate_types(sdp: str) -> set[str]:
    """The ICE candidate types (``host``, ``srflx``, ``prflx``, ``relay``) an SDP lists.

    Args:
        sdp: a session description, or a single ``candidate:...`` line.

    Returns:
        The set of ``typ`` values of its candidate lines (empty if none).
    """
    found: set[str] = set()
    for line in sdp.splitlines():
        if "candidate:" not in line:
            continue
        words = line.split()
        for index, word in enumerate(words[:-1]):
            if word == "typ":
                found.add(words[index + 1])
                break
    return found


def describe_ice_failure(
    peer_id: str,
    ice_state: str,
    local_types: set[str],
    remote_types: set[str],
    *,
    ice_servers: bool,
) -> str:
    """Say why a peer link to ``peer_id`` could not connect, and what would help.

    Args:
        peer_id: the peer's node id.
        ice_state: the ICE connection state when the link gave up
            (``"failed"``, ``"checking"``, ``"new"``, ...).
        local_types: the candidate types we gathered.
        remote_types: the candidate types the peer sent us.
        ice_servers: whether STUN or TURN servers were configured.

    Returns:
        One sentence naming the ICE state, the candidates of both sides and a
        hint (docs/getting-started.md, "STUN and TURN").
    """

    def listed(types: set[str]) -> str:
        return ", ".join(sorted(types)) or "none"

    text = (
        f"ICE could not connect to {peer_id} (ICE state {ice_state}; candidates "
        f"gathered here: {listed(local_types)}; received from the peer: {listed(remote_types)})"
    )
    if not remote_types:
        hint = "the peer sent no candidates: is it reachable through signaling, and gathering?"
    elif not ice_servers:
        hint = (
            "no STUN/TURN server is configured, so only direct addresses were tried: peers "
            "behind NATs need a STUN server, and behind symmetric NATs or firewalls a TURN "
            "server (rtc_configuration, or --ice-server on the command line)"
        )
    elif "relay" not in local_types | remote_types:
        hint = "no relay candidate on either side: a TURN server (turn: or turns:) may help"
    else:
        hint = "even the relay candidates failed: check the TURN server and its credentials"
    return f"{text}: {hint}"
