"""Running a command's trio main: Ctrl-C, SIGTERM and errors as one line, never a traceback.

trio delivers Ctrl-C as :class:`KeyboardInterrupt` raised wherever the main
task happens to be, and a nursery then wraps it in an exception group
(``contextlib.suppress(KeyboardInterrupt)`` does not see it). So
:func:`run_trio` takes SIGINT and SIGTERM itself while the command runs
(:func:`trio.open_signal_receiver`): the first one cancels the command, whose
``async with`` blocks then close as usual (listeners, streams, the node's
WebSocket), and the process exits with status 130 after SIGINT (128 + 2, the
shell's convention) or 0 after SIGTERM (a requested stop). A second signal
during that shutdown exits at once.

Errors a user can cause or meet (an unreachable server, a port in use, a
peer that went away) leave as one ``Error: ...`` line and status 1; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import click
import trio

from unisockets.signaling.errors import SignalingError

__all__ = ["EXIT_INTERRUPTED", "interrupted", "leaves", "run_trio", "user_error"]

T = TypeVar("T")

#: Exit status after Ctrl-C (SIGINT): 128 + 2, as a shell reports a process SIGINT killed.
EXIT_INTERRUPTED = 130


def interrupted(name: str) -> None:
    """Print the one line of a Ctrl-C and exit with :data:`EXIT_INTERRUPTED`.

    Args:
        name: the command's name, e.g. ``"echo-server"``.

    Raises:
        SystemExit: always, status 130.
    """
    click.echo(f"unisockets {name}: interrupted", err=True)
    sys.exit(EXIT_INTERRUPTED)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions of ``exc`` that are not groups, depth first (``exc`` itself if not a group).

    Args:
        exc: an exception or a (nested) :class:`BaseExceptionGroup`.

    Yields:
        Each leaf exception in order.
    """
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def user_error(exc: BaseException) -> str | None:
    """The one-line message of an error a user can cause or meet, or ``None`` for a bug.

    Args:
        exc: a leaf exception (not a group).

    Returns:
        The message, or ``None`` when ``exc`` is of no kind listed here.
    """
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    if isinstance(exc, SignalingError):
        return str(exc)
    if isinstance(exc, trio.BrokenResourceError):
        cause = exc.__cause__
        detail = str(exc) or (str(cause) if cause is not None else "")
        return f"the connection broke: {detail or type(exc).__name__}"
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror if exc.strerror and len(exc.args) == 2 else str(exc)
    return None


def run_trio(
    name: str,
    async_fn: Callable[[], Awaitable[T]],
    *,
    on_signal: Callable[[signal.Signals], None] | None = None,
) -> T:
    """Run ``async_fn`` under :func:`trio.run`; signals and user errors end the process.

    Args:
        name: the command's name, for the Ctrl-C line.
        async_fn: the command's main.
        on_signal: called with the first SIGINT or SIGTERM, before the
            command is cancelled (e.g. to log it).

    Returns:
        What ``async_fn`` returned.

    Raises:
        SystemExit: 130 after SIGINT (one line on stderr), 0 after SIGTERM.
        click.ClickException: a user error (click prints ``Error: ...``, status 1).
        BaseException: anything else, unchanged (a bug).
    """
    received: list[int] = []
    result: list[T] = []

    async def supervise() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                main_scope = trio.CancelScope()

                async def run_main() -> None:
                    with main_scope:
                        result.append(await async_fn())
                    nursery.cancel_scope.cancel()  # the command is done: stop listening

                nursery.start_soon(run_main)
                async for signum in signals:
                    if received:  # a second signal: the shutdown takes too long for the user
                        click.echo(f"unisockets {name}: stopped at once", err=True)
                        os._exit(EXIT_INTERRUPTED if signum == signal.SIGINT else 0)
                    received.append(signum)
                    if on_signal is not None:
                        on_signal(signal.Signals(signum))
                    main_scope.cancel()

    try:
        trio.run(supervise)
    except BaseException as exc:
        found = list(leaves(exc))
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in found):
            interrupted(name)  # before our receiver was installed or after it was closed
        errors = [leaf for leaf in found if not isinstance(leaf, trio.Cancelled)]
        messages = [user_error(leaf) for leaf in errors]
        if None in messages or not (messages or received):
            raise  # a bug: keep the traceback
        if not received:
            if isinstance(errors[0], click.ClickException):
                raise errors[0] from None
            raise click.ClickException(str(messages[0])) from None
        # Shutting down after a signal: what broke on the way out is expected.
    if received:
        if received[0] == signal.SIGINT:
            interrupted(name)
        sys.exit(0)
    return result[0]
