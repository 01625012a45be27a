"""The echo client in plain asyncio: python echo_client.py WS_URL 10.0.0.1:1234"""

import asyncio
import sys

from anyio.abc import SocketAttribute

import unisockets

ICE_ADDRESSES = ["127.0.0.1"]  # one machine: WebRTC on loopback; drop it across machines


async def main(signaling_url: str, remote: str) -> None:
    host, port = remote.rsplit(":", 1)
    async with (
        unisockets.open_node(signaling_url, ice_addresses=ICE_ADDRESSES) as node,
        await node.connect((host, int(port))) as stream,
    ):
        print("connected to {}:{}".format(*stream.extra(SocketAttribute.remote_address)))
        await stream.send(b"hello from asyncio")
        await stream.send_eof()
        echoed = b"".join([chunk async for chunk in stream])  # until anyio.EndOfStream
        print(echoed.decode())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
