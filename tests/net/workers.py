"""Worker processes of overlay nodes (tests/net/overlay_worker.py), as the tests drive them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

__all__ = ["WORKER", "Lines", "Worker", "check_recovered", "open_workers", "stop_streams"]

WORKER = Path(__file__).with_name("overlay_worker.py")


class Lines:
    """Read a child's stdout line by line."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdout is not None
        self.stream = process.stdout
        self.buffer = b""

    async def line(self) -> str:
        """The next line, without its newline."""
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise EOFError(f"the child ended: {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


class Worker:
    """One worker process: its nodes' ids, and its JSON lines both ways."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines = Lines(process)
        self.ids: list[str] = []

    async def send(self, **command: Any) -> None:
        """One command (see overlay_worker.py)."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(json.dumps(command).encode() + b"\n")

    async def receive(self) -> dict[str, Any]:
        """The next answer."""
        result: dict[str, Any] = json.loads(await self.lines.line())
        return result


@asynccontextmanager
async def open_workers(
    count: int, arguments: list[str], join_timeout: float, urls: list[str] | None = None
) -> AsyncIterator[list[Worker]]:
    """Start ``count`` workers with ``arguments`` and wait until their nodes joined.

    ``urls``: one signaling URL argument per worker, in place of ``arguments[0]``.
    Every worker is killed (and reaped) on exit; ``{"op": "exit"}`` ends them first.
    """
    workers: list[Worker] = []
    try:
        for number in range(count):
            first = arguments[:1] if urls is None else [urls[number]]
            process = await trio.lowlevel.open_process(
                [sys.executable, str(WORKER), *first, *arguments[1:]],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            workers.append(Worker(process))
        with trio.fail_after(join_timeout):
            for worker in workers:
                worker.ids = (await worker.receive())["ids"]
        yield workers
        for worker in workers:
            await worker.send(op="exit")
    finally:
        with trio.CancelScope(shield=True):
            for worker in workers:
                if worker.process.returncode is None:
                    worker.process.kill()
                await worker.process.wait()


async def stop_streams(workers: list[Worker]) -> list[dict[str, Any]]:
    """End every worker's streams; their results (seed, bytes, error)."""
    results: list[dict[str, Any]] = []
    for worker in workers:
        await worker.send(op="stop")
        results += (await worker.receive())["streams"]
    return results


async def check_recovered(workers: list[Worker], nodes: int) -> list[dict[str, Any]]:
    """After a signaling fault: every node listens again, serves a fresh connect, has its id.

    A fresh connect goes from every node to the node of the same index in the
    next worker. Then the streams are stopped; returns their results, after
    checking that none broke and each carried more than its first round.
    """
    for worker in workers:
        await worker.send(op="listening")
    for worker in workers:
        assert (await worker.receive())["listening"] == []
    for number, worker in enumerate(workers):
        target = workers[(number + 1) % len(workers)]
        for index in range(nodes):
            await worker.send(op="fresh", node=index, peer=target.ids[index])
    for worker in workers:
        answers = [await worker.receive() for _ in range(nodes)]
        failed = [answer for answer in answers if answer["error"] is not None]
        assert not failed, failed
    for worker in workers:
        await worker.send(op="ids")
        assert (await worker.receive())["ids"] == worker.ids  # every old id back
    results = await stop_streams(workers)
    assert [r for r in results if r["error"] is not None] == []  # 0 streams broken
    assert all(r["bytes"] > 16 * 1024 for r in results), results
    return results
