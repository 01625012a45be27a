"""What every native asyncio runtime shares, and how ``open_node(transport=...)`` picks one.

The asyncio driver (:mod:`unisockets.driver`) runs on a
:class:`~unisockets.driver.runtime.Runtime`: objects in the browser's shapes.
Natively there are two, both with the same signaling WebSocket
(:class:`unisockets.aio.websocket.WebSocket`) and differing in their peer
connections:

- :class:`unisockets.aio.runtime.NativeRuntime`: aiortc or the native core
  (str0m), whichever ``webrtc_backend`` picks;
- :class:`unisockets.aio.memory.MemoryRuntime`: in-process peer connections
  between nodes of one :class:`unisockets.aio.memory.MemoryNetwork` (tests,
  simulations; no aiortc).

:class:`AioTransport` is what :func:`unisockets.aio.open_node` (and
:func:`unisockets.open_node` under asyncio) takes as ``transport=``: it makes
each node's runtime, as trio's ``TransportFactory`` makes each node's
transport (docs/concepts.md, "asyncio and trio").
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol.consent import ConsentPolicy
from .events import EventTarget
from .websocket import WebSocket

if TYPE_CHECKING:
    from aiortc import RTCConfiguration

__all__ = ["AioTransport", "BaseRuntime", "EventTarget", "RuntimeSettings"]

logger = logging.getLogger("unisockets.aio")


@dataclass(frozen=True)
class RuntimeSettings:
    """The arguments of :func:`unisockets.aio.open_node` that a runtime may use.

    Attributes:
        rtc_configuration: aiortc's configuration (ICE servers), or None for none.
        ice_addresses: local IP addresses to gather host candidates on, or None.
        consent: the consent-freshness policy of connected peer connections.
        ssl_context: TLS settings for ``wss://`` signaling (None: the system's).
    """

    rtc_configuration: RTCConfiguration | None = None
    ice_addresses: Sequence[str] | None = None
    consent: ConsentPolicy | None = None
    ssl_context: ssl.SSLContext | None = None


class BaseRuntime(ABC):
    """A native :class:`~unisockets.driver.runtime.Runtime`: the WebSocket and plain values.

    Subclasses make the peer connections (:meth:`peer_connection`).

    Args:
        ssl_context: TLS settings for ``wss://`` signaling (default: the system's).
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self._tasks: set[asyncio.Task[Any]] = set()
        self._websockets: set[WebSocket] = set()

    def websocket(self, url: str) -> WebSocket:
        """A WebSocket to ``url``, opening (:class:`unisockets.aio.websocket.WebSocket`).

        Raises:
            ValueError: not a ``ws://`` or ``wss://`` URL.
        """
        ws = WebSocket(url, ssl_context=self.ssl_context, track=self._track)
        self._websockets.add(ws)
        ws.addEventListener("close", lambda _: self._websockets.discard(ws))
        return ws

    @abstractmethod
    def peer_connection(self, configuration: Mapping[str, Any]) -> Any:
        """A new ``RTCPeerConnection``-shaped object (W3C WebRTC 1.0)."""

    @abstractmethod
    def ice_servers(self) -> list[dict[str, Any]]:
        """The ICE servers as W3C dicts (the driver's view of the configuration)."""

    def options(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """A plain dict."""
        return dict(mapping)

    def to_wire(self, data: bytes) -> bytes:
        """``bytes(data)``."""
        return bytes(data)

    def to_bytes(self, value: Any) -> bytes:
        """Bytes as they are; text encoded as UTF-8."""
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)

    def candidate_json(self, candidate: Any) -> str:
        """Never needed: no native runtime fires ``icecandidate`` (candidates are in the SDP)."""
        raise NotImplementedError("native peer connections do not trickle candidates")

    def is_null(self, value: Any) -> bool:
        """``value is None``."""
        return value is None

    def proxy(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """The handler itself (no foreign-function boundary)."""
        return handler

    def release(self, proxy: Any) -> None:  # noqa: B027 - a no-op natively, not abstract
        """Nothing to free."""

    def _track(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("background close failed", exc_info=task.exception())

    async def aclose(self) -> None:
        """Close what is still open and wait for every close (peer connections, WebSockets)."""
        for ws in list(self._websockets):
            ws.close(1000)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class AioTransport(ABC):
    """What ``open_node(transport=...)`` takes under asyncio: it makes each node's runtime.

    The default is ``webrtc_backend``'s (the native core where it is built,
    :class:`unisockets.aio.native_rtc.NativeTransport`, else
    :class:`unisockets.aio.runtime.AiortcTransport`);
    :class:`unisockets.aio.memory.MemoryNetwork` puts nodes of one process on
    in-memory peer connections. Under trio, ``transport=`` takes trio's
    ``unisockets.net.TransportFactory`` instead.
    """

    @abstractmethod
    def runtime(self, settings: RuntimeSettings) -> BaseRuntime:
        """A new runtime for one node.

        Args:
            settings: the node's arguments that concern the runtime.

        Returns:
            The runtime; the node awaits its :meth:`BaseRuntime.aclose` when it closes.

        Raises:
            ValueError: a bad setting (e.g. an ICE address).
        """
