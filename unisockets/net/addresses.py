"""Socket addresses as users see them: ``(host, port)`` tuples, like :mod:`socket`'s AF_INET.

Overlay aliases (``"10.0.0.3:1234"``, docs/concepts.md, "Aliases") become
``("10.0.0.3", 1234)`` tuples at this layer, and back.
"""

from __future__ import annotations

from ..protocol.addresses import format_alias, parse_alias
from ..protocol.planner import check_address, check_port
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


def alias_to_address(alias: str) -> Address:
    """``"10.0.0.3:1234"`` → ``("10.0.0.3", 1234)``."""
    return parse_alias(alias)


def address_to_alias(address: Address) -> str:
    """``("10.0.0.3", 1234)`` → ``"10.0.0.3:1234"``."""
    return format_alias(*address)
