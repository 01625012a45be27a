"""The cluster's I/O: leases, snapshots and messages between instances through Redis (trio).

Runs beside one signaling server instance (:func:`run_cluster`) and moves
what :class:`~unisockets.signaling.cluster.routing.ClusterProtocol` queues:

- **Presence.** ``unisockets:alive:<instance>`` exists while the instance runs
  (set every ``heartbeat`` seconds, expiring after three); its value is
  ``"<host name> <process id>"``. The owner of a
  subnet removes the members of instances whose key expired, as if their
  connections closed (``goodbye`` and alias removals to the rest).
- **Ownership.** ``unisockets:owner:<subnet>`` names the instance that applies
  the subnet's inputs, under a lease of ``lease`` seconds (``SET NX PX``,
  renewed every ``heartbeat`` by a compare-and-extend script). The first
  instance that needs a subnet nobody owns takes it and loads its snapshot;
  an instance that loses its lease stops applying.
- **State.** After every input that changed a subnet (everything but relays),
  its snapshot (:func:`~unisockets.protocol.server_snapshot.snapshot_subnet`,
  JSON) is written to ``unisockets:subnet:<subnet>`` before the outputs are
  published, in the same pipeline.
- **Messages.** Each instance subscribes to ``unisockets:instance:<instance>``
  (Redis pub/sub); everything for it (inputs for subnets it owns, outputs for
  its clients) arrives there as JSON arrays of items, one ``PUBLISH`` per
  instance and round, all from one task so that their order holds. A
  ``PUBLISH`` that reaches nobody means the instance is gone: its inputs are
  routed again once its lease expired.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final

import trio

from unisockets._nursery import open_owned_nursery

from .leases import (
    _EXTEND,
    _RELEASE,
    Leases,
    _alive,
    _channel,
    _owner,
    _state,
    new_instance_id,
)
from .routing import ClusterProtocol, LocalClients, RoutedInput

__all__ = ["DEFAULT_HEARTBEAT", "DEFAULT_LEASE", "ClusterError", "new_instance_id", "run_cluster"]

logger = logging.getLogger("unisockets.signaling.cluster")

#: Seconds between presence updates and lease renewals.
DEFAULT_HEARTBEAT: Final = 1.0
#: Seconds a subnet's owner keeps it without renewing (more than the presence's 3 heartbeats).
DEFAULT_LEASE: Final = 5.0
#: How long a gone owner's inputs wait before they are routed again, in seconds.
_RETRY_DELAY: Final = 0.1
#: Seconds before a deferred connect's first retry (doubled for each next one).
_CONNECT_RETRY: Final = 0.01
#: Seconds between attempts while Redis is unreachable.
_OUTAGE_RETRY: Final = 0.5


class ClusterError(OSError):
    """Redis cannot be reached or used (bad URL, refused connection, wrong server)."""


class _Link(Leases):
    def __init__(
        self, cluster: ClusterProtocol, redis: Any, *, heartbeat: float, lease: float
    ) -> None:
        self.cluster = cluster
        self.redis = redis
        self.me = cluster.instance
        self.heartbeat = heartbeat
        self.lease_ms = int(lease * 1000)
        self.alive_ms = int(heartbeat * 3000)
        self.owners: dict[str, str] = {}
        self.wake = trio.Event()
        self.deferred_added = trio.Event()
        #: One round at a time: close() routes what is left while route_forever may be
        #: inside a round (two rounds would pop one queue and could reorder a subnet).
        self.rounds = trio.Lock()
        import coredis.exceptions

        #: what a lost or restarting Redis raises: retried, never fatal to the instance.
        self.errors: tuple[type[Exception], ...] = (OSError, coredis.exceptions.RedisError)
        self.outage = False
        #: the value of the presence key: which process this instance is, for operators.
        self.presence = f"{socket.gethostname()} {os.getpid()}"
        #: the value of unisockets:epoch when last seen (None: not yet).
        self.epoch: str | None = None
        #: no subnet is claimed before this trio time (see check_epoch).
        self.fence_until = -math.inf
        self.extend = redis.register_script(_EXTEND)
        self.release = redis.register_script(_RELEASE)
        cluster.notify = self.wake.set

    async def trouble(self, exc: Exception) -> None:
        """Redis failed: say so (once per outage) and wait a little before trying again."""
        self.cluster.healthy = False
        if not self.outage:
            self.outage = True
            logger.warning(
                "Redis unreachable (%s): clients stay connected, inputs for subnets"
                " owned elsewhere wait",
                exc,
            )
        await trio.sleep(_OUTAGE_RETRY)

    def recovered(self) -> None:
        self.cluster.healthy = True
        if self.outage:
            self.outage = False
            logger.warning("Redis reachable again")

    async def subscribe(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        while True:
            try:
                async with self.redis.pubsub(
                    channels=[_channel(self.me)], ignore_subscribe_messages=True
                ) as pubsub:
                    if not started:
                        started = True
                        task_status.started()
                    async for message in pubsub:
                        if message.get("type") != "message":
                            continue
                        try:
                            items = json.loads(message["data"])
                            self.cluster.receive_items(items)
                        except Exception:
                            logger.exception("bad cluster message %.200r", message.get("data"))
            except self.errors as exc:
                if not started:
                    raise
                await self.trouble(exc)

    async def route_forever(self) -> None:
        while True:
            await self.wake.wait()
            self.wake = trio.Event()
            self.cluster.notify = self.wake.set
            if self.cluster.deferred:
                self.deferred_added.set()
            while True:
                try:
                    await self.round()
                except self.errors as exc:
                    await self.trouble(exc)
                else:
                    self.recovered()
                    break

    async def retry_forever(self) -> None:
        """Apply deferred connects again after 10, 20, 40, ... ms (their attempt count)."""
        while True:
            await self.deferred_added.wait()
            self.deferred_added = trio.Event()
            while self.cluster.deferred:
                attempt = max(attempt for _, attempt in self.cluster.deferred)
                await trio.sleep(_CONNECT_RETRY * 2 ** (attempt - 1))
                self.cluster.retry_deferred()

    async def expire_forever(self) -> None:
        """Drive the owned subnets' timers (rejoin grace, kept ids).

        Waits for the earliest deadline, at most one heartbeat at a time
        (a subnet taken over or a member leaving may bring a deadline
        earlier), so a timer fires at most one heartbeat late.
        """
        while True:
            deadline = min(self.cluster.next_deadline(), trio.current_time() + self.heartbeat)
            await trio.sleep_until(deadline)
            if self.cluster.next_deadline() <= trio.current_time():
                self.cluster.expire()

    async def round(self) -> None:
        """Route every waiting input, then publish everything queued (until nothing is left).

        Inputs of a subnet whose owner is gone and whose lease has not
        expired yet wait, in order, without holding up other subnets or the
        outputs already queued.
        """
        async with self.rounds:
            await self._round()

    async def _round(self) -> None:
        cluster = self.cluster
        while cluster.routing or cluster.outbox or cluster.dirty:
            waiting: list[RoutedInput] = []
            blocked: set[str] = set()
            while cluster.routing:
                subnet = cluster.routing[0][0]
                owner = None if subnet in blocked else await self.owner_of(subnet)
                item = cluster.take_routed()
                if owner is None:
                    blocked.add(subnet)
                    waiting.append(item)
                elif owner == self.me:
                    cluster.apply_routed(item)
                else:
                    cluster.forward(owner, item)
            cluster.requeue(waiting)
            await self.flush()
            if waiting:
                await trio.sleep(_RETRY_DELAY)

    async def flush(self) -> None:
        cluster = self.cluster
        outbox, cluster.outbox = cluster.outbox, {}
        dirty, cluster.dirty = cluster.dirty, set()
        snapshots = {
            subnet: json.dumps(cluster.snapshot(subnet), separators=(",", ":"))
            for subnet in dirty
            if subnet in cluster.owned
        }
        if not outbox and not snapshots:
            return
        instances = list(outbox)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for subnet, text in snapshots.items():
                    pipe.set(_state(subnet), text)
                counts = [
                    pipe.publish(
                        _channel(instance), json.dumps(outbox[instance], separators=(",", ":"))
                    )
                    for instance in instances
                ]
        except BaseException:
            # not sent (or not all): everything goes again, before what came meanwhile
            for instance, items in outbox.items():
                cluster.outbox[instance] = items + cluster.outbox.get(instance, [])
            cluster.dirty |= dirty
            raise
        lost: list[RoutedInput] = []
        for instance, count in zip(instances, counts, strict=True):
            if await count:
                continue
            # nobody listens: the instance is gone; its clients with it, but not its subnets
            for subnet, owner in list(self.owners.items()):
                if owner == instance:
                    del self.owners[subnet]
            lost += [(item[1], item[2], item[3]) for item in outbox[instance] if item[0] == "i"]
        if lost:
            logger.info("%d inputs for a gone instance: routed again", len(lost))
            cluster.requeue(lost)
            await trio.sleep(_RETRY_DELAY)

    async def keep(self) -> None:
        """Every heartbeat: presence, leases, and the members of gone instances."""
        while True:
            await trio.sleep(self.heartbeat)
            try:
                await self.beat()
                await self.sweep()
                await self.adopt()
            except self.errors as exc:
                await self.trouble(exc)
            else:
                self.recovered()

    async def close(self) -> None:
        """Publish what is left, store the owned subnets, give up leases and presence."""
        async with self.rounds:
            await self._round()
            self.cluster.dirty.update(self.cluster.owned)
            await self.flush()
        for subnet in list(self.cluster.owned):
            await self.release(keys=[_owner(subnet)], args=[self.me])
        await self.redis.delete([_alive(self.me)])


@asynccontextmanager
async def run_cluster(
    cluster: ClusterProtocol,
    url: str,
    clients: LocalClients,
    *,
    heartbeat: float = DEFAULT_HEARTBEAT,
    lease: float = DEFAULT_LEASE,
) -> AsyncIterator[None]:
    """Connect ``cluster`` to the other instances through the Redis at ``url`` for the body.

    Args:
        cluster: this instance's routing.
        url: ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://``,
            ``unix://``), as coredis reads it.
        clients: the server driver's local clients.
        heartbeat: seconds between presence updates and lease renewals.
        lease: seconds a subnet stays owned without renewal; > 3 heartbeats.

    Raises:
        ClusterError: Redis cannot be reached at ``url``.
        ValueError: ``lease`` is not more than three heartbeats.
    """
    import coredis
    import coredis.exceptions

    if not lease > 3 * heartbeat > 0:
        raise ValueError(f"lease ({lease} s) must be more than 3 heartbeats ({heartbeat} s)")
    try:
        redis = coredis.Redis.from_url(url, decode_responses=True)
    except (ValueError, coredis.exceptions.RedisError) as exc:
        raise ClusterError(f"bad Redis URL {url!r}: {exc}") from None
    cluster.clients = clients
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(redis)
            link = _Link(cluster, redis, heartbeat=heartbeat, lease=lease)
            await redis.set(_alive(cluster.instance), link.presence, px=link.alive_ms)
            await link.check_epoch(None)
        except (OSError, coredis.exceptions.RedisError) as exc:
            raise ClusterError(f"cannot use Redis at {url}: {exc}") from None
        async with open_owned_nursery() as nursery:
            await nursery.start(link.subscribe)
            nursery.start_soon(link.route_forever)
            nursery.start_soon(link.keep)
            nursery.start_soon(link.retry_forever)
            if cluster.rejoin_grace:
                nursery.start_soon(link.expire_forever)
            logger.info("instance %s joined the cluster at %s", cluster.instance, url)
            try:
                yield
            finally:
                # The tasks stop first (each stops where nothing is lost: an input is
                # taken only once its owner is known, a failed flush puts its batch
                # back); close() then routes and publishes what is left.
                nursery.cancel_scope.cancel()
                with trio.move_on_after(5.0, shield=True):
                    await link.close()
