"""Socket addresses as users see them: ``(host, port)`` tuples, like :mod:`socket`'s AF_INET.

Overlay aliases (``"10.0.0.3:1234"``, docs/concepts.md, "Aliases") become
``("10.0.0.3", 1234)`` tuples at this layer, and back.
"""

from __future__ import annotations

import errno
from typing import TypeGuard

from ..protocol.addresses import format_alias, is_id, parse_alias
from ..protocol.socket_states import oserror

__all__ = [
    "Address",
    "address_to_alias",
    "alias_to_address",
    "check_address",
    "check_port",
    "oserror",
]

#: A socket address: ``(host, port)`` with a dotted IPv4 host and a port 0..65535.
Address = tuple[str, int]


def _is_port(port: object) -> TypeGuard[int]:
    return type(port) is int and 0 <= port <= 65535


def check_port(port: object) -> int:
    """Validate a user-given port.

    Returns:
        ``port``, an int in 0..65535.

    Raises:
        OSError: ``EINVAL`` for anything else (``bool`` included).
    """
    if _is_port(port):
        return port
    raise oserror(errno.EINVAL, f"bad port {port!r}")


def check_address(address: object) -> Address:
    """Validate a user-given socket address.

    Args:
        address: a ``(host, port)`` tuple (a list of two also works).

    Returns:
        The address as a ``(str, int)`` tuple.

    Raises:
        OSError: ``EINVAL`` when it is not a ``(dotted IPv4 host, port 0..65535)`` pair.
    """
    if isinstance(address, tuple | list) and len(address) == 2:
        host, port = address
        valid_host = host in ("", "0.0.0.0", "localhost") or is_id(host)
        if valid_host and _is_port(port):
            return host, port
    raise oserror(errno.EINVAL, f"not an IPv4 (host, port) address: {address!r}")


def alias_to_address(alias: str) -> Address:
    """``"10.0.0.3:1234"`` → ``("10.0.0.3", 1234)``."""
    return parse_alias(alias)


def address_to_alias(address: Address) -> str:
    """``("10.0.0.3", 1234)`` → ``"10.0.0.3:1234"``."""
    return format_alias(*address)
