"""An echo server on a unisockets network, over WebRTC: python echo_server.py WS_URL"""

import sys

import trio

import unisockets

#: Both ends run on this machine: WebRTC may stay on loopback. Leave it out across machines.
ICE_ADDRESSES = ["127.0.0.1"]


async def echo(stream: unisockets.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some():
            await stream.send_all(data)


async def main(signaling_url: str) -> None:
    async with (
        unisockets.open_node(signaling_url, ice_addresses=ICE_ADDRESSES) as node,
        node.listen(1234) as listener,
    ):
        print(f"listening on {node.address}:1234", flush=True)
        await trio.serve_listeners(echo, [listener])


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
