"""Two nodes on a real signaling server, driven from plain asyncio: bind, accept, connect.

Run a server first (``unisockets signaling-server --port 6999``), then:

    python examples/asyncio_sans_io/main.py ws://127.0.0.1:6999
"""

from __future__ import annotations

import asyncio
import sys

from driver import SignalingSession, open_session

from unisockets.protocol.events import PeerGreeted


async def connect_retrying(node: SignalingSession, alias: str) -> tuple[str, str]:
    """Connect, retrying while refused: ``accepting`` gets no answer, so a connect from
    another node can reach the server before it, like a TCP connect before ``listen()``."""
    for _ in range(100):
        try:
            return await node.connect(alias)
        except ConnectionRefusedError:
            await asyncio.sleep(0.01)
    return await node.connect(alias)


async def main(url: str) -> None:
    async with open_session(url) as a, open_session(url) as b:
        print(f"A joined as {a.id}, B joined as {b.id}")
        greeted = await a.others.get()
        assert isinstance(greeted, PeerGreeted)  # a real node would now offer a WebRTC link
        print(f"A was greeted: {greeted.peer_id} joined")
        listening = f"{a.id}:1234"
        await a.bind(listening)
        print(f"A bound {listening}")

        await a.listen(listening)
        local, remote = await connect_retrying(b, listening)
        print(f"B connected from {local} to {remote}")
        accepted = await a.incoming.get()
        print(f"A accepted {accepted.client_alias} on {accepted.bound_alias}")

        try:
            await b.connect(f"{a.id}:9999")
        except ConnectionRefusedError as exc:
            print(f"B: {exc.strerror}")
        await b.shutdown(local)
        print(f"B released {local}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
