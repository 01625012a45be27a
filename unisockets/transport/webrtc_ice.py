"""ICE details of the WebRTC transport: host addresses, receive buffers, candidate JSON.

aiortc (through aioice) gathers host candidates on every non-loopback
interface and has no option to change that; its ICE sockets keep the
system's default receive buffer; and it puts all its candidates in the SDP
(no trickle). This module adjusts these, for our peer connections only:

- :func:`install_aioice_tuning` wraps ``aioice.ice.get_host_addresses`` so a
  loop registered with :func:`set_host_addresses` gathers on the addresses it
  chose (e.g. ``("127.0.0.1",)`` for tests and loopback-only machines), and
  falls back to 127.0.0.1 when the machine has no other address (aioice would
  gather nothing: aiortc notes, pitfall 8). Loops not registered (other
  aiortc users in the process) get aioice's own answer, unchanged.
- :func:`ice_connection` finds the aioice agent under an aiortc peer
  connection (the one path into aiortc's internals, for the two below and
  :mod:`unisockets.transport.webrtc_consent`).
- :func:`raise_receive_buffers` gives one peer connection's ICE sockets
  :data:`UDP_RECEIVE_BUFFER` bytes of receive buffer (a small buffer drops
  bursts: aiortc notes, pitfall 2).
- Consent freshness is per peer connection too: see
  :mod:`unisockets.transport.webrtc_consent`. No aioice module setting is
  changed.
- :func:`candidate_to_json` / :func:`candidate_from_json` convert between
  aiortc's :class:`aiortc.RTCIceCandidate` and the JSON ``RTCIceCandidateInit``
  strings that ``candidate`` messages carry (docs/protocol.md, "Peer link").
- :func:`local_candidates` lists an SDP's candidates as such JSON strings, so
  trickling peers (browsers, original nodes) get them as messages too.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import json
import socket
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCIceCandidate
from aiortc.sdp import SessionDescription, candidate_from_sdp, candidate_to_sdp

__all__ = [
    "UDP_RECEIVE_BUFFER",
    "candidate_from_json",
    "candidate_to_json",
    "ice_connection",
    "install_aioice_tuning",
    "local_candidates",
    "raise_receive_buffers",
    "remote_ufrags",
    "gather_on",
    "gather_reset",
    "set_host_addresses",
]

#: UDP receive buffer for our ICE sockets, bytes (the system default, ~208 KiB, drops
#: bursts; the kernel caps it at ``net.core.rmem_max``).
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

_install_lock = threading.Lock()
_installed = False
_original_get_host_addresses = aioice.ice.get_host_addresses
#: Per-loop host addresses; a registered loop maps to None for "aioice's choice".
_loop_addresses: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, ...] | None] = (
    weakref.WeakKeyDictionary()
)


#: Host addresses for gathering done in this context (set around one call, see below).
_context_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "unisockets_host_addresses"
)


def gather_on(addresses: Sequence[str] | None) -> contextvars.Token[tuple[str, ...] | None]:
    """Gather host candidates on ``addresses`` in the current context (until the token is reset).

    For peer connections on someone else's event loop (the asyncio driver,
    :mod:`unisockets.aio`): set it around our own ``setLocalDescription``
    (aiortc gathers there, in tasks that inherit the context), so that only
    our peer connections are affected, not other aiortc users of that loop.
    Installs the hook (:func:`install_aioice_tuning`).

    Args:
        addresses: as :func:`set_host_addresses`.

    Returns:
        The token for ``_context_addresses.reset`` (:func:`gather_reset`).

    Raises:
        ValueError: as :func:`set_host_addresses`.
    """
    if addresses is not None:
        if isinstance(addresses, str) or not addresses:
            raise ValueError("host addresses must be a non-empty sequence of IP addresses")
        for address in addresses:
            ipaddress.ip_address(address)
        addresses = tuple(addresses)
    install_aioice_tuning()
    return _context_addresses.set(addresses)


def gather_reset(token: contextvars.Token[tuple[str, ...] | None]) -> None:
    """Undo :func:`gather_on`."""
    _context_addresses.reset(token)


def install_aioice_tuning() -> None:
    """Install the host-address hook in aioice (idempotent, thread-safe).

    Host-address selection changes only for loops registered with
    :func:`set_host_addresses`; on any other loop aioice answers as before.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        aioice.ice.get_host_addresses = _get_host_addresses
        _installed = True


def set_host_addresses(loop: asyncio.AbstractEventLoop, addresses: Sequence[str] | None) -> None:
    """Choose the local addresses that peer connections on ``loop`` gather host candidates on.

    Args:
        loop: the asyncio loop the peer connections run on (forgotten when it is
            garbage-collected).
        addresses: IP address strings (IPv4 or IPv6), e.g. ``("127.0.0.1",)``;
            ``None`` for aioice's choice (every non-loopback interface), with
            127.0.0.1 when there is no such interface.

    Raises:
        ValueError: an entry is not an IP address, or the sequence is empty.
    """
    if addresses is not None:
        if isinstance(addresses, str) or not addresses:
            raise ValueError("host addresses must be a non-empty sequence of IP addresses")
        for address in addresses:
            ipaddress.ip_address(address)  # raises ValueError
        addresses = tuple(addresses)
    _loop_addresses[loop] = addresses


def ice_connection(pc: Any) -> Any | None:
    """The aioice ``Connection`` (ICE agent) under an aiortc peer connection's data channels.

    Args:
        pc: an :class:`aiortc.RTCPeerConnection` whose SCTP transport exists.

    Returns:
        The ``aioice.Connection``, or None if the peer connection has no SCTP
        transport yet or aiortc's internals are not as expected.
    """
    sctp = getattr(pc, "sctp", None)
    dtls = getattr(sctp, "transport", None)
    ice = getattr(dtls, "transport", None)
    return getattr(ice, "_connection", None)


def raise_receive_buffers(pc: Any) -> int:
    """Give a peer connection's ICE sockets :data:`UDP_RECEIVE_BUFFER` bytes of receive buffer.

    Never lowers a buffer. Reads aiortc/aioice internals (the ICE agent's
    STUN protocols); sockets it cannot reach (TURN relays, changed
    internals) are left as they are.

    Args:
        pc: an :class:`aiortc.RTCPeerConnection` whose ICE agent gathered.

    Returns:
        How many sockets were set.
    """
    connection = ice_connection(pc)
    count = 0
    for protocol in list(getattr(connection, "_protocols", ())):
        transport = getattr(protocol, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            continue
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < UDP_RECEIVE_BUFFER:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            count += 1
        except OSError:
            continue
    return count


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """aioice's host-address hook: our choice in our contexts and loops, aioice's elsewhere."""
    chosen: tuple[str, ...] | None
    try:
        chosen = _context_addresses.get()
    except LookupError:
        pass
    else:
        return _choose(chosen, use_ipv4, use_ipv6)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop not in _loop_addresses:
        return _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return _choose(_loop_addresses[loop], use_ipv4, use_ipv6)


def _choose(chosen: tuple[str, ...] | None, use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if chosen is None:
        found = _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return found or (["127.0.0.1"] if use_ipv4 else [])
    return [
        address
        for address in chosen
        if (ipaddress.ip_address(address).version == 4 and use_ipv4)
        or (ipaddress.ip_address(address).version == 6 and use_ipv6)
    ]


def candidate_to_json(
    candidate: RTCIceCandidate,
    *,
    sdp_mid: str | None,
    sdp_mline_index: int | None,
    username_fragment: str | None,
) -> str:
    """Encode one candidate as a JSON ``RTCIceCandidateInit`` (W3C WebRTC, section 4.8.1.1).

    Args:
        candidate: the aiortc candidate.
        sdp_mid: the media stream id it belongs to (``a=mid``), or None.
        sdp_mline_index: the index of its ``m=`` line, or None.
        username_fragment: the ICE ufrag of the session it belongs to, or None.

    Returns:
        A JSON object string with ``candidate`` (``"candidate:..."`` as in SDP),
        ``sdpMid``, ``sdpMLineIndex`` and ``usernameFragment``.
    """
    return json.dumps(
        {
            "candidate": "candidate:" + candidate_to_sdp(candidate),
            "sdpMid": sdp_mid,
            "sdpMLineIndex": sdp_mline_index,
            "usernameFragment": username_fragment,
        }
    )


def candidate_from_json(text: str) -> tuple[RTCIceCandidate, str | None] | None:
    """Decode a JSON ``RTCIceCandidateInit`` received in a ``candidate`` message.

    Args:
        text: the JSON string (as browsers and original nodes send it).

    Returns:
        ``(candidate, username_fragment)``, or None for the end-of-candidates
        marker (an empty ``candidate`` field).

    Raises:
        ValueError: the text is not such an object or its candidate line does not parse.
    """
    try:
        init: Any = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"candidate is not JSON: {text[:80]!r}") from exc
    if not isinstance(init, dict):
        raise ValueError("candidate JSON is not an object")
    line = init.get("candidate")
    if not isinstance(line, str):
        raise ValueError("candidate JSON has no 'candidate' string")
    if not line:
        return None
    line = line.removeprefix("a=").removeprefix("candidate:")
    try:
        candidate = candidate_from_sdp(line)
    except (AssertionError, ValueError, IndexError) as exc:  # aiortc asserts on short lines
        raise ValueError(f"bad candidate line: {line[:80]!r}") from exc
    mid = init.get("sdpMid")
    index = init.get("sdpMLineIndex")
    ufrag = init.get("usernameFragment")
    candidate.sdpMid = mid if isinstance(mid, str) else None
    candidate.sdpMLineIndex = index if isinstance(index, int) and index >= 0 else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0  # we negotiate one m= line (the data channels)
    return candidate, ufrag if isinstance(ufrag, str) else None


def local_candidates(sdp: str) -> list[str]:
    """List the candidates in an SDP as JSON ``RTCIceCandidateInit`` strings.

    Args:
        sdp: a session description (ours, from aiortc, candidates included).

    Returns:
        One JSON string per ``a=candidate`` line, in order.
    """
    description = SessionDescription.parse(sdp)
    found = []
    for index, media in enumerate(description.media):
        ufrag = media.ice.usernameFragment if media.ice is not None else None
        for candidate in media.ice_candidates:
            found.append(
                candidate_to_json(
                    candidate,
                    sdp_mid=media.rtp.muxId or None,
                    sdp_mline_index=index,
                    username_fragment=ufrag,
                )
            )
    return found


def remote_ufrags(sdp: str) -> set[str]:
    """The ICE username fragments a session description declares.

    Args:
        sdp: a session description.

    Returns:
        The set of ``a=ice-ufrag`` values (session- and media-level).
    """
    description = SessionDescription.parse(sdp)
    return {
        media.ice.usernameFragment
        for media in description.media
        if media.ice is not None and media.ice.usernameFragment
    }
