"""A real signaling server in a task of its own, so that a test can stop and restart it.

Used by the tests of what survives a server restart (the native client, nodes,
the browser driver). The server listens on 127.0.0.1; restarting it on the
same port gives the same URL.
"""

from __future__ import annotations

import trio

from unisockets.signaling.limits import DEFAULT_LIMITS, ServerLimits
from unisockets.signaling.server import open_signaling_server

#: Generous bound on stopping, so that a bug fails a test instead of hanging it.
STOP_TIMEOUT = 30.0


class ServerTask:
    """A running signaling server, as returned by :func:`start_server`.

    Attributes:
        url: its ``ws://127.0.0.1:PORT`` URL.
        port: its TCP port.
    """

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.stopped = trio.Event()
        self.url = ""
        self.port = 0

    async def stop(self) -> None:
        """Stop the server (its clients get close 1001) and wait until it is gone."""
        self.scope.cancel()
        with trio.fail_after(STOP_TIMEOUT):
            await self.stopped.wait()


async def start_server(
    nursery: trio.Nursery, port: int = 0, limits: ServerLimits = DEFAULT_LIMITS
) -> ServerTask:
    """Start a signaling server on 127.0.0.1 in ``nursery``.

    Args:
        nursery: where the server's task runs.
        port: the TCP port; 0 for any free one (pass a stopped server's port
            to restart it).
        limits: the server's limits (``open_signaling_server(limits=...)``).

    Returns:
        The running server.
    """

    async def run(*, task_status: trio.TaskStatus[ServerTask]) -> None:
        task = ServerTask()
        try:
            with task.scope:
                async with open_signaling_server(
                    host="127.0.0.1", port=port, limits=limits
                ) as server:
                    task.url, task.port = server.url, server.port
                    task_status.started(task)
                    await trio.sleep_forever()
        finally:
            task.stopped.set()

    result: ServerTask = await nursery.start(run)
    return result
