"""Errors of the node's signaling client (:mod:`unisockets.signaling.client`).

The client raises three kinds of errors (docs/concepts.md, "Errors"):

- :class:`SignalingError` (a :class:`ConnectionError`): the signaling server
  cannot be reached, rejected us, or the connection to it broke while a
  request was waiting; :class:`JoinRejectedError` when the subnet is full.
- :class:`OSError` with a real errno for answers to requests, as the socket
  API would: ``EADDRINUSE`` (bind rejected), ``ECONNREFUSED`` (connect
  refused, as :class:`ConnectionRefusedError`), ``EADDRNOTAVAIL`` (an alias
  that is not on our address), ``EINVAL`` (shutdown of an alias we do not hold).
- :class:`TimeoutError` when a request got no answer within its timeout.
"""

from __future__ import annotations

# Defined with the protocol, so that the asyncio driver raises the same classes.
from ..protocol.errors import JoinRejectedError, SignalingError

__all__ = ["JoinRejectedError", "SignalingError"]
