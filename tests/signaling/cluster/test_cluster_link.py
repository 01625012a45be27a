"""The cluster's Redis side on its own: taking a subnet over twice keeps the live machine.

Two tasks of one instance may find the same free subnet at once: the routing
round (a knock for it) and the heartbeat's adoption of its clients' subnets.
The second to finish must not reload the stored snapshot over the machine the
first one started, or the members that joined in between vanish and their next
message is refused ("bind before knock", close 1008: seen with 30 nodes
joining at once under load).
"""

from __future__ import annotations

import pytest
import trio

from tests.redis_server import RedisServer
from unisockets.protocol import Acknowledged, Bind, Knock
from unisockets.signaling.cluster.redis_link import _Link
from unisockets.signaling.cluster.routing import ClusterProtocol, global_key

pytestmark = pytest.mark.trio


async def test_a_second_take_over_of_an_owned_subnet_keeps_its_members(
    redis_server: RedisServer,
) -> None:
    import coredis

    cluster = ClusterProtocol("me", clock=trio.current_time)
    async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as redis:
        link = _Link(cluster, redis, heartbeat=1.0, lease=5.0)
        await link.check_epoch(None)
        assert await link.owner_of("10.0.0") == "me"  # the routing round took it
        cluster.client_connected(1)
        [(key, ack)] = cluster.receive(1, Knock(subnet="10.0.0"))
        assert (key, ack) == (1, Acknowledged(id="10.0.0.1", rejected=False))
        # the heartbeat's adoption, which saw the subnet free before the round took it
        await link._take("10.0.0")
        machine = cluster.owned["10.0.0"]
        assert machine.member_id(global_key("me", 1)) == "10.0.0.1"
        # and the member's next message is its, not a violation
        outputs = cluster.receive(1, Bind(id="10.0.0.1", alias="10.0.0.1:7"))
        assert [key for key, _ in outputs] == [1]
