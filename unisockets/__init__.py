"""unisockets: Berkeley sockets over WebRTC data channels, natively and in the browser.

See shared/DESIGN.md for the public API. The layers:

- :mod:`unisockets.protocol`: the sans-IO signaling protocol and stream framing.
- :mod:`unisockets.signaling`: trio drivers of the protocol over WebSockets
  (the signaling server and the node's signaling client).
- :mod:`unisockets.transport`: moves bytes between peers (WebRTC, in-memory, TCP).
- :mod:`unisockets.net`: nodes, listeners, streams and socket objects.
"""

__version__ = "0.1.0"
