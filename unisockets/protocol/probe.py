"""Goodbye is not death: a probe of a peer link over the data plane (sans-IO).

When signaling says a peer left (``goodbye``, docs/protocol.md, "Leave"), the
original closes its link to that peer. But the server only knows that the
peer's *WebSocket* closed: a peer whose process died, and a peer whose
signaling alone died (a NAT dropped its TCP connection, the server
restarted) look the same to it. The link itself knows better: a live peer
answers on it. So a modern link (both ends ours, docs/protocol.md, "Legacy
peers") probes before it fails (docs/protocol.md, "Goodbye is not death"):

- The node that was told the peer left sends :func:`probe` on the link's
  ``"channel"`` (the channel that carried the hello and, on a modern link,
  nothing else).
- A node of ours that receives a probe on ``"channel"`` answers it at once
  with :func:`answer` (the same nonce).
- The answer within :data:`PROBE_TIMEOUT` seconds keeps the link: its pipes
  never notice. No answer fails it with the reason "``<peer> left``", as
  before: a dead process is still seen within the probe timeout of its
  goodbye.

Legacy links fail at once, as the original does (an original node would
read a probe as data). A node of ours from before the probe discards it
(it drops anything on a modern ``"channel"`` after the hello) and its links
fail after the timeout, as before but later. The decision and the state are
:class:`~unisockets.protocol.negotiation.Negotiation`'s (input
:class:`~unisockets.protocol.negotiation_events.PeerLeft`, output
:class:`~unisockets.protocol.negotiation_events.SendOnChannel`), so every
driver, the browser's included, probes alike.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "PROBE_PREFIX",
    "PROBE_REPLY_PREFIX",
    "PROBE_TIMEOUT",
    "answer",
    "is_probe",
    "probe",
    "reply_to",
]

#: What a probe starts with (UTF-8), then its nonce: decimal digits.
PROBE_PREFIX: Final = b"unisockets/2 probe "
#: What the answer to a probe starts with, then the probe's nonce.
PROBE_REPLY_PREFIX: Final = b"unisockets/2 probe-reply "
#: Seconds a probe waits for its answer before the link fails. Below 2 s, so that a
#: dead peer is still seen within 2 s of the server's goodbye; a live peer answers in
#: a round trip plus its event loop's delay (milliseconds, a few hundred under load).
PROBE_TIMEOUT: Final = 1.5
#: Longest nonce accepted in a probe, in digits.
_MAX_NONCE_DIGITS: Final = 20


def probe(nonce: int) -> bytes:
    """The probe with ``nonce`` (a non-negative integer), as sent on ``"channel"``.

    Args:
        nonce: tells this probe's answer from an earlier one's.

    Returns:
        :data:`PROBE_PREFIX` followed by ``nonce`` in decimal.

    Raises:
        ValueError: ``nonce`` is negative or has more than 20 digits.
    """
    text = str(nonce).encode()
    if nonce < 0 or len(text) > _MAX_NONCE_DIGITS:
        raise ValueError(f"a probe nonce is 0..{10**_MAX_NONCE_DIGITS - 1}, not {nonce}")
    return PROBE_PREFIX + text


def is_probe(data: bytes) -> bool:
    """Whether a message on ``"channel"`` is a well-formed probe (to be answered)."""
    nonce = data[len(PROBE_PREFIX) :]
    return data.startswith(PROBE_PREFIX) and 0 < len(nonce) <= _MAX_NONCE_DIGITS and nonce.isdigit()


def answer(data: bytes) -> bytes:
    """The answer to the probe ``data`` (check it with :func:`is_probe` first).

    Args:
        data: a probe.

    Returns:
        :data:`PROBE_REPLY_PREFIX` followed by the probe's nonce.

    Raises:
        ValueError: ``data`` is not a probe.
    """
    if not is_probe(data):
        raise ValueError(f"not a probe: {data[:40]!r}")
    return PROBE_REPLY_PREFIX + data[len(PROBE_PREFIX) :]


def reply_to(nonce: int) -> bytes:
    """The answer expected to the probe with ``nonce``."""
    return answer(probe(nonce))
