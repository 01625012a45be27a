"""Goodbye is not death: a peer whose signaling alone died keeps its streams and its id.

Real signaling server on 127.0.0.1, real aiortc on loopback (docs/protocol.md,
"Goodbye is not death"). One node reaches the server through a TCP relay
that goes silent (a NAT that forgot the connection). The server drops it at
its next ping and says goodbye; its peer probes their link over the data
plane, gets the answer and keeps every stream. Once the relay forwards
again, the node notices its dead WebSocket (its keepalive), rejoins with the
same id, binds its listener again and serves a fresh connect. (A killed
process, which answers no probe, is tests/net/test_failures.py's.)
"""

from __future__ import annotations

import hashlib
import random

import pytest
import trio

import unisockets.net as net
from unisockets.protocol.consent import ConsentPolicy
from unisockets.signaling.limits import ServerLimits

from ..log_events import log_event
from ..restartable_server import start_server
from ..silent_relay import start_relay

pytestmark = [pytest.mark.trio, pytest.mark.slow]

#: Only a bound against hangs: every wait is on an event.
TIMEOUT = 60.0
#: The relayed node's keepalive: it finds its silent WebSocket dead within about a second.
FAST_KEEPALIVE = ConsentPolicy(interval=0.2, jitter=0.2, lifetime=1.0, unanswered_checks=2)


async def _echo(stream: net.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)


class Checked:
    """A stream to an echo server, and the digest of everything sent and echoed on it."""

    def __init__(self, stream: net.SocketStream, seed: int) -> None:
        self.stream = stream
        self.rng = random.Random(seed)
        self.sent = hashlib.sha256()
        self.received = hashlib.sha256()
        self.count = 0

    async def round(self, size: int = 100_000) -> None:
        """Send ``size`` random bytes and read their echo; the digests must agree."""
        data = self.rng.randbytes(size)
        self.sent.update(data)
        self.count += size
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.stream.send_all, data)
            got = 0
            while got < size:
                chunk = await self.stream.receive_some(size - got)
                assert chunk, "the echo ended"
                self.received.update(chunk)
                got += len(chunk)
        assert self.received.digest() == self.sent.digest()


@pytest.mark.parametrize("loaded", [False, True], ids=["idle", "two-cpu-hogs"])
async def test_a_node_whose_websocket_goes_silent_keeps_its_streams_and_its_id(
    loaded: bool, request: pytest.FixtureRequest
) -> None:
    if loaded:
        request.getfixturevalue("cpu_load")  # two CPU-bound processes beside the test
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, limits=ServerLimits(ping_interval=0.5))
        relay = await start_relay(nursery, server.port)
        async with (
            net.open_node(server.url, ice_addresses=["127.0.0.1"]) as alice,
            net.open_node(
                relay.url,
                ice_addresses=["127.0.0.1"],
                signaling_keepalive=FAST_KEEPALIVE,
                signaling_backoff=(0.05, 0.2),
            ) as bob,
            alice.listen(7) as alice_listener,
            bob.listen(8) as bob_listener,
            trio.open_nursery() as serving,
        ):
            serving.start_soon(trio.serve_listeners, _echo, [alice_listener])
            serving.start_soon(trio.serve_listeners, _echo, [bob_listener])
            bob_id = bob.address
            with trio.fail_after(TIMEOUT):
                streams = [
                    Checked(await bob.connect((alice.address, 7)), 1),
                    Checked(await alice.connect((bob_id, 8)), 2),
                ]
                for checked in streams:
                    await checked.round()
                with (
                    log_event("unisockets.transport", f"{bob_id} answered on the link") as kept,
                    log_event(
                        "unisockets.signaling.client", f"lost the signaling server as {bob_id}"
                    ) as lost,
                ):
                    relay.silent = True  # bob's WebSocket: no close, no error, only silence
                    # the server drops bob at its next ping and says goodbye to alice;
                    # alice probes the link and bob answers over the data plane
                    await kept.wait()
                    for checked in streams:  # the streams never noticed
                        await checked.round()
                    await lost.wait()  # bob's keepalive found its WebSocket dead
                relay.silent = False
                # bob rejoins through the relay; its connect waits for the new session
                again = Checked(await bob.connect((alice.address, 7)), 3)
                await again.round()
                assert bob.address == bob_id
                # bob bound 8 again: a fresh connect to it is served (its accepting may
                # reach the server just after bob's connect was answered: then refused)
                for _attempt in range(100):
                    try:
                        fresh = Checked(await alice.connect((bob_id, 8)), 4)
                        break
                    except ConnectionRefusedError:
                        continue
                else:
                    pytest.fail(f"{bob_id}:8 refused every connect after the rejoin")
                await fresh.round()
                for checked in [*streams, again, fresh]:
                    await checked.round()
                    await checked.stream.aclose()
            serving.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
