"""trio's stream errors for the byte streams over pipes, raised the way trio raises them.

:class:`~unisockets.transport.stream.PipeStream` and
:class:`~unisockets.transport.legacy.LegacyStream` share these (trio's
``src/trio/_abc.py`` vocabulary): :class:`trio.BusyResourceError` when two
tasks send (or receive) at once, :class:`trio.ClosedResourceError` ``from
None`` when the stream's own ``aclose`` interrupts a call, and
:class:`trio.BrokenResourceError` chained from the cause when the link broke.
"""

from __future__ import annotations

from types import TracebackType

import trio

__all__ = ["Closable", "ConflictDetector", "Failure"]


class ConflictDetector:
    """Raise :class:`trio.BusyResourceError` when two tasks enter at once (trio's semantics).

    Args:
        message: the error's message, e.g. "another task is sending on this stream".
    """

    def __init__(self, message: str) -> None:
        self._message = message
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(self._message)
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._held = False


class Closable:
    """A cancel scope that the stream's ``aclose`` cancels, raised as ClosedResourceError.

    A class rather than a ``@contextmanager`` generator: it is entered on every
    blocking call, and a generator-based manager costs twice as much.

    Args:
        scopes: the stream's live scopes; ``aclose`` cancels every one of them.

    Raises:
        trio.ClosedResourceError: on exit, when the scope was cancelled (``from None``).
    """

    __slots__ = ("_scope", "_scopes")

    def __init__(self, scopes: set[trio.CancelScope]) -> None:
        self._scopes = scopes
        self._scope = trio.CancelScope()

    def __enter__(self) -> None:
        self._scopes.add(self._scope)
        self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            handled = self._scope.__exit__(exc_type, exc, tb)
        finally:
            self._scopes.discard(self._scope)
        if self._scope.cancelled_caught:
            raise trio.ClosedResourceError("the stream was closed") from None
        return handled


class Failure:
    """Why one direction of the stream is broken: a message and the underlying cause.

    Args:
        message: what broke, for the error's message.
        cause: the exception that broke it (the error's ``__cause__``), or None.
    """

    def __init__(self, message: str, cause: BaseException | None) -> None:
        self.message = message
        self.cause = cause

    def error(self) -> trio.BrokenResourceError:
        """A new :class:`trio.BrokenResourceError` to raise, chained from the cause.

        Returns:
            The error (a new one on every call: an exception is raised once per call).
        """
        error = trio.BrokenResourceError(self.message)
        error.__cause__ = self.cause
        return error
