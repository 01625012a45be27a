"""The flows suite of one server (PROTOCOL.md frame by frame), run against two instances over Redis.

Every test of :mod:`tests.signaling.test_server` that is about the protocol
runs here again with consecutive clients on alternating instances of one
network (:func:`~tests.signaling.cluster.cluster_helpers.serve_suite_with_two_instances`).
Left out: what is about one process rather than the network: its
``max_clients`` (a limit per instance), its log lines (a forwarded request is
logged where it is applied) and its argument errors.
"""

from __future__ import annotations

import pytest

import tests.signaling.test_server as flows
from tests.redis_server import RedisServer
from tests.signaling.test_server import *  # noqa: F403 - the suite, collected here again

from .cluster_helpers import serve_suite_with_two_instances

# about one process, not the network (see the module docstring)
del test_max_clients_closes_one_more_with_1013_and_frees_the_slot_on_leave  # noqa: F821
del test_joins_binds_connects_and_leaves_are_logged  # noqa: F821
del test_bad_limits_and_busy_ports_raise_plain_errors  # noqa: F821


@pytest.fixture(autouse=True)
def _two_instances(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_suite_with_two_instances(flows, redis_server.url, monkeypatch)
