"""Hostile clients on an instance that does not own their subnet: closed as by one instance.

The owner finds the violation; the offender's own instance closes it with
the same code and reason one instance sends, and the rest carry on.
"""

from __future__ import annotations

import pytest

from tests.redis_server import RedisServer
from tests.signaling.server_helpers import (
    assert_healthy,
    assert_spoofers_closed,
    open_member,
    open_peer,
)
from unisockets.protocol import Bind, Knock

from .cluster_helpers import open_instances


@pytest.mark.trio
async def test_spoofing_on_a_non_owner_instance_closes_the_spoofer_with_the_same_reason(
    redis_server: RedisServer,
) -> None:
    async with (
        open_instances(redis_server.url, 2) as (owner, other),
        open_member(owner.url) as a,  # a's knock makes `owner` the owner of 10.0.0
        open_member(other.url) as b,
        open_member(other.url) as c,
    ):
        await assert_spoofers_closed(a, b, c)
        await assert_healthy(other.url, "10.0.0")
        await assert_healthy(owner.url)


@pytest.mark.trio
async def test_before_knock_and_second_knock_on_a_non_owner_instance(
    redis_server: RedisServer,
) -> None:
    async with open_instances(redis_server.url, 2) as (owner, other):
        async with open_member(owner.url):
            async with open_peer(other.url) as early:
                await early.send(Bind(id="10.0.0.9", alias="10.0.0.9:1"))
                closed = await early.closed()
                assert (closed.code, closed.reason) == (
                    1008,
                    "bind before knock: a client must knock first",
                )
            async with open_member(other.url) as twice:
                await twice.send(Knock(subnet="10.0.0"))
                closed = await twice.closed()
                assert (closed.code, closed.reason) == (1008, "knock from 10.0.0.2: already joined")
        await assert_healthy(other.url)
