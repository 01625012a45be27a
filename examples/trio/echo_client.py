"""Send a line to the echo server, print the echo: python echo_client.py WS_URL 10.0.0.1:1234"""

import sys

import trio

import unisockets

ICE_ADDRESSES = ["127.0.0.1"]  # as in echo_server.py: drop it across machines


async def main(signaling_url: str, remote: str) -> None:
    host, port = remote.rsplit(":", 1)
    address = (host, int(port))
    async with unisockets.connect(
        address, signaling=signaling_url, ice_addresses=ICE_ADDRESSES
    ) as stream:
        local, remote = stream.local_address, stream.remote_address
        print("connected {}:{} -> {}:{}".format(*local, *remote))
        await stream.send_all(b"hello over a WebRTC data channel")
        await stream.send_eof()  # half-close: the server sees EOF after our bytes
        echoed = bytearray()
        while data := await stream.receive_some():  # b"" once the server closed
            echoed += data
        print(echoed.decode())


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
