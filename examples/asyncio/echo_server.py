"""The echo server in plain asyncio: python echo_server.py WS_URL

Under asyncio, unisockets.open_node runs aiortc in this program's own event
loop (no thread); listeners and streams are anyio objects (docs/concepts.md,
"asyncio and trio").
"""

import asyncio
import sys

import anyio

import unisockets

ICE_ADDRESSES = ["127.0.0.1"]  # one machine: WebRTC on loopback; drop it across machines


async def echo(stream: anyio.abc.ByteStream) -> None:
    async with stream:
        async for chunk in stream:  # ends at anyio.EndOfStream
            await stream.send(chunk)
        await stream.send_eof()


async def main(signaling_url: str) -> None:
    async with (
        unisockets.open_node(signaling_url, ice_addresses=ICE_ADDRESSES) as node,
        node.listen(1234) as listener,
    ):
        print(f"listening on {node.address}:1234", flush=True)
        await listener.serve(echo)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
