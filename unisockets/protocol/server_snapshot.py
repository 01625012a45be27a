"""One subnet of the sans-IO signaling server as plain data, and back (docs/signaling-server.md).

Several signaling server instances serve one network by handing each subnet
to one instance at a time (:mod:`unisockets.signaling.cluster`); the subnet's
state is stored between inputs so that another instance takes over where the
last one stopped. :func:`snapshot_subnet` writes everything
:class:`~unisockets.protocol.server.SignalingServerProtocol` knows of one
subnet as JSON-ready data; :func:`restore_subnet` puts it into another
server machine, which then behaves exactly as the first would have.

The format is a dict with a version (``"v": 2``), the subnet and its members
in join order, each ``{"key", "suffix", "ports", "claims", "token", "lazy"}``
(held aliases as ``[port or alias, state]`` pairs in the order taken; the
rejoin token or ``null``; whether it knocked with ``lazyLinks``). Version 2
added what stable addresses keep (docs/protocol.md, "Stable addresses"):

- ``"kept"``: ``[[id, token, until], ...]``, the ids of the subnet kept for
  members that left;
- ``"held"``: ``[[key, knock], ...]``, the clients whose knock on the subnet
  waits for the end of the rejoin grace (the knock as
  :func:`~unisockets.protocol.wire.encode` writes it), in arrival order;
- ``"holdUntil"``: when the machine's rejoin grace after its start ends, or
  ``null`` when it is over (or off).

Times are wall-clock seconds (``until`` of a kept id, ``holdUntil``), so
that they survive a takeover by another process, whose monotonic clock is
another: the sans-IO machine keeps time on its driver's clock, and
:func:`snapshot_subnet` and :func:`restore_subnet` take both readings of the
same instant (``now`` on the machine's clock, ``wall`` on the wall clock) to
convert. State added to the server later goes in new keys:
:func:`restore_subnet` ignores keys it does not know and a missing key means
"none", so snapshots of older and newer versions still load.

Keys are the driver's keys of the members, so they must be JSON values
(strings here).
"""

from __future__ import annotations

from typing import Any, Final

from .addresses import is_subnet
from .errors import LocalProtocolError, RemoteProtocolError
from .messages import Knock
from .server import SignalingServerProtocol, _Member, _split_alias
from .server_states import AliasState
from .wire import decode, encode

__all__ = ["SNAPSHOT_VERSION", "restore_subnet", "snapshot_subnet"]

#: The format written by :func:`snapshot_subnet`.
SNAPSHOT_VERSION: Final = 2


def snapshot_subnet(
    server: SignalingServerProtocol[str],
    subnet: str,
    *,
    now: float | None = None,
    wall: float | None = None,
) -> dict[str, Any]:
    """Return what ``server`` knows of ``subnet`` as JSON-ready data.

    Args:
        server: a server machine whose keys are strings.
        subnet: three octets such as ``"10.0.0"``; a subnet without members
            gives a snapshot without members.
        now: the current time on the machine's clock, seconds; ``None``: the
            time of its last ``expire`` (or its start).
        wall: the same instant on the wall clock (``time.time()``), seconds;
            ``None``: ``now`` (deadlines stay on the machine's clock, enough
            when the same process loads the snapshot again).

    Returns:
        ``{"v": 2, "subnet": subnet, "members": [...], "kept": [...],
        "held": [...], "holdUntil": ...}`` (see the module docstring).
    """
    now = server._now if now is None else now
    shift = 0.0 if wall is None else wall - now
    members = server._subnets.get(subnet, {})
    prefix = subnet + "."
    return {
        "v": SNAPSHOT_VERSION,
        "subnet": subnet,
        "members": [
            {
                "key": member.key,
                "suffix": member.suffix,
                "ports": [[port, state.value] for port, state in member.ports.items()],
                "claims": [[alias, state.value] for alias, state in member.claims.items()],
                "token": member.token,
                "lazy": member.lazy,
            }
            for member in members.values()
        ],
        "kept": [
            [node_id, token, until + shift]
            for node_id, (token, until) in server._kept.items()
            if node_id.startswith(prefix)
        ],
        "held": [
            [key, encode(knock)] for key, knock in server._waiting.items() if knock.subnet == subnet
        ],
        "holdUntil": server._hold_until + shift if server._holding else None,
    }


def restore_subnet(
    server: SignalingServerProtocol[str],
    snapshot: dict[str, Any],
    *,
    now: float | None = None,
    wall: float | None = None,
) -> list[str]:
    """Load a :func:`snapshot_subnet` into ``server``, which must not know the subnet yet.

    The members become joined clients of ``server`` with their ids, aliases,
    tokens, lazy flags and join order; their keys are registered as
    connected. The held clients become connected clients whose knock waits
    (``HELD``), the kept ids are kept until the same instant, and the rejoin
    grace after the start is the snapshot's (a snapshot with ``"holdUntil":
    null`` ends it in ``server``; a version 1 snapshot leaves it as it is).

    Args:
        server: the server machine to load into.
        snapshot: what :func:`snapshot_subnet` returned (after a JSON round trip).
        now: the current time on ``server``'s clock, seconds; ``None``: the
            time of its last ``expire`` (or its start).
        wall: the same instant on the clock the snapshot's times are on
            (``time.time()`` when it was written with ``wall=``); ``None``: ``now``.

    Returns:
        The keys of the restored members, in join order.

    Raises:
        LocalProtocolError: the snapshot is of a newer format, malformed, or
            names a subnet, key or id ``server`` already has.
    """
    try:
        version = snapshot["v"]
        subnet = snapshot["subnet"]
        records = snapshot.get("members", [])
        if not isinstance(version, int) or version > SNAPSHOT_VERSION:
            raise LocalProtocolError(f"snapshot format {version!r} is newer than this server's")
        if not isinstance(subnet, str) or not is_subnet(subnet):
            raise LocalProtocolError(f"snapshot of a bad subnet {subnet!r:.40}")
        if subnet in server._subnets:
            raise LocalProtocolError(f"subnet {subnet} is already in this server")
        now = server._now if now is None else float(now)
        shift = 0.0 if wall is None else now - wall
        members: list[_Member[str]] = []
        for record in records:
            key = record["key"]
            suffix = record["suffix"]
            if not isinstance(key, str) or key in server._clients:
                raise LocalProtocolError(f"snapshot key {key!r:.80} is not new")
            if not isinstance(suffix, int) or suffix not in range(256):
                raise LocalProtocolError(f"snapshot suffix {suffix!r:.20} is not 0..255")
            token = record.get("token")
            if token is not None and not isinstance(token, str):
                raise LocalProtocolError(f"snapshot token of {key!r:.80} is not a string")
            member = _Member(key, subnet, suffix, token, record.get("lazy") is True)
            member.ports = {int(port): AliasState(state) for port, state in record["ports"]}
            member.claims = {str(alias): AliasState(state) for alias, state in record["claims"]}
            held = [*member.ports.values(), *member.claims.values()]
            if AliasState.FREE in held:
                raise LocalProtocolError(f"snapshot of {member.id} holds a FREE alias")
            members.append(member)
        kept: dict[str, tuple[str, float]] = {}
        for node_id, token, until in snapshot.get("kept", []):
            if not isinstance(node_id, str) or node_id.rpartition(".")[0] != subnet:
                raise LocalProtocolError(f"snapshot keeps {node_id!r:.40}, not of {subnet}")
            kept[node_id] = (str(token), float(until) + shift)
        waiting: dict[str, Knock] = {}
        for key, text in snapshot.get("held", []):
            knock = decode(text)
            if not isinstance(key, str) or key in server._clients or key in waiting:
                raise LocalProtocolError(f"snapshot key {key!r:.80} is not new")
            if not isinstance(knock, Knock) or knock.subnet != subnet:
                raise LocalProtocolError(f"snapshot holds {text!r:.80}, not a knock on {subnet}")
            waiting[key] = knock
        hold_until = snapshot.get("holdUntil", False)
        if hold_until is not False and hold_until is not None:
            hold_until = float(hold_until) + shift
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"malformed snapshot: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise LocalProtocolError(f"malformed snapshot: {exc!r:.200}") from None
    if len({member.id for member in members}) != len(members) or len(
        {member.key for member in members}
    ) != len(members):
        raise LocalProtocolError(f"snapshot of {subnet} names an id or a key twice")
    if any(member.key in waiting for member in members) or any(
        member.id in kept for member in members
    ):
        raise LocalProtocolError(f"snapshot of {subnet} names a key or an id twice")
    by_id = {member.id: member for member in members}
    server._now = max(server._now, now)
    server._kept.update(kept)
    for key, knock in waiting.items():
        server._clients[key] = None
        server._waiting[key] = knock
    if hold_until is None:
        server._holding = False
    elif hold_until is not False:
        server._holding = True
        server._hold_until = hold_until
    server._subnets[subnet] = by_id
    for member in members:
        server._clients[member.key] = member
        server._by_id[member.id] = member
        for alias in member.claims:
            server._claims.setdefault(subnet, {})[alias] = member
            address = _split_alias(alias)[0]
            claimed = server._claimed.setdefault(subnet, {})
            claimed[address] = claimed.get(address, 0) + 1
    if not by_id:
        del server._subnets[subnet]
    return [member.key for member in members]
