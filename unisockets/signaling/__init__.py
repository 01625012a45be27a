"""trio drivers of the signaling protocol over WebSockets.

- :mod:`~unisockets.signaling.server`: the signaling server
  (:func:`open_signaling_server`, :func:`serve_signaling`) over
  :class:`~unisockets.protocol.SignalingServerProtocol`, with limits and
  liveness; its WebSocket handling is our own batched handler on wsproto over
  non-blocking sockets (``_server_connection``, ``_server_socket``), read by
  one task over a level-triggered epoll once a client joined (``_server_reader``).
- :mod:`~unisockets.signaling.cluster`: several server instances serving one
  network through Redis (``open_signaling_server(redis=URL)``).
- :mod:`~unisockets.signaling.metrics`: what a server counts, as Prometheus
  text, and its health check (``--metrics-port``).
- :mod:`~unisockets.signaling.client`: a node's signaling client
  (:func:`open_signaling_client`) over
  :class:`~unisockets.protocol.SignalingClientProtocol` and a batched
  WebSocket of its own on wsproto (``_client_connection``), with
  reconnection and send pacing; its tasks are ``_client_driver``'s, its
  outbox ``_client_outbox``'s, its pings ``_client_keepalive``'s, what its
  callers wait on ``_client_requests``'s, its words for a failed WebSocket
  ``_client_websocket``'s.
"""

from .client import SignalingClient, open_signaling_client
from .errors import JoinRejectedError, SignalingError
from .limits import ServerLimits
from .server import SignalingServer, open_signaling_server, serve_signaling

__all__ = [
    "JoinRejectedError",
    "ServerLimits",
    "SignalingClient",
    "SignalingError",
    "SignalingServer",
    "open_signaling_client",
    "open_signaling_server",
    "serve_signaling",
]
