"""Several signaling server instances serving one network through Redis (docs/signaling-server.md).

``open_signaling_server(redis="redis://HOST:PORT/DB")`` (or ``unisockets
signaling-server --redis URL``) runs an instance of a cluster: each subnet is
owned by one instance at a time, which applies its inputs with the ordinary
sans-IO server machine; the others forward their clients' inputs to it and
deliver its outputs, through Redis.

- :mod:`~unisockets.signaling.cluster.routing`: which instance applies what,
  and where outputs go (no I/O).
- :mod:`~unisockets.signaling.cluster.redis_link`: leases, presence,
  snapshots and messages through Redis (trio, coredis).
"""

from .redis_link import ClusterError, new_instance_id, run_cluster
from .routing import ClusterProtocol

__all__ = ["ClusterError", "ClusterProtocol", "new_instance_id", "run_cluster"]
