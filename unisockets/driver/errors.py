"""The browser driver's error vocabulary: trio's three stream errors, and real ``OSError``\\ s.

trio does not import under Pyodide, so this package defines exceptions with
the names and meanings of trio's (``trio/_core/_exceptions.py``;
docs/concepts.md, "Errors"):

- :class:`ClosedResourceError`: *you* closed the stream or node (raised ``from None``).
- :class:`BrokenResourceError`: the peer or the link broke it (chained ``from`` the cause).
- :class:`BusyResourceError`: two tasks sent (or received) on one stream at once.

Socket objects and node calls raise :class:`OSError` with a real errno
(``ECONNREFUSED``, ``EADDRINUSE``, ``ETIMEDOUT``, ...) built by :func:`oserror`.
Signaling failures raise :class:`SignalingError` (:class:`JoinRejectedError`
when the subnet is full): the classes of :mod:`unisockets.protocol.errors`,
the very ones the trio driver raises (``unisockets.SignalingError``).
"""

from __future__ import annotations

from ..protocol.errors import JoinRejectedError, SignalingError
from ..protocol.socket_states import oserror

__all__ = [
    "BrokenResourceError",
    "BusyResourceError",
    "ClosedResourceError",
    "JoinRejectedError",
    "SignalingError",
    "oserror",
]


class ClosedResourceError(Exception):
    """The stream, listener or node was closed by this side (trio's ``ClosedResourceError``)."""


class BrokenResourceError(Exception):
    """The peer reset or vanished, or the link failed (trio's ``BrokenResourceError``).

    The underlying cause, when there is one, is in ``__cause__``.
    """


class BusyResourceError(Exception):
    """Another task is already sending (or receiving) on this stream (trio's)."""
