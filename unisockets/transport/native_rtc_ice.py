"""The ICE servers the native WebRTC backend can use: STUN yes, TURN no.

The native core (``unisockets._rtc``) gathers a server-reflexive candidate
itself: it sends a STUN Binding request (RFC 8489) from the link's own UDP
socket to each ``stun:`` server and adds the XOR-MAPPED-ADDRESS of the answer
as a local candidate, trickled to the peer. It has no TURN client, so a
configuration with a ``turn:`` or ``turns:`` server is served by the aiortc
backend (``webrtc_backend="auto"`` picks it; ``"native"`` refuses it), and so
is ``stuns:`` (STUN over TLS). docs/transport.md, "The native backend".
"""

from __future__ import annotations

import ipaddress
import math
import socket

import anyio
from aiortc import RTCConfiguration
from aiortc.rtcicetransport import parse_stun_turn_uri

__all__ = [
    "STUN_TIMEOUT",
    "ice_server_urls",
    "native_supports",
    "resolve_stun_servers",
    "stun_urls",
]

#: Seconds a link waits at most for a STUN server's answer (RFC 8489 retransmits
#: at 0.5, 1.5, 3.5 s); the link does not wait for it to connect over its host
#: candidate, and a later answer is ignored.
STUN_TIMEOUT = 4.0


def ice_server_urls(configuration: RTCConfiguration | None) -> list[str]:
    """Every URL of a configuration's ICE servers, in order.

    Args:
        configuration: aiortc's configuration, or None.

    Returns:
        The URLs (``RTCIceServer.urls`` is one string or a list of them).
    """
    if configuration is None or not configuration.iceServers:
        return []
    urls: list[str] = []
    for server in configuration.iceServers:
        urls.extend([server.urls] if isinstance(server.urls, str) else list(server.urls))
    return urls


def native_supports(configuration: RTCConfiguration | None) -> bool:
    """Whether the native backend serves ``configuration``: no ICE server but ``stun:`` ones.

    Args:
        configuration: aiortc's configuration, or None.

    Returns:
        True when every ICE server URL is a ``stun:`` URL (or there are none).
    """
    return all(url.partition(":")[0].lower() == "stun" for url in ice_server_urls(configuration))


def stun_urls(configuration: RTCConfiguration | None) -> list[tuple[str, int]]:
    """The ``(host, port)`` of each ``stun:`` server (RFC 7064; port 3478 by default).

    Args:
        configuration: aiortc's configuration, or None.

    Returns:
        The servers, in order (host names not resolved yet).

    Raises:
        ValueError: a ``turn:``, ``turns:`` or ``stuns:`` server (the native
            backend has no TURN client), or a URL that does not parse.
    """
    servers: list[tuple[str, int]] = []
    for url in ice_server_urls(configuration):
        if url.partition(":")[0].lower() != "stun":
            raise ValueError(
                f"the native WebRTC backend has no TURN client ({url!r}): use "
                "webrtc_backend='aiortc' (or 'auto', which picks it) for turn: servers"
            )
        try:
            parsed = parse_stun_turn_uri(url)
        except ValueError:
            raise ValueError(f"expected stun:HOST[:PORT], got {url!r}") from None
        servers.append((str(parsed["host"]), int(parsed["port"])))
    return servers


async def resolve_stun_servers(
    servers: list[tuple[str, int]], *, ipv6: bool, seconds: float = STUN_TIMEOUT
) -> list[tuple[str, int]]:
    """Resolve STUN server names to addresses of the host candidate's family.

    Runs under trio and asyncio (anyio's :func:`anyio.getaddrinfo`).

    Args:
        servers: ``(host, port)`` pairs from :func:`stun_urls`.
        ipv6: whether the link's UDP socket is IPv6 (else IPv4).
        seconds: how long the resolution may take in all.

    Returns:
        ``(ip, port)`` pairs; a name that does not resolve in time, or only
        to the other family, is left out (the link then has host candidates only).
    """
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    resolved: list[tuple[str, int]] = []
    with anyio.move_on_after(seconds if math.isfinite(seconds) else STUN_TIMEOUT):
        for host, port in servers:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                try:
                    infos = await anyio.getaddrinfo(
                        host, port, family=family, type=socket.SOCK_DGRAM
                    )
                except OSError:
                    continue
                resolved.extend((str(info[4][0]), port) for info in infos[:1])
                continue
            if (address.version == 6) == ipv6:
                resolved.append((str(address), port))
    return resolved
