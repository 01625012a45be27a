"""Stable addresses through the real server: rejoins after a restart keep their ids.

docs/protocol.md, "Stable addresses". A real signaling server on 127.0.0.1 is
stopped and started again on the same port; before its nodes come back, a
newcomer knocks. With a rejoin grace the newcomer waits, and every node gets
its old id back; without one, the newcomer takes the lowest free id, which
was a returning node's.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from unisockets.protocol import Acknowledged, Knock, decode, encode
from unisockets.protocol.events import Disconnected, PeerGreeted, Reconnected
from unisockets.signaling.client import SignalingClient, open_signaling_client
from unisockets.signaling.limits import ServerLimits

from ..restartable_server import start_server
from .test_client import next_event

pytestmark = pytest.mark.trio

#: Generous bound on each step, so that a bug fails the test instead of hanging it.
TIMEOUT = 30.0
#: So long that nodes come back only when the test calls rejoin().
NEVER = (600.0, 600.0)


@pytest.mark.parametrize("grace", [0.0, 2.0])
async def test_nodes_get_their_ids_back_after_a_restart_though_a_newcomer_knocks_first(
    grace: float,
) -> None:
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        first = await start_server(nursery)
        clients: list[SignalingClient] = [
            await stack.enter_async_context(open_signaling_client(first.url, backoff=NEVER))
            for _ in range(3)
        ]
        ids = [client.id for client in clients]
        assert ids == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        with trio.fail_after(TIMEOUT):
            await first.stop()
            for client in clients:
                await next_event(client, Disconnected)
            second = await start_server(nursery, first.port, ServerLimits(rejoin_grace=grace))
            async with open_websocket_url(second.url) as newcomer:
                await newcomer.send_message(encode(Knock(subnet="10.0.0")))
                await trio.testing.wait_all_tasks_blocked()  # the server has read the knock
                for client in clients:
                    client.rejoin()
                events = [await next_event(client, Reconnected) for client in clients]
                answer = decode(await newcomer.get_message())
            assert isinstance(answer, Acknowledged)
            if grace:
                # the newcomer waited for the grace; every node is back with its id
                assert [event.id for event in events] == ids
                assert answer.id == "10.0.0.4"
            else:
                # the newcomer took 10.0.0.1 at once; its node got another id
                assert answer.id == "10.0.0.1"
                assert events[0].id != "10.0.0.1"
            await second.stop()
        nursery.cancel_scope.cancel()


async def test_a_node_whose_old_connection_the_server_still_holds_keeps_its_id() -> None:
    # Two clients with the same token would be one node; the second connection of a
    # real client replaces the first (tests/signaling/test_client.py, the silent proxy).
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery)
        async with (
            open_signaling_client(server.url) as peer,
            open_websocket_url(server.url) as old,
        ):
            await old.send_message(encode(Knock(subnet="10.0.0", token="t" * 32)))
            assert decode(await old.get_message()) == Acknowledged(id="10.0.0.2", rejected=False)
            async with open_websocket_url(server.url) as new:
                knock = Knock(subnet="10.0.0", id="10.0.0.2", token="t" * 32)
                await new.send_message(encode(knock))
                assert decode(await new.get_message()) == Acknowledged(
                    id="10.0.0.2", rejected=False
                )
                # the server closes the old connection, normally
                with trio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as closed:
                    await old.get_message()
                assert closed.value.reason.code == 1000
                assert "replaced" in (closed.value.reason.reason or "")
                # the peer was greeted again, and saw no goodbye: 10.0.0.2 never left
                seen = []
                with trio.fail_after(TIMEOUT):
                    async for event in peer.events:
                        seen.append(event)
                        if len([e for e in seen if isinstance(e, PeerGreeted)]) == 2:
                            break
                assert seen == [PeerGreeted(peer_id="10.0.0.2")] * 2
        nursery.cancel_scope.cancel()
