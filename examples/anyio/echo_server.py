"""The echo server as anyio code (on anyio's trio backend): python echo_server.py WS_URL"""

import sys

import anyio

import unisockets
from unisockets.net import AnyioListener, AnyioSocketStream

ICE_ADDRESSES = ["127.0.0.1"]  # one machine: WebRTC on loopback; drop it across machines


async def echo(stream: AnyioSocketStream) -> None:
    async with stream:
        async for chunk in stream:  # ends at anyio.EndOfStream
            await stream.send(chunk)


async def main(signaling_url: str) -> None:
    async with (
        unisockets.open_node(signaling_url, ice_addresses=ICE_ADDRESSES) as node,
        AnyioListener(await node.listen(1234)) as listener,
    ):
        print(f"listening on {node.address}:1234", flush=True)
        await listener.serve(echo)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], backend="trio")
