"""Markdown for the signaling server's limits, generated from ``ServerLimits`` at build time.

The defaults live in one place, :mod:`unisockets.signaling.limits`; the pages
that state them (the limits table of signaling-server.md, the summary in
getting-started.md) are generated from it, so a changed default cannot leave
a page behind.
"""

from __future__ import annotations

import dataclasses

from unisockets.signaling.limits import ServerLimits

__all__ = ["UNITS", "defaults", "limits_summary", "limits_table"]

#: The unit of each ``ServerLimits`` field, as the table shows it.
UNITS = {
    "ping_interval": "seconds",
    "max_message_size": "characters of a text frame",
    "max_messages_per_second": "messages per second per client",
    "burst": "messages (the token bucket's size)",
    "max_clients": "WebSocket connections",
    "max_handshakes": "TCP connections that have not finished the WebSocket upgrade",
    "send_queue_bytes": "bytes of frames queued for one client",
    "handshake_timeout": "seconds from TCP connect to a successful `knock`",
    "close_timeout": "seconds for a closing client",
    "rejoin_grace": "seconds after the start that ids are held for returning nodes (0: off)",
}


def defaults() -> dict[str, float | int]:
    """Every field of ``ServerLimits`` with its default, in declaration order.

    Raises:
        RuntimeError: a field has no entry in :data:`UNITS` (or one is left over).
    """
    values = {field.name: field.default for field in dataclasses.fields(ServerLimits)}
    if set(values) != set(UNITS):
        raise RuntimeError(f"UNITS and ServerLimits disagree: {sorted(set(values) ^ set(UNITS))}")
    return values  # type: ignore[return-value]


def _number(value: float | int) -> str:
    return f"{value:,g}" if isinstance(value, float) else f"{value:,}"


def limits_table() -> str:
    """The table of every limit: ``ServerLimits`` field, default, unit."""
    rows = ["| field | default | unit |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | {value!r} | {UNITS[name]} |" for name, value in defaults().items()]
    return "\n".join(rows) + "\n"


def limits_summary() -> str:
    """One paragraph with the defaults a server operator asks about first."""
    d = defaults()
    size = d["max_message_size"]
    size_text = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size:,} characters"
    return (
        f"The defaults suit a public server: {_number(d['max_clients'])} clients at once, "
        f"messages of at most {size_text}, {_number(d['max_messages_per_second'])} messages "
        f"per second per client sustained with bursts of {_number(d['burst'])}, a ping every "
        f"{_number(d['ping_interval'])} s (a client missing a pong is dropped), "
        f"{_number(d['handshake_timeout'])} s from TCP connect to `knock`.\n"
    )
