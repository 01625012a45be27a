"""The cluster's leases in Redis: which instance owns a subnet, presence, and lost data.

:class:`Leases` is the part of the cluster's I/O
(:mod:`unisockets.signaling.cluster.redis_link`, whose module docstring
describes the keys) that decides ownership: finding (or taking) a subnet's
owner and loading its snapshot, renewing this instance's leases and presence
every heartbeat, removing the members of instances whose presence expired,
adopting the subnets of this instance's clients whose owner is gone, and
noticing that Redis lost the cluster's data (the epoch key).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Final

import trio

from .routing import ClusterProtocol

__all__ = ["PREFIX", "Leases", "new_instance_id"]

logger = logging.getLogger("unisockets.signaling.cluster")

#: The key prefix of everything the cluster stores.
PREFIX: Final = "unisockets:"

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def new_instance_id() -> str:
    """A fresh instance id: 12 random hex digits."""
    return uuid.uuid4().hex[:12]


#: A random value that lives as long as Redis keeps the cluster's data.
_EPOCH: Final = f"{PREFIX}epoch"


def _alive(instance: str) -> str:
    return f"{PREFIX}alive:{instance}"


def _owner(subnet: str) -> str:
    return f"{PREFIX}owner:{subnet}"


def _state(subnet: str) -> str:
    return f"{PREFIX}subnet:{subnet}"


def _channel(instance: str) -> str:
    return f"{PREFIX}instance:{instance}"


class Leases:
    """Ownership and presence for one instance (a base of the Redis link).

    The attributes below are the link's (set by its ``__init__``).
    """

    cluster: ClusterProtocol
    redis: Any
    me: str
    heartbeat: float
    lease_ms: int
    alive_ms: int
    presence: str
    owners: dict[str, str]
    epoch: str | None
    fence_until: float
    extend: Any

    async def owner_of(self, subnet: str) -> str | None:
        """The instance that owns ``subnet``, taking it when nobody does; ``None``: wait."""
        if subnet in self.cluster.owned:
            return self.me
        cached = self.owners.get(subnet)
        if cached is not None:
            return cached
        owner: str | None = await self.redis.get(_owner(subnet))
        if owner is None:
            import coredis

            await self.check_epoch(await self.redis.get(_EPOCH))
            if trio.current_time() < self.fence_until:
                return None  # Redis lost its data: owners first claim their subnets again
            taken = await self.redis.set(
                _owner(subnet), self.me, condition=coredis.PureToken.NX, px=self.lease_ms
            )
            if taken:
                await self._take(subnet)
                return self.me
            owner = await self.redis.get(_owner(subnet))
            if owner is None:
                return None
        if owner == self.me:  # a lease of ours whose machine we dropped: load it again
            await self._take(subnet)
            return self.me
        if not await self.redis.exists([_alive(owner)]):
            return None  # gone; its lease expires soon
        self.owners[subnet] = owner
        return owner

    async def _take(self, subnet: str) -> None:
        """Load ``subnet``'s snapshot into a new machine, unless a machine already runs it.

        Two tasks may find the same free subnet (the routing round and the
        heartbeat's :meth:`adopt`); the one that comes second must not
        replace the live machine (and its members since) with the stored state.
        """
        if subnet in self.cluster.owned:
            return
        text = await self.redis.get(_state(subnet))
        if subnet in self.cluster.owned:
            return  # taken by the other task meanwhile: its machine is the truth
        snapshot = None if text is None else json.loads(text)
        self.cluster.own(subnet, snapshot)
        logger.info(
            "owner of subnet %s (%d members)", subnet, len(self.cluster.owned[subnet].members)
        )
        await self.sweep()

    async def check_epoch(self, current: str | None) -> None:
        """Notice that Redis lost the cluster's data (a restart without persistence).

        Every instance remembers the value of ``unisockets:epoch``; when it
        is gone (or another), the leases went with it, and a subnet's owner
        still holds its state in memory. For one lease, instances then claim
        no subnet they do not hold, so that every owner takes its subnets
        back first (at its next heartbeat) and no subnet restarts empty; and
        no owner takes members of instances without a presence key for gone.
        """
        if current is not None and current == self.epoch:
            return
        if self.epoch is not None:
            logger.warning(
                "Redis lost the cluster's data (restarted without persistence?):"
                " no new subnet owners for %g s",
                self.lease_ms / 1000,
            )
            self.fence_until = trio.current_time() + self.lease_ms / 1000
        import coredis

        await self.redis.set(_EPOCH, new_instance_id(), condition=coredis.PureToken.NX)
        self.epoch = await self.redis.get(_EPOCH)

    async def beat(self) -> None:
        subnets = list(self.cluster.owned)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(_alive(self.me), self.presence, px=self.alive_ms)
            epoch = pipe.get(_EPOCH)
            kept = [
                self.extend(keys=[_owner(subnet)], args=[self.me, self.lease_ms], client=pipe)
                for subnet in subnets
            ]
        await self.check_epoch(await epoch)
        import coredis

        for subnet, result in zip(subnets, kept, strict=True):
            if await result:
                continue
            # expired (Redis was away, or restarted without our keys): ours again if free,
            # and this machine is the truth; another owner's meanwhile: theirs
            taken = await self.redis.set(
                _owner(subnet), self.me, condition=coredis.PureToken.NX, px=self.lease_ms
            )
            if taken:
                self.cluster.dirty.add(subnet)
                self.cluster.notify()
            else:
                logger.warning("lost the lease of subnet %s", subnet)
                self.cluster.disown(subnet)

    async def sweep(self) -> None:
        others = sorted(self.cluster.instances_of_owned())
        if not others or trio.current_time() < self.fence_until:
            return  # nobody else; or Redis lost its data, presence keys are coming back
        async with self.redis.pipeline(transaction=False) as pipe:
            found = [pipe.exists([_alive(instance)]) for instance in others]
        gone = {
            instance for instance, exists in zip(others, found, strict=True) if not await exists
        }
        if gone:
            logger.info("instances gone: %s", ", ".join(sorted(gone)))
            self.cluster.evict(gone)

    async def adopt(self) -> None:
        """Subnets of our clients whose owner is gone: taken over once the lease expired.

        Without it, a subnet whose owner died would wait for the next input of
        one of its members to be taken over, and its members would not hear
        of the dead instance's members leaving until then.
        """
        subnets = sorted(self.cluster.client_subnets() - set(self.cluster.owned))
        if not subnets:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            owners = [pipe.get(_owner(subnet)) for subnet in subnets]
        for subnet, pending in zip(subnets, owners, strict=True):
            owner = await pending
            alive = owner is not None and await self.redis.exists([_alive(owner)])
            if not alive:
                self.owners.pop(subnet, None)
                await self.owner_of(subnet)
