"""Several signaling server instances on one Redis, for the multi-instance tests."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager
from types import ModuleType
from typing import Any

import pytest

from tests.cli.processes import Child, child
from unisockets.protocol import Message, decode
from unisockets.signaling.server import SignalingServer, open_signaling_server


class RecordingClients:
    """One cluster instance's clients without a server: what each was sent, who was closed."""

    def __init__(self) -> None:
        self.frames: dict[int, list[Message]] = {}
        self.failed: dict[int, tuple[int, str]] = {}

    def deliver(self, outputs: list[tuple[int, Message]]) -> None:
        for key, message in outputs:
            self.frames.setdefault(key, []).append(message)

    def send_texts(self, frames: list[tuple[int, str]]) -> None:
        self.deliver([(key, decode(text)) for key, text in frames])

    def fail(self, key: int, code: int, reason: str) -> None:
        self.failed[key] = (code, reason)


def instance_process(
    redis_url: str, rejoin_grace: str = "0", port: int = 0
) -> AbstractContextManager[Child]:
    """``unisockets signaling-server --redis`` as a child process; its URL is its first line."""
    return child(
        *("signaling-server", "--host", "127.0.0.1", "--port", str(port), "--redis", redis_url),
        *("--rejoin-grace", rejoin_grace),
    )


@asynccontextmanager
async def open_instances(
    redis_url: str, count: int, **kwargs: Any
) -> AsyncIterator[list[SignalingServer]]:
    """``count`` instances on 127.0.0.1 serving one network through ``redis_url``."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(open_signaling_server(redis=redis_url, **kwargs))
            for _ in range(count)
        ]


class InstancePair:
    """Two instances as a one-server test suite sees one server: URLs in turn, counts summed.

    ``port`` is the first instance's: raw connections test per-instance
    limits (handshakes).
    """

    def __init__(self, servers: list[SignalingServer]) -> None:
        self.servers = servers
        self._turn = itertools.count()

    @property
    def url(self) -> str:
        return self.servers[next(self._turn) % len(self.servers)].url

    @property
    def port(self) -> int:
        return self.servers[0].port

    @property
    def client_count(self) -> int:
        return sum(server.client_count for server in self.servers)

    @property
    def member_ids(self) -> list[str]:
        """Every instance's members, by id (connection order is per instance)."""
        ids = [member for server in self.servers for member in server.member_ids]
        return sorted(ids, key=lambda member: tuple(map(int, member.split("."))))

    @property
    def _handshaking(self) -> int:
        return sum(server._handshaking for server in self.servers)


def serve_suite_with_two_instances(
    module: ModuleType, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make ``module``'s tests open two instances over ``redis_url`` where they open one server."""

    @asynccontextmanager
    async def open_pair(*args: Any, **kwargs: Any) -> AsyncIterator[InstancePair]:
        async with AsyncExitStack() as stack:
            servers = [
                await stack.enter_async_context(
                    open_signaling_server(*args, redis=redis_url, **kwargs)
                )
                for _ in range(2)
            ]
            yield InstancePair(servers)

    monkeypatch.setattr(module, "open_signaling_server", open_pair)
