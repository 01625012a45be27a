"""The asyncio driver of the sans-IO core, on any runtime's WebSocket and WebRTC.

The decisions live in :mod:`unisockets.protocol` (the signaling session, the
connection planner, the peer-link negotiation, the pipe rendezvous, the
stream framing, the socket states); this package does only the I/O, timers
and tasks around them, on asyncio, against the browser's API shapes
(``WebSocket``, ``RTCPeerConnection``, ``RTCDataChannel``). A
:class:`~unisockets.driver.runtime.Runtime` makes those objects:

- :mod:`unisockets.browser`: the page's own, under Pyodide;
- :mod:`unisockets.aio`: aiortc and a wsproto WebSocket, in a native
  program's asyncio loop (what :func:`unisockets.open_node` runs under asyncio).

It imports nothing outside the standard library and :mod:`unisockets.protocol`
(it must load under Pyodide). Modules: :mod:`.join` (joining, the node's
lifetime), :mod:`.node` (nodes), :mod:`.connections` (connect and accept),
:mod:`.listeners`, :mod:`.signaling`, :mod:`.links` (the set of peer links),
:mod:`.peer_link` (one peer link), :mod:`.trickle` (its ICE candidates),
:mod:`.pipes`, :mod:`.streams` (over :mod:`.stream_base`),
:mod:`.legacy`, :mod:`.sockets`, :mod:`.datagrams`, :mod:`.errors`,
:mod:`.runtime`.
"""

from .errors import BrokenResourceError, BusyResourceError, ClosedResourceError, SignalingError
from .join import open_driver_node
from .node import DriverNode, Listener, SignalingStatus
from .runtime import EventListeners, Runtime
from .sockets import Socket
from .streams import Stream

__all__ = [
    "BrokenResourceError",
    "BusyResourceError",
    "ClosedResourceError",
    "DriverNode",
    "EventListeners",
    "Listener",
    "Runtime",
    "SignalingError",
    "SignalingStatus",
    "Socket",
    "Stream",
    "open_driver_node",
]
