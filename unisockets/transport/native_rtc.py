"""The native WebRTC backend: message pipes over str0m (Rust), with no thread and no asyncio.

:func:`open_native_rtc_transport` is a drop-in for
:func:`~unisockets.transport.webrtc.open_webrtc_transport`: the same
:class:`~unisockets.transport.webrtc.WebRTCTransport` (links made on greeting
and on demand, pipes matched by ``(peer id, label)``, legacy peers), whose
links are :class:`~unisockets.transport.native_rtc_link.NativePeerLink`: one
str0m peer connection each, from the ``unisockets._rtc`` extension module
(the ``rtc/`` crate), driven by the link's own trio task over one UDP socket.

The extension is optional: :func:`native_available` says whether it is
installed (``make .venv/.installed`` builds it when cargo is on the PATH;
docs/transport.md, "The native backend"). :func:`open_rtc_transport` picks a
backend by name, ``"native"`` or ``"aiortc"``, or ``"auto"``: native when the
extension is present, else aiortc.

Limits of this backend (docs/transport.md): one host candidate (the first of
``host_addresses``) and a server-reflexive one per ``stun:`` server
(:mod:`~unisockets.transport.native_rtc_ice`); no TURN (a configuration with a
``turn:`` server is refused: ``"auto"`` picks aiortc for it); ICE restarts not
supported (a restarted peer gets a new link, as with aiortc).
"""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import trio
from aiortc import RTCConfiguration

from ..protocol.consent import ConsentPolicy
from .base import SignalSender
from .native_rtc_ice import native_supports, resolve_stun_servers, stun_urls
from .native_rtc_link import NativePeerLink
from .native_rtc_pipe import INLINE
from .webrtc import WebRTCTransport, open_webrtc_transport
from .webrtc_link import PeerLink

__all__ = [
    "NativeRTCTransport",
    "choose_backend",
    "native_available",
    "native_host",
    "open_native_rtc_transport",
    "open_rtc_transport",
]

Backend = Literal["auto", "native", "aiortc"]


def native_available() -> bool:
    """Whether the native core (the ``unisockets._rtc`` extension module) is installed.

    Returns:
        True if ``import unisockets._rtc`` works.
    """
    try:
        from .. import _rtc  # noqa: F401
    except ImportError:
        return False
    return True


class NativeRTCTransport(WebRTCTransport):
    """A :class:`~unisockets.transport.webrtc.WebRTCTransport` whose links are native.

    Created by :func:`open_native_rtc_transport`; the constructor is internal.
    """

    def __init__(
        self,
        local_id: str,
        signal: SignalSender,
        *,
        host: str,
        nursery: trio.Nursery,
        link_timeout: float,
        claim_timeout: float,
        consent: ConsentPolicy,
        idle_timeout: float | None = None,
        stun_servers: Sequence[tuple[str, int]] = (),
    ) -> None:
        super().__init__(
            local_id,
            signal,
            bridge=INLINE,
            nursery=nursery,
            configuration=RTCConfiguration(iceServers=[]),
            link_timeout=link_timeout,
            claim_timeout=claim_timeout,
            consent=consent,
            idle_timeout=idle_timeout,
        )
        self.host = host
        #: The (ip, port) of each STUN server every new link asks (RFC 8489 Binding).
        self.stun_servers = list(stun_servers)

    def _new_link(self, peer_id: str) -> PeerLink:
        return NativePeerLink(
            peer_id, host=self.host, stun_servers=self.stun_servers, **self._link_options()
        )


def default_host() -> str:
    """The address of the interface the default route leaves by, else 127.0.0.1.

    Found with a UDP socket "connected" to a documentation address (RFC 5737):
    connecting a UDP socket sends nothing.

    Returns:
        An IPv4 address as text.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
    return address if address != "0.0.0.0" else "127.0.0.1"


def native_host(host_addresses: Sequence[str] | None) -> str:
    """The native peers' host candidate address: the first of ``host_addresses``.

    Args:
        host_addresses: IP addresses (``ice_addresses`` of ``open_node``), or
            None for the default route's interface (:func:`default_host`).

    Returns:
        The first address, checked.

    Raises:
        ValueError: no address, or the first is not an IPv4 or IPv6 address.
    """
    hosts = list(host_addresses) if host_addresses is not None else [default_host()]
    if not hosts:
        raise ValueError("host_addresses must name at least one address")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in hosts[0] else socket.AF_INET, hosts[0])
    except (OSError, TypeError) as exc:
        raise ValueError(f"bad host address {hosts[0]!r}") from exc
    return str(hosts[0])


@asynccontextmanager
async def open_native_rtc_transport(
    local_id: str,
    signal: SignalSender,
    *,
    rtc_configuration: RTCConfiguration | None = None,
    link_timeout: float = 15.0,
    claim_timeout: float = 10.0,
    host_addresses: Sequence[str] | None = None,
    consent: ConsentPolicy | None = None,
    idle_timeout: float | None = None,
) -> AsyncIterator[NativeRTCTransport]:
    """Run a native WebRTC transport for the node ``local_id`` (see the module docstring).

    The arguments are :func:`~unisockets.transport.webrtc.open_webrtc_transport`'s.
    On exit every pipe breaks, every native peer connection is closed
    (lingering up to :data:`~unisockets.transport.webrtc_link.LINGER_TIMEOUT`
    seconds so the peer reads what was sent) and every UDP socket is closed.

    Args:
        local_id: this node's id.
        signal: where offers, answers and candidates go.
        rtc_configuration: ``stun:`` ICE servers only (each link adds a
            server-reflexive candidate from their answer; names are resolved
            once, here); None is ``RTCConfiguration(iceServers=[])``.
        link_timeout: seconds a link may take to connect, a pipe to open, and
            ``accept_pipe`` to wait.
        claim_timeout: seconds an incoming pipe waits for ``accept_pipe``.
        host_addresses: the first one is the host candidate's address (e.g.
            :data:`~unisockets.transport.webrtc.LOOPBACK`); None for the
            default route's interface (:func:`default_host`).
        consent: its ``lifetime`` is how long ICE may stay disconnected
            before the link fails (RFC 7675's 30 s by default).
        idle_timeout: close a link to a modern peer once it carried no pipe
            for this many seconds (lazy links, docs/protocol.md); None: never.

    Yields:
        The transport.

    Raises:
        ValueError: a timeout is not a positive number, a host address is
            bad, or a ``turn:``/``turns:``/``stuns:`` server was configured
            (no TURN client: use the aiortc backend).
        ImportError: the native extension is not installed (:func:`native_available`).
    """
    for name, value in (("link_timeout", link_timeout), ("claim_timeout", claim_timeout)):
        if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    stun = stun_urls(rtc_configuration)  # ValueError for TURN servers
    host = native_host(host_addresses)
    from .. import _rtc  # noqa: F401 - ImportError here, not in the first link

    stun_servers = await resolve_stun_servers(stun, ipv6=":" in host) if stun else []

    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        transport = NativeRTCTransport(
            local_id,
            signal,
            host=host,
            nursery=nursery,
            link_timeout=link_timeout,
            claim_timeout=claim_timeout,
            consent=consent or ConsentPolicy(),
            idle_timeout=idle_timeout,
            stun_servers=stun_servers,
        )
        try:
            yield transport
        except BaseException as exc:
            body_error = exc  # re-raised below, not wrapped in an ExceptionGroup
        finally:
            transport._close()  # links close their peers in their (shielded) finally
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


def open_rtc_transport(
    local_id: str,
    signal: SignalSender,
    *,
    backend: Backend = "auto",
    **options: Any,
) -> AbstractAsyncContextManager[WebRTCTransport]:
    """Open the WebRTC transport of the chosen backend (a transport factory for ``open_node``).

    Args:
        local_id: this node's id.
        signal: where offers, answers and candidates go.
        backend: ``"native"`` (str0m; ImportError without the extension),
            ``"aiortc"``, or ``"auto"``: native when :func:`native_available`
            and the ICE servers are ``stun:`` ones or none, else aiortc (the
            native backend has no TURN client).
        options: the keyword arguments of
            :func:`~unisockets.transport.webrtc.open_webrtc_transport`.

    Returns:
        The transport's async context manager.

    Raises:
        ValueError: an unknown backend.
    """
    opener = rtc_opener(backend, options.get("rtc_configuration"))
    return opener(local_id, signal, **options)


def rtc_opener(
    backend: Backend, rtc_configuration: RTCConfiguration | None = None
) -> Callable[..., AbstractAsyncContextManager[WebRTCTransport]]:
    """The transport opener of a backend name (see :func:`open_rtc_transport`).

    Args:
        backend: ``"auto"``, ``"native"`` or ``"aiortc"``.
        rtc_configuration: the configuration that will be used ("auto" picks
            aiortc when it has a ``turn:``, ``turns:`` or ``stuns:`` server).

    Returns:
        :func:`open_native_rtc_transport` or
        :func:`~unisockets.transport.webrtc.open_webrtc_transport`.

    Raises:
        ValueError: an unknown backend.
    """
    if choose_backend(backend, rtc_configuration) == "native":
        return open_native_rtc_transport
    return open_webrtc_transport


def choose_backend(
    backend: Backend, rtc_configuration: RTCConfiguration | None = None
) -> Literal["native", "aiortc"]:
    """The backend a name means, for the trio and the asyncio driver alike.

    Args:
        backend: ``"auto"``, ``"native"`` or ``"aiortc"``.
        rtc_configuration: the configuration that will be used.

    Returns:
        ``backend`` itself, or for ``"auto"``: ``"native"`` when
        :func:`native_available` and every ICE server is a ``stun:`` one
        (:func:`~unisockets.transport.native_rtc_ice.native_supports`), else ``"aiortc"``.

    Raises:
        ValueError: an unknown backend.
    """
    if backend == "native" or backend == "aiortc":
        return backend
    if backend == "auto":
        if native_available() and native_supports(rtc_configuration):
            return "native"
        return "aiortc"
    raise ValueError(f"webrtc_backend must be 'auto', 'native' or 'aiortc', not {backend!r}")
