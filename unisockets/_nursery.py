"""A nursery for ``async with``-style resources that yield inside it (trio layers only).

An :func:`~contextlib.asynccontextmanager` that yields inside a trio nursery
hands the body's exception to the nursery, which wraps it in an
``ExceptionGroup``: the caller's own ``KeyError`` would come out as a group.
:func:`open_owned_nursery` catches the body's exception before the nursery
sees it, cancels the nursery's tasks, and re-raises the exception as it was
once the nursery has exited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["open_owned_nursery"]


@asynccontextmanager
async def open_owned_nursery() -> AsyncIterator[trio.Nursery]:
    """Open a nursery whose tasks are cancelled when the body ends.

    Use it around a resource's ``yield``, with the resource's own clean-up in
    a ``try``/``finally`` inside the block::

        async with open_owned_nursery() as nursery:
            thing = Thing(nursery)
            try:
                yield thing
            finally:
                await thing.close()

    Yields:
        The nursery; its tasks are cancelled once the body has finished.

    Raises:
        BaseException: the body's exception, unwrapped (not an ``ExceptionGroup``);
            an exception from the nursery's own tasks as trio raises it.
    """
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            yield nursery
        except BaseException as exc:
            body_error = exc  # re-raised below, outside the nursery
        finally:
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
