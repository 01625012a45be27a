"""Which instance applies a message, and where its outputs go: the cluster's routing, no I/O.

Several signaling server instances serve one network by giving each subnet to
one instance at a time, its *owner* (docs/signaling-server.md, "Several
instances over Redis"). The owner runs the ordinary sans-IO server machine
(:class:`~unisockets.protocol.server.SignalingServerProtocol`) for the
subnet, keyed by *global keys* ``"<instance>/<local key>"``, so the exact
behaviour of one instance holds whatever instance a member is connected to.

:class:`ClusterProtocol` stands in for the server machine in the trio driver
(:class:`~unisockets.signaling.server.SignalingServer` calls the same four
methods). An input of a client whose subnet this instance owns is applied at
once and its outputs for local clients are returned, as on one instance.
Every other input waits in :attr:`ClusterProtocol.routing` for the I/O side
(:mod:`unisockets.signaling.cluster.redis_link`) to find the subnet's owner
and forward it. Outputs for clients of other instances wait in
:attr:`ClusterProtocol.outbox`, one ordered list of *items* per instance;
the I/O side publishes each list as one message and hands what arrives to
:meth:`ClusterProtocol.receive_items`. The items, JSON arrays:

- ``["i", subnet, global key, text | null]``: an input for the subnet's owner
  (the message as :func:`~unisockets.protocol.wire.encode` writes it; ``null``:
  the client's connection closed);
- ``["o", local key, text]``: a message to send to a local client;
- ``["j", local key, id | null, owner]``: the client joined with that id
  (``null``: its knock was rejected); ``owner`` is the instance that answered
  (for the log; absent from older versions);
- ``["f", local key, code, reason]``: close the client (a protocol violation
  the owner found, with the close code and reason one instance sends; or a
  connection replaced by a newer one of the same node, docs/protocol.md,
  "Stable addresses", closed with 1000 as one instance closes it).

Stable addresses work across instances because the owner's machine is the
one instance's: a knock with a node's id and token reaches the owner
wherever the node reconnected, the owner replaces the old member (whatever
instance held its connection, alive or dead) and tells the instance that
holds the old connection to close it. With a ``rejoin_grace``, kept ids and
knocks held after the start live in the owner's machine and its snapshot;
the owning instance drives their timers (:meth:`ClusterProtocol.expire` at
:meth:`ClusterProtocol.next_deadline`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from unisockets.protocol import (
    Knock,
    Message,
    RemoteProtocolError,
    decode,
    encode,
)
from unisockets.protocol.server import DEFAULT_SUFFIXES, SignalingServerProtocol
from unisockets.protocol.server_snapshot import restore_subnet, snapshot_subnet

from .owner import (
    LocalClients,
    OwnerSide,
    RoutedInput,
    global_key,
    logger,
    split_key,
)

__all__ = ["ClusterProtocol", "LocalClients", "RoutedInput", "global_key", "split_key"]


class ClusterProtocol(OwnerSide):
    """The server machine of a cluster instance: owned subnets applied here, others routed.

    Args:
        instance: this instance's id, unique in the cluster (no ``"/"``).
        suffixes: the suffixes handed out as ids (as for one instance); all
            instances of a cluster must use the same.
        rejoin_grace: seconds, >= 0, as for one instance
            (:class:`~unisockets.protocol.server.SignalingServerProtocol`): a
            subnet this instance creates (none stored) holds knocks until
            this long after the instance started; a subnet loaded from its
            snapshot holds as the snapshot says; kept ids live in the
            owner's machine. All instances of a cluster should use the same.
        clock: the driver's monotonic clock, seconds (``trio.current_time``).
        wall_clock: the wall clock, seconds (``time.time``): the snapshots'
            deadlines are on it, so that another process takes them over.

    Raises:
        ValueError: a bad instance id.
        LocalProtocolError: bad ``suffixes`` or ``rejoin_grace``.

    Attributes:
        instance: as given.
        routing: inputs waiting for their subnet's owner, in arrival order.
        outbox: instance id -> the items to publish to it, in order.
        dirty: the owned subnets whose state changed since their last snapshot.
        owned: subnet -> the server machine of every subnet this instance owns.
        notify: called (without arguments) whenever ``routing``, ``outbox`` or
            ``dirty`` got something; the I/O side sets it.
        clients: the driver's clients, for outputs that arrive outside a
            call from the driver; the I/O side sets it.
        applied: called with each input other than a relay this instance
            applied as owner and the replies to its sender (metrics).
        healthy: whether Redis answers (the I/O side keeps it up to date).
    """

    def __init__(
        self,
        instance: str,
        *,
        suffixes: range = DEFAULT_SUFFIXES,
        rejoin_grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not instance or "/" in instance:
            raise ValueError(f"bad instance id {instance!r}")
        self.instance = instance
        self._suffixes = suffixes
        #: seconds (see SignalingServerProtocol); the same on every instance of a cluster.
        self.rejoin_grace = rejoin_grace
        self._clock = clock
        self._wall_clock = wall_clock
        #: when this instance started, on ``clock``: a new subnet holds knocks until + grace.
        self._started = clock()
        SignalingServerProtocol(suffixes=suffixes, rejoin_grace=rejoin_grace)  # checks both
        #: the clients that have not knocked: only to answer their messages as one instance does.
        self._lobby: SignalingServerProtocol[int] = SignalingServerProtocol(suffixes=suffixes)
        #: local key -> the subnet its knock went to.
        self._subnet_of: dict[int, str] = {}
        #: local key -> id, once the owner acknowledged the knock.
        self._ids: dict[int, str] = {}
        #: subnet -> how many of its inputs wait in ``routing`` (applied here only when 0).
        self._queued: dict[str, int] = {}
        self.owned: dict[str, SignalingServerProtocol[str]] = {}
        self.routing: deque[RoutedInput] = deque()
        self.outbox: dict[str, list[list[Any]]] = {}
        self.dirty: set[str] = set()
        self.notify: Callable[[], None] = lambda: None
        self.clients: LocalClients | None = None
        self.applied: Callable[[Message, list[Message]], None] | None = None
        #: connects waiting for their listener's ``accepting``, with their attempt count.
        self.deferred: list[tuple[RoutedInput, int]] = []
        self.healthy = True
        #: while :meth:`receive_items` runs: the frames it will send (see ``_fail_local``).
        self._pending: list[tuple[int, str]] | None = None
        #: while :meth:`receive` applies a local client's input: the driver logs the answers.
        self._answering = False

    # -- the driver's side: the server machine's four methods -------------------

    def client_connected(self, key: int) -> list[tuple[int, Message]]:
        """A local client connected; it is not in any subnet before its knock.

        Args:
            key: the driver's key of the connection (unique in this instance).

        Returns:
            ``[]``, as one instance (the server says nothing before the knock).

        Raises:
            LocalProtocolError: ``key`` is already connected.
        """
        return self._lobby.client_connected(key)

    def receive(
        self, key: int, message: Message, text: str | None = None
    ) -> list[tuple[int, Message]]:
        """A local client's message: applied here if this instance owns its subnet, else routed.

        A knock decides the client's subnet; every later message goes to
        that subnet's owner, in the order the client sent them.

        Args:
            key: a connected local client.
            message: what it sent.
            text: ``message`` as :func:`~unisockets.protocol.wire.encode`
                writes it, if the driver has it (it is forwarded as it is,
                saving an encoding); ``None``: encoded here when needed.

        Returns:
            The outputs for local clients when applied here; ``[]`` when routed
            (outputs then arrive through :attr:`clients`).

        Raises:
            RemoteProtocolError: a violation found here (before the knock, or
                by the owner's machine when it is this instance).
            LocalProtocolError: ``key`` is not connected.
        """
        subnet = self._subnet_of.get(key)
        if subnet is None:
            if not isinstance(message, Knock):
                return self._lobby.receive(key, message)  # raises as one instance does
            subnet = self._subnet_of[key] = message.subnet
        gkey = global_key(self.instance, key)
        if subnet in self.owned and not self._queued.get(subnet):
            self._answering = True  # the driver logs what it hands back (see _joined)
            try:
                return self._local(self._apply(subnet, gkey, message, text=text))
            finally:
                self._answering = False
        self._route(subnet, gkey, encode(message) if text is None else text)
        return []

    def client_disconnected(self, key: int) -> list[tuple[int, Message]]:
        """A local client's connection closed: it leaves its subnet, wherever that is owned.

        Args:
            key: the local client (unknown keys are ignored).

        Returns:
            The ``goodbye`` and alias removals for local clients when this
            instance owns the subnet, else ``[]`` (the owner sends them).
        """
        self._lobby.client_disconnected(key)
        self._ids.pop(key, None)
        subnet = self._subnet_of.pop(key, None)
        if subnet is None:
            return []
        gkey = global_key(self.instance, key)
        if subnet in self.owned and not self._queued.get(subnet):
            return self._local(self._apply(subnet, gkey, None))
        self._route(subnet, gkey, None)
        return []

    def member_id(self, key: int) -> str | None:
        """The id the owner gave the local client ``key``, or ``None`` before (or without) one."""
        return self._ids.get(key)

    # -- the I/O side ---------------------------------------------------------

    def own(self, subnet: str, snapshot: dict[str, Any] | None) -> None:
        """Take ``subnet`` over: a new server machine for it, loaded from its last snapshot.

        Args:
            subnet: three octets such as ``"10.0.0"``.
            snapshot: the stored state (JSON-decoded), or ``None`` for a new subnet.

        Raises:
            LocalProtocolError: the snapshot does not load (see
                :func:`~unisockets.protocol.server_snapshot.restore_subnet`).
        """
        now = self._clock()
        machine: SignalingServerProtocol[str] = SignalingServerProtocol(
            suffixes=self._suffixes, rejoin_grace=self.rejoin_grace, now=self._started
        )
        machine.expire(now)  # the grace after this instance's start, if not over
        if snapshot is not None:
            restore_subnet(machine, snapshot, now=now, wall=self._wall_clock())
        self.owned[subnet] = machine

    def disown(self, subnet: str) -> None:
        """Stop applying ``subnet``'s inputs (the lease is gone); its state stays in the store."""
        self.owned.pop(subnet, None)
        self.dirty.discard(subnet)

    def snapshot(self, subnet: str) -> dict[str, Any]:
        """The state of an owned subnet, for the store."""
        return snapshot_subnet(
            self.owned[subnet], subnet, now=self._clock(), wall=self._wall_clock()
        )

    def next_deadline(self) -> float:
        """When :meth:`expire` has something to do next, on ``clock`` (``inf``: never)."""
        return min((m.next_deadline() for m in self.owned.values()), default=math.inf)

    def expire(self) -> None:
        """Feed the time to the owned subnets' machines; deliver what their timers answer.

        Ends the rejoin grace (the held knocks are answered, lowest free id
        first) and forgets kept ids whose time is up, in the owning instance
        only (docs/signaling-server.md, "Several instances over Redis").
        """
        now = self._clock()
        local: list[tuple[int, Message]] = []
        for subnet, machine in list(self.owned.items()):
            if machine.next_deadline() > now:
                continue
            outputs = machine.expire(now)
            self.dirty.add(subnet)
            local += self._local(self._dispatch(machine, outputs))
            self._close_replaced(machine)
        self.notify()
        if local and self.clients is not None:
            self.clients.deliver(local)

    def take_routed(self) -> RoutedInput:
        """Take the first input of :attr:`routing` (its owner was found)."""
        item = self.routing.popleft()
        left = self._queued[item[0]] - 1
        if left:
            self._queued[item[0]] = left
        else:
            del self._queued[item[0]]
        return item

    def requeue(self, items: Iterable[RoutedInput]) -> None:
        """Put inputs back at the front of :attr:`routing`, in order (no owner answered)."""
        items = list(items)
        for item in reversed(items):
            self.routing.appendleft(item)
            self._queued[item[0]] = self._queued.get(item[0], 0) + 1

    def forward(self, owner: str, item: RoutedInput) -> None:
        """Queue a routed input for its subnet's owner, another instance."""
        self.outbox.setdefault(owner, []).append(["i", *item])

    def apply_routed(self, item: RoutedInput) -> None:
        """Apply a routed input of a subnet this instance owns; deliver its local outputs.

        A violation closes the sender wherever it is (an ``"f"`` item), with
        the close code and reason one instance sends; an unexpected error
        (a bug) is logged and closes the sender with 1011, as one instance
        does; it never raises.

        Args:
            item: ``(subnet, global key, text or None for a close)``.
        """
        frames = self._routed_frames(item)
        if frames and self.clients is not None:
            self.clients.send_texts(frames)

    def _routed_frames(self, item: RoutedInput) -> list[tuple[int, str]]:
        """Apply a routed input (as :meth:`apply_routed`); return its local outputs, encoded.

        A relay's output is the text it came in (no second encoding); a
        message for several local clients is encoded once.
        """
        subnet, gkey, text = item
        texts: dict[int, str] = {}
        try:
            message = None if text is None else decode(text)
            outputs = self._apply(subnet, gkey, message, text=text, texts=texts)
        except RemoteProtocolError as exc:
            self._fail(gkey, exc.close_code, str(exc))
            return []
        except Exception:  # a bug: as one instance, it ends only the client it happened in
            logger.exception("%s: unexpected error applying an input of %s", subnet, gkey)
            self._fail(gkey, 1011, "internal server error")
            return []
        frames = []
        for key, output in self._local(outputs):
            encoded = texts.get(id(output))
            if encoded is None:
                encoded = texts[id(output)] = encode(output)
            frames.append((key, encoded))
        return frames

    def receive_items(self, items: list[list[Any]]) -> None:
        """Handle what another instance published to this one, in order.

        Everything the items send to local clients (``"o"`` items and the
        outputs of the ``"i"`` items applied here) goes out in one write per
        client, in item order; a close (``"f"``, or a violation found here)
        first sends what was queued before it.

        Args:
            items: the JSON-decoded message: ``"i"``, ``"o"``, ``"j"`` and
                ``"f"`` items as the module docstring describes; an unknown
                kind is logged and skipped.
        """
        frames: list[tuple[int, str]] = []
        self._pending = frames
        try:
            for item in items:
                kind = item[0]
                if kind == "o":
                    frames.append((int(item[1]), str(item[2])))
                elif kind == "j":
                    self._joined(int(item[1]), item[2], item[3] if len(item) > 3 else None)
                elif kind == "f":
                    self._fail_local(int(item[1]), int(item[2]), str(item[3]))
                elif kind == "i":
                    routed: RoutedInput = (str(item[1]), str(item[2]), item[3])
                    if routed[0] in self.owned and not self._queued.get(routed[0]):
                        frames += self._routed_frames(routed)
                    else:
                        self._route(*routed)
                else:
                    logger.warning("unknown cluster item %.80r", item)
        finally:
            self._pending = None
            if frames and self.clients is not None:
                self.clients.send_texts(frames)

    def evict(self, instances: set[str]) -> None:
        """Members connected to instances that are gone leave their subnets (as on a close).

        Args:
            instances: the ids of instances whose presence expired.
        """
        for subnet, machine in list(self.owned.items()):
            gone = [gkey for gkey in machine.clients if split_key(gkey)[0] in instances]
            local: list[tuple[int, Message]] = []
            for gkey in gone:
                local += self._local(self._apply(subnet, gkey, None))
            if local and self.clients is not None:
                self.clients.deliver(local)

    def client_subnets(self) -> set[str]:
        """The subnets this instance's clients knocked on."""
        return set(self._subnet_of.values())

    def instances_of_owned(self) -> set[str]:
        """The other instances that have clients in the subnets this instance owns."""
        return {
            split_key(gkey)[0] for machine in self.owned.values() for gkey in machine.clients
        } - {self.instance}

    @property
    def queue_depth(self) -> int:
        """Inputs waiting for an owner plus items waiting to be published."""
        return len(self.routing) + sum(len(items) for items in self.outbox.values())
