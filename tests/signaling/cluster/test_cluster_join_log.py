"""The join log of a cluster instance says which instance owns the subnet (no I/O).

Two :class:`ClusterProtocol` instances exchange their items by hand, as the
Redis link's routing round does (docs/signaling-server.md, "How it works").
"""

from __future__ import annotations

import logging

import pytest

from unisockets.protocol import Acknowledged, Knock
from unisockets.signaling.cluster.routing import ClusterProtocol

from .cluster_helpers import RecordingClients

SUBNET = "10.0.0"


def _joins(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.name == "unisockets.signaling.cluster"]
    caplog.clear()
    return [m for m in messages if m.startswith("join ")]


def test_the_join_log_names_the_owner_this_instance_or_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="unisockets.signaling.cluster")
    a, b = ClusterProtocol("a"), ClusterProtocol("b")
    a.clients, b.clients = a_clients, b_clients = RecordingClients(), RecordingClients()

    # the first knock on a new subnet is routed (nobody owns it yet); the round finds that
    # this instance takes it and applies the knock here
    a.client_connected(1)
    assert a.receive(1, Knock(subnet=SUBNET)) == []
    a.own(SUBNET, None)
    a.apply_routed(a.take_routed())
    assert a_clients.frames[1] == [Acknowledged(id="10.0.0.1", rejected=False)]
    assert _joins(caplog) == ["join 10.0.0.1 (client 1, subnet 10.0.0 owned by this instance)"]

    # a knock answered at once: the driver logs it (with the remote address), not the cluster
    a.client_connected(2)
    answers = a.receive(2, Knock(subnet=SUBNET))
    assert answers[0] == (2, Acknowledged(id="10.0.0.2", rejected=False))
    assert _joins(caplog) == []

    # a client of another instance: the owner's answer comes back with the owner's id
    b.client_connected(1)
    assert b.receive(1, Knock(subnet=SUBNET)) == []
    b.forward("a", b.take_routed())
    a.receive_items(b.outbox.pop("a"))
    b.receive_items(a.outbox.pop("b"))
    assert b.member_id(1) == "10.0.0.3"
    assert _joins(caplog) == ["join 10.0.0.3 (client 1, subnet 10.0.0 owned by instance a)"]

    # an owner of an older version sends no owner id
    b.client_connected(2)
    b.receive(2, Knock(subnet=SUBNET))
    b.receive_items([["j", 2, "10.0.0.4"]])
    assert _joins(caplog) == ["join 10.0.0.4 (client 2, subnet 10.0.0 owned by another instance)"]
    assert a_clients.failed == b_clients.failed == {}
