"""Overlay addresses: subnets, node ids and aliases (docs/concepts.md, "Subnets and addresses").

- A *subnet* is the first three octets of an IPv4 address: ``"10.0.0"``.
- A node *id* is a dotted IPv4 address inside a subnet: ``"10.0.0.3"``.
- An *alias* is ``"<id>:<port>"`` with a port in 0..65535: ``"10.0.0.3:1234"``.

All strings are canonical: decimal octets 0..255 and ports 0..65535 with no
sign, no leading zeros and no white space, because the wire compares them as
strings.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import LocalProtocolError

__all__ = [
    "MAX_PORT",
    "format_alias",
    "is_alias",
    "is_id",
    "is_subnet",
    "make_id",
    "parse_alias",
    "split_id",
]

MAX_PORT: Final = 65535

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PORT = r"(?:[1-9][0-9]{0,4}|0)"
_SUBNET_RE: Final = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}")
_ID_RE: Final = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET})\.({_OCTET})")
_ALIAS_RE: Final = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}):({_PORT})")


def is_subnet(value: object) -> bool:
    """Return whether ``value`` is a canonical three-octet subnet string like ``"10.0.0"``."""
    return isinstance(value, str) and _SUBNET_RE.fullmatch(value) is not None


def is_id(value: object) -> bool:
    """Return whether ``value`` is a canonical dotted IPv4 string like ``"10.0.0.3"``."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def is_alias(value: object) -> bool:
    """Return whether ``value`` is a canonical ``"<ipv4>:<port>"`` string, port 0..65535."""
    if not isinstance(value, str):
        return False
    match = _ALIAS_RE.fullmatch(value)
    return match is not None and int(match.group(2)) <= MAX_PORT


def split_id(node_id: str) -> tuple[str, int]:
    """Split a node id into its subnet and suffix.

    Args:
        node_id: a canonical dotted IPv4 string, e.g. ``"10.0.0.3"``.

    Returns:
        ``(subnet, suffix)``, e.g. ``("10.0.0", 3)``.

    Raises:
        LocalProtocolError: ``node_id`` is not a canonical IPv4 string.
    """
    match = _ID_RE.fullmatch(node_id)
    if match is None:
        raise LocalProtocolError(f"not a node id (dotted IPv4): {node_id!r}")
    return match.group(1), int(match.group(2))


def make_id(subnet: str, suffix: int) -> str:
    """Build the node id ``"<subnet>.<suffix>"``.

    Args:
        subnet: a canonical three-octet subnet, e.g. ``"10.0.0"``.
        suffix: the last octet, 0..255.

    Raises:
        LocalProtocolError: the subnet or the suffix is out of range.
    """
    if not is_subnet(subnet) or not 0 <= suffix <= 255:
        raise LocalProtocolError(f"no node id for subnet {subnet!r} and suffix {suffix!r}")
    return f"{subnet}.{suffix}"


def parse_alias(alias: str) -> tuple[str, int]:
    """Split an alias into its address and port.

    Args:
        alias: e.g. ``"10.0.0.3:1234"``.

    Returns:
        ``(address, port)``, e.g. ``("10.0.0.3", 1234)``; the port is an int.

    Raises:
        LocalProtocolError: ``alias`` is not a canonical alias.
    """
    match = _ALIAS_RE.fullmatch(alias) if isinstance(alias, str) else None
    if match is None or int(match.group(2)) > MAX_PORT:
        raise LocalProtocolError(f"not an alias (ipv4:port): {alias!r}")
    return match.group(1), int(match.group(2))


def format_alias(address: str, port: int) -> str:
    """Build the alias ``"<address>:<port>"``.

    Args:
        address: a canonical dotted IPv4 string.
        port: 0..65535.

    Raises:
        LocalProtocolError: the address or the port is invalid.
    """
    if not is_id(address) or type(port) is not int or not 0 <= port <= MAX_PORT:
        raise LocalProtocolError(f"no alias for address {address!r} and port {port!r}")
    return f"{address}:{port}"
