"""Requests made while the client's WebSocket is dying wait for the next session.

A WebSocket can be dead before the client knows it: a server that stops, a
path that goes silent (a NAT that forgot the connection). A ``bind`` or
``connect`` written into it is never answered there; the client must carry
it over to its next session (within the request's bound) instead of raising
``SignalingError``. A ``shutdown`` written into it follows the session rule:
the server forgets a node's aliases with its connection, so it is done (and
nothing is released in the next session, where the alias may be another's).
Real server, real WebSockets on 127.0.0.1: the restartable server of
tests/restartable_server.py and the silent relay of tests/silent_relay.py.
"""

from __future__ import annotations

import errno

import pytest
import trio

from unisockets.protocol.consent import ConsentPolicy
from unisockets.protocol.events import Disconnected, Reconnected
from unisockets.signaling.client import open_signaling_client
from unisockets.signaling.server import open_signaling_server

from ..restartable_server import start_server
from ..silent_relay import start_relay
from .test_client import FAST, next_event

#: Generous bound on a wait, so that a bug fails the test instead of hanging it.
TIMEOUT = 20.0
#: The keepalive of the tests: a silent connection is found dead within about a second.
QUICK = ConsentPolicy(interval=0.1, jitter=0.2, lifetime=0.5, unanswered_checks=2)


class Outcome:
    """What a request task ended with: ``"ok"``, or an exception's type name."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.result: object = None
        self.done = trio.Event()

    async def run(self, request: object) -> None:
        try:
            self.result = await request  # type: ignore[misc]
        except Exception as exc:
            self.value = f"{type(exc).__name__}: {exc}"
        else:
            self.value = "ok"
        self.done.set()

    async def wait(self) -> str:
        with trio.fail_after(TIMEOUT):
            await self.done.wait()
        assert self.value is not None
        return self.value


@pytest.mark.trio
async def test_requests_written_into_a_silent_connection_complete_in_the_next_session() -> None:
    async with (
        open_signaling_server(host="127.0.0.1", port=0) as server,
        trio.open_nursery() as nursery,
        open_signaling_client(server.url) as listener,
    ):
        relay = await start_relay(nursery, server.port)
        alias = f"{listener.id}:7"
        await listener.bind(alias)
        await listener.listen(alias)
        async with open_signaling_client(
            relay.url, keepalive=QUICK, backoff=FAST, request_timeout=TIMEOUT
        ) as client:
            me = client.id
            await client.bind(f"{me}:1")
            session = client.session
            relay.silent = True  # from now on nothing passes; the client does not know yet
            connect, bind, shutdown = Outcome(), Outcome(), Outcome()
            nursery.start_soon(connect.run, client.connect_in_session(alias))
            nursery.start_soon(bind.run, client.bind(f"{me}:2"))
            nursery.start_soon(shutdown.run, client.shutdown(f"{me}:1"))
            await next_event(client, Disconnected)  # its pings went unanswered
            # The shutdown is done: the server forgot the alias with the session.
            assert await shutdown.wait() == "ok"
            assert not connect.done.is_set() and not bind.done.is_set()  # waiting, no error
            relay.silent = False
            assert await next_event(client, Reconnected) == Reconnected(id=me)
            assert await connect.wait() == "ok"
            assert await bind.wait() == "ok"
            assert isinstance(connect.result, tuple)
            assert connect.result[3] > session  # made in the new session, sent again there
            assert await listener.accept(alias) == connect.result[0]
            # :2 is bound, :1 is free (released with the old session, not bound again)
            with pytest.raises(OSError) as taken:
                await client.bind(f"{me}:2")
            assert taken.value.errno == errno.EADDRINUSE
            await client.bind(f"{me}:1")
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_requests_made_while_the_server_stops_wait_for_the_restarted_one() -> None:
    async with trio.open_nursery() as nursery:
        first = await start_server(nursery)
        async with open_signaling_client(
            first.url, backoff=FAST, request_timeout=TIMEOUT
        ) as client:
            me = client.id
            await client.bind(f"{me}:1")
            outcomes = [Outcome() for _ in range(3)]
            # The requests race the server's end: written before its close arrives,
            # after, or into a socket already closed. None may fail.
            first.scope.cancel()
            nursery.start_soon(outcomes[0].run, client.bind(f"{me}:2"))
            nursery.start_soon(outcomes[1].run, client.shutdown(f"{me}:1"))
            nursery.start_soon(outcomes[2].run, client.connect(f"{me}:9"))
            await first.stop()
            await next_event(client, Disconnected)
            second = await start_server(nursery, first.port)
            assert await next_event(client, Reconnected) == Reconnected(id=me)
            assert await outcomes[0].wait() == "ok"
            assert await outcomes[1].wait() == "ok"
            # Nobody accepts on :9: refused by the new server, not a SignalingError.
            assert (await outcomes[2].wait()).startswith("ConnectionRefusedError")
            with pytest.raises(OSError) as taken:
                await client.bind(f"{me}:2")
            assert taken.value.errno == errno.EADDRINUSE
            await client.bind(f"{me}:1")  # released, and not bound again
            await second.stop()
        nursery.cancel_scope.cancel()
