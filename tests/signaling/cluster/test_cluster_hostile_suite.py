"""The hostile-client suite of one server, run against two instances over Redis.

Every test of :mod:`tests.signaling.test_server_hostile` runs here again, with
its ``open_signaling_server`` replaced by two instances on one real
redis-server behind one object whose ``url`` alternates between them
(``port``, for raw connections and per-instance limits, is the first
one's), so consecutive clients sit on different instances and every
violation is found by a subnet owner that is, for half of the offenders,
another instance. The expectations are unchanged: what one instance does,
two do. (The Hypothesis fuzzer, which starts a server per example, stays
with one instance.)
"""

from __future__ import annotations

import pytest

import tests.signaling.test_server_hostile as hostile
from tests.redis_server import RedisServer
from tests.signaling.test_server_hostile import *  # noqa: F403 - the suite, collected here again

from .cluster_helpers import serve_suite_with_two_instances

del test_arbitrary_frames_from_a_member_never_hurt_the_server  # noqa: F821 - from the * import


@pytest.fixture(autouse=True)
def _two_instances(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_suite_with_two_instances(hostile, redis_server.url, monkeypatch)
