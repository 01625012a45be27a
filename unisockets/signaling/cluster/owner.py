"""The owner's side of the cluster's routing: applying a subnet's inputs, sending its outputs.

:class:`OwnerSide` is the part of
:class:`~unisockets.signaling.cluster.routing.ClusterProtocol` that runs the
subnets this instance owns (docs/signaling-server.md, "Several instances over
Redis"): it feeds an input to the subnet's server machine, hands the outputs
for local clients back and queues the others per instance (``"o"``, ``"j"``,
``"f"`` items, :mod:`unisockets.signaling.cluster.routing`), marks the subnet
for a new snapshot unless the input was a relay, and holds a ``connect``
whose listener's ``accepting`` may still be on its way through another
instance. No I/O.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

from unisockets.protocol import (
    Acknowledged,
    Answer,
    Candidate,
    Connect,
    Knock,
    Message,
    Offer,
    RemoteProtocolError,
    decode,
    encode,
)
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.server_states import AliasState, ClientState

__all__ = [
    "CONNECT_ATTEMPTS",
    "LocalClients",
    "OwnerSide",
    "RoutedInput",
    "global_key",
    "split_key",
]

logger = logging.getLogger("unisockets.signaling.cluster")

#: An input waiting for its subnet's owner: ``(subnet, global key, text or None for a close)``.
RoutedInput: TypeAlias = tuple[str, str, str | None]

#: How often a connect to a bound alias of a member on another instance is tried
#: before it is refused (see ClusterProtocol._apply); the I/O side waits between tries.
CONNECT_ATTEMPTS = 5

#: What does not change the subnet's state, so needs no new snapshot.
_RELAYS = (Offer, Answer, Candidate)


class LocalClients(Protocol):
    """What the cluster needs of the server driver: its clients, by local key."""

    def deliver(self, outputs: list[tuple[int, Message]]) -> None:
        """Send each message to the local client of its key (unknown keys: dropped)."""

    def send_texts(self, frames: list[tuple[int, str]]) -> None:
        """Send each encoded message to the local client of its key (unknown keys: dropped)."""

    def fail(self, key: int, code: int, reason: str) -> None:
        """Close the local client ``key`` with ``code`` and ``reason``, as for a violation."""


def global_key(instance: str, key: int) -> str:
    """The key of a local client across instances: ``"<instance>/<key>"``."""
    return f"{instance}/{key}"


def split_key(gkey: str) -> tuple[str, int]:
    """``"<instance>/<key>"`` -> ``(instance, key)``."""
    instance, _, key = gkey.rpartition("/")
    return instance, int(key)


class OwnerSide:
    """How a cluster instance runs the subnets it owns (a base of ``ClusterProtocol``).

    The attributes below are the ``ClusterProtocol``'s (set by its ``__init__``;
    documented there).
    """

    instance: str
    owned: dict[str, SignalingServerProtocol[str]]
    routing: deque[RoutedInput]
    outbox: dict[str, list[list[Any]]]
    dirty: set[str]
    notify: Callable[[], None]
    clients: LocalClients | None
    applied: Callable[[Message, list[Message]], None] | None
    deferred: list[tuple[RoutedInput, int]]
    _clock: Callable[[], float]
    _subnet_of: dict[int, str]
    _ids: dict[int, str]
    _queued: dict[str, int]
    _pending: list[tuple[int, str]] | None
    _answering: bool

    def _apply(
        self,
        subnet: str,
        gkey: str,
        message: Message | None,
        attempt: int = 0,
        *,
        text: str | None = None,
        texts: dict[int, str] | None = None,
    ) -> list[tuple[str, Message]]:
        """Feed one input to the owned subnet's machine; queue outputs for other instances.

        A ``connect`` to an alias that is bound but not accepting, held by a
        member on another instance, waits (:attr:`deferred`) instead of being
        refused at once: that member's ``accepting`` may be on its way through
        its own instance, which one instance would have seen first (the
        client's ``listen`` returns once it is written). It is applied again
        up to :data:`CONNECT_ATTEMPTS` times, then refused as usual.

        Args:
            subnet: an owned subnet.
            gkey: the sender's global key.
            message: what it sent; ``None``: its connection closed.
            attempt: how often this ``connect`` was deferred already.
            text: ``message`` as :func:`~unisockets.protocol.wire.encode`
                writes it, if known (a relay is passed on as it is).
            texts: filled with ``id(output) -> text`` for the outputs encoded
                here (a relay's ``text`` among them), so that the caller does
                not encode them again.

        Returns:
            The outputs for this instance's clients (global keys).

        Raises:
            RemoteProtocolError: the input is a violation; nothing changed.
        """
        machine = self.owned[subnet]
        if message is None:
            outputs = machine.client_disconnected(gkey, now=self._clock())
        else:
            knock_elsewhere = isinstance(message, Knock) and message.subnet != subnet
            if knock_elsewhere and machine.member_id(gkey) is None:
                # a knock again after a rejected one, into another subnet: for its owner
                assert isinstance(message, Knock)
                machine.client_disconnected(gkey)
                self._route(message.subnet, gkey, encode(message))
                return []
            if machine.client_state(gkey) is ClientState.CLOSED:
                machine.client_connected(gkey)
            if (
                isinstance(message, Connect)
                and attempt < CONNECT_ATTEMPTS
                and self._accepting_may_come(machine, message.remote_alias)
            ):
                self.deferred.append(((subnet, gkey, encode(message)), attempt + 1))
                self.notify()
                return []
            outputs = machine.receive(gkey, message)
            if isinstance(message, Knock):
                self._close_replaced(machine)
        if message is None or not isinstance(message, _RELAYS):
            self.dirty.add(subnet)
            if message is not None and self.applied is not None:
                self.applied(message, [m for key, m in outputs if key == gkey])
        # a relay passes on as it came (``text`` is how encode() writes ``message``)
        known = {} if texts is None else texts
        if text is not None and isinstance(message, _RELAYS):
            known[id(message)] = text
        return self._dispatch(machine, outputs, known)

    def _accepting_may_come(self, machine: SignalingServerProtocol[str], alias: str) -> bool:
        """Whether ``alias`` is bound, not accepting, by a member of another instance."""
        info = machine.aliases.get(alias)
        if info is None:
            for held in machine.claimed_aliases.values():
                info = held.get(alias, info)
        if info is None or info.state is not AliasState.BOUND:
            return False
        holder = next((key for key, i in machine.members.items() if i == info.owner), None)
        return holder is not None and split_key(holder)[0] != self.instance

    def retry_deferred(self) -> None:
        """Apply the deferred connects again (the I/O side calls it after a short wait)."""
        deferred, self.deferred = self.deferred, []
        local: list[tuple[int, Message]] = []
        for (subnet, gkey, text), attempt in deferred:
            machine = self.owned.get(subnet)
            if machine is None:  # no longer ours: to its owner, from the start
                self._route(subnet, gkey, text)
                continue
            if machine.client_state(gkey) is not ClientState.JOINED:
                continue  # the client left meanwhile
            assert text is not None
            try:
                local += self._local(self._apply(subnet, gkey, decode(text), attempt))
            except RemoteProtocolError as exc:
                self._fail(gkey, exc.close_code, str(exc))
            except Exception:  # a bug: as one instance, it ends only that client
                logger.exception("%s: unexpected error applying a connect of %s", subnet, gkey)
                self._fail(gkey, 1011, "internal server error")
        if local and self.clients is not None:
            self.clients.deliver(local)

    def _dispatch(
        self,
        machine: SignalingServerProtocol[str],
        outputs: list[tuple[str, Message]],
        texts: dict[int, str] | None = None,
    ) -> list[tuple[str, Message]]:
        local: list[tuple[str, Message]] = []
        texts = {} if texts is None else texts
        for gkey, message in outputs:
            instance, key = split_key(gkey)
            if isinstance(message, Acknowledged):
                joined = None if message.rejected else message.id
                if joined is None:
                    machine.client_disconnected(gkey)  # it may knock again, maybe elsewhere
                if instance == self.instance:
                    self._joined(key, joined, self.instance)
                else:
                    self.outbox.setdefault(instance, []).append(["j", key, joined, self.instance])
            if instance == self.instance:
                local.append((gkey, message))
                continue
            text = texts.get(id(message))
            if text is None:
                text = texts[id(message)] = encode(message)
            self.outbox.setdefault(instance, []).append(["o", key, text])
        self.notify()
        return local

    def _close_replaced(self, machine: SignalingServerProtocol[str]) -> None:
        """Close the connections a knock replaced, wherever they are (gone: nothing to do).

        The machine forgot them; their instance closes them as one instance
        would, and the close it then routes here is ignored by the machine.
        """
        for gkey in machine.take_replaced():
            self._fail(gkey, 1000, "replaced by a newer connection of this node")

    def _local(self, outputs: list[tuple[str, Message]]) -> list[tuple[int, Message]]:
        return [(split_key(gkey)[1], message) for gkey, message in outputs]

    def _joined(self, key: int, member_id: str | None, owner: str | None) -> None:
        """The owner answered local client ``key``'s knock: record its id (``None``: rejected).

        Logged here unless the driver logs it (an answer to the knock it is
        handing over right now, as on one instance).

        Args:
            key: the local client.
            member_id: its id, or ``None`` when the subnet was full.
            owner: the instance that owns the subnet (``None``: an owner that
                does not say, an older version).
        """
        subnet = self._subnet_of.get(key)
        if subnet is None:
            return  # gone meanwhile
        if owner == self.instance:
            where = "owned by this instance"
        elif owner is None:
            where = "owned by another instance"
        else:
            where = f"owned by instance {owner}"
        if member_id is None:
            if not self._answering:
                logger.info(
                    "knock of client %d on full subnet %s (%s) rejected", key, subnet, where
                )
            del self._subnet_of[key]
        else:
            if not self._answering:
                logger.info("join %s (client %d, subnet %s %s)", member_id, key, subnet, where)
            self._ids[key] = member_id

    def _fail_local(self, key: int, code: int, reason: str) -> None:
        """Close a local client; first send what a batch being received queued before."""
        pending = self._pending
        if pending and self.clients is not None:
            self.clients.send_texts(list(pending))
            pending.clear()
        if self.clients is not None:
            self.clients.fail(key, code, reason)

    def _fail(self, gkey: str, code: int, reason: str) -> None:
        instance, key = split_key(gkey)
        if instance == self.instance:
            self._fail_local(key, code, reason)
        else:
            self.outbox.setdefault(instance, []).append(["f", key, code, reason])
            self.notify()

    def _route(self, subnet: str, gkey: str, text: str | None) -> None:
        self.routing.append((subnet, gkey, text))
        self._queued[subnet] = self._queued.get(subnet, 0) + 1
        self.notify()
