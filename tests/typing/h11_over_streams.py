"""``receive_some`` and ``recv`` return ``bytes``: h11 (typed ``bytes``) takes them as they are.

Checked by ``make typecheck`` (pyproject.toml lists this directory for mypy);
it fails there if a stream's ``receive_some`` is typed ``bytes | bytearray``
again, as trio's ABC allows.
"""

from __future__ import annotations

from typing import assert_type

import h11

from unisockets.driver.streams import Stream
from unisockets.net import Socket, SocketStream


async def feed_from_stream(stream: SocketStream, connection: h11.Connection) -> None:
    """Native and overlay streams, every transport."""
    data = await stream.receive_some(65536)
    assert_type(data, bytes)
    connection.receive_data(data)


async def feed_from_browser_stream(stream: Stream, connection: h11.Connection) -> None:
    """The browser's stream."""
    connection.receive_data(await stream.receive_some(65536))


async def feed_from_socket(sock: Socket, connection: h11.Connection) -> None:
    """Socket objects."""
    connection.receive_data(await sock.recv(65536))
    buffer = bytearray(1024)
    size: int = await sock.recv_into(buffer)
    connection.receive_data(bytes(buffer[:size]))
