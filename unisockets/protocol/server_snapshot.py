"""One subnet of the sans-IO signaling server as plain data, and back (docs/signaling-server.md).

Several signaling server instances serve one network by handing each subnet
to one instance at a time (:mod:`unisockets.signaling.cluster`); the subnet's
state is stored between inputs so that another instance takes over where the
last one stopped. :func:`snapshot_subnet` writes everything
:class:`~unisockets.protocol.server.SignalingServerProtocol` knows of one
subnet as JSON-ready data; :func:`restore_subnet` puts it into another
server machine, which then behaves exactly as the first would have.

The format is a dict with a version (``"v": 1``), the subnet and its members
in join order, each ``{"key", "suffix", "ports", "claims"}`` (held aliases as
``[port or alias, state]`` pairs in the order taken). State added to the
server later (e.g. a grace period for members that left) goes in new keys:
:func:`restore_subnet` ignores keys it does not know and a missing key means
"none", so snapshots of older and newer versions still load.

Keys are the driver's keys of the members, so they must be JSON values
(strings here).
"""

from __future__ import annotations

from typing import Any, Final

from .addresses import is_subnet
from .errors import LocalProtocolError
from .server import SignalingServerProtocol, _Member, _split_alias
from .server_states import AliasState

__all__ = ["SNAPSHOT_VERSION", "restore_subnet", "snapshot_subnet"]

#: The format written by :func:`snapshot_subnet`.
SNAPSHOT_VERSION: Final = 1


def snapshot_subnet(server: SignalingServerProtocol[str], subnet: str) -> dict[str, Any]:
    """Return what ``server`` knows of ``subnet`` as JSON-ready data.

    Args:
        server: a server machine whose keys are strings.
        subnet: three octets such as ``"10.0.0"``; a subnet without members
            gives a snapshot without members.

    Returns:
        ``{"v": 1, "subnet": subnet, "members": [...]}`` (see the module docstring).
    """
    members = server._subnets.get(subnet, {})
    return {
        "v": SNAPSHOT_VERSION,
        "subnet": subnet,
        "members": [
            {
                "key": member.key,
                "suffix": member.suffix,
                "ports": [[port, state.value] for port, state in member.ports.items()],
                "claims": [[alias, state.value] for alias, state in member.claims.items()],
            }
            for member in members.values()
        ],
    }


def restore_subnet(server: SignalingServerProtocol[str], snapshot: dict[str, Any]) -> list[str]:
    """Load a :func:`snapshot_subnet` into ``server``, which must not know the subnet yet.

    The members become joined clients of ``server`` with their ids, aliases
    and join order; their keys are registered as connected.

    Args:
        server: the server machine to load into.
        snapshot: what :func:`snapshot_subnet` returned (after a JSON round trip).

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
        members: list[_Member[str]] = []
        for record in records:
            key = record["key"]
            suffix = record["suffix"]
            if not isinstance(key, str) or key in server._clients:
                raise LocalProtocolError(f"snapshot key {key!r:.80} is not new")
            if not isinstance(suffix, int) or suffix not in range(256):
                raise LocalProtocolError(f"snapshot suffix {suffix!r:.20} is not 0..255")
            member = _Member(key, subnet, suffix)
            member.ports = {int(port): AliasState(state) for port, state in record["ports"]}
            member.claims = {str(alias): AliasState(state) for alias, state in record["claims"]}
            held = [*member.ports.values(), *member.claims.values()]
            if AliasState.FREE in held:
                raise LocalProtocolError(f"snapshot of {member.id} holds a FREE alias")
            members.append(member)
    except (KeyError, TypeError, ValueError) as exc:
        raise LocalProtocolError(f"malformed snapshot: {exc!r:.200}") from None
    if len({member.id for member in members}) != len(members) or len(
        {member.key for member in members}
    ) != len(members):
        raise LocalProtocolError(f"snapshot of {subnet} names an id or a key twice")
    by_id = {member.id: member for member in members}
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
