"""unisockets in a browser tab: Pyodide's asyncio loop, the page's WebSocket and WebRTC.

The asyncio driver (:mod:`unisockets.driver`: the sans-IO core of
:mod:`unisockets.protocol` with asyncio I/O, timers and tasks) on the
browser's own ``WebSocket`` (signaling) and ``RTCPeerConnection``/
``RTCDataChannel`` (data plane), so a tab interoperates with native nodes
(:mod:`unisockets.net` and :mod:`unisockets.aio`, aiortc) and with other tabs.
This package holds only what is the browser's: the Pyodide bindings
(``_js``, ``_loop``), :func:`open_node` (``tab``) and the demo page's app
(``demo``); the driver's modules (``links``, ``pipes``, ``signaling``,
``sockets``, ``streams``, ``errors``) are :mod:`unisockets.driver`'s.

Usage inside Pyodide (``await`` at top level, e.g. ``pyodide.runPythonAsync``)::

    from unisockets.browser import open_node

    async with open_node("ws://127.0.0.1:6999", subnet="10.0.0") as node:
        print(node.address)                       # "10.0.0.3"
        async with node.listen(1234) as listener:
            stream = await listener.accept()
            await stream.send_all(await stream.receive_some())
        stream = await node.connect(("10.0.0.1", 1234))

Signaling reconnects (with the native client's backoff) and paces what it
sends (with its rate); open streams never depend on it. Nothing here imports
trio or aiortc. See docs/browser.md for what differs
from the trio API and why.
"""

from ..driver.datagrams import SOCK_DGRAM, DatagramSocket
from ..driver.errors import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    SignalingError,
)
from ..driver.sockets import AF_INET, SHUT_RD, SHUT_RDWR, SHUT_WR, SOCK_STREAM, Socket
from ..driver.streams import Address, Stream
from ..protocol.pacing import DEFAULT_BACKOFF, DEFAULT_SEND_RATE
from .tab import (
    DEFAULT_BACKLOG,
    EPHEMERAL_PORTS,
    BrowserNode,
    Listener,
    SignalingStatus,
    open_node,
)

# What a tab's program uses. The driver's machinery (peer links, pipes, the
# signaling session) stays in unisockets.driver.
__all__ = [
    "AF_INET",
    "DEFAULT_BACKLOG",
    "DEFAULT_BACKOFF",
    "DEFAULT_SEND_RATE",
    "EPHEMERAL_PORTS",
    "SHUT_RD",
    "SHUT_RDWR",
    "SHUT_WR",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "Address",
    "BrokenResourceError",
    "BrowserNode",
    "BusyResourceError",
    "ClosedResourceError",
    "DatagramSocket",
    "Listener",
    "SignalingError",
    "SignalingStatus",
    "Socket",
    "Stream",
    "open_node",
]
