"""An echo node in a child process, for the killed-peer test in test_failures.py.

Joins the signaling server given on the command line (WebRTC on loopback),
listens on port 7, prints ``listening <address>`` and echoes every stream
until it is killed. Run: ``python node_child.py <signaling url>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import unisockets.net as net


async def echo(stream: net.SocketStream) -> None:
    """Send back what arrives until EOF."""
    async with stream:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)


async def main(url: str) -> None:
    """Join, listen on port 7, report the address, echo forever."""
    async with (
        net.open_node(url, ice_addresses=["127.0.0.1"]) as node,
        node.listen(7) as listener,
    ):
        print(f"listening {node.address}", flush=True)
        await trio.serve_listeners(echo, [listener])


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
