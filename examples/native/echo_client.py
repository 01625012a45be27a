"""The trio echo client with signaling=None (OS TCP): python echo_client.py 127.0.0.1:PORT"""

import sys

import trio

import unisockets


async def main(remote: str) -> None:
    host, port = remote.rsplit(":", 1)
    async with unisockets.connect((host, int(port)), signaling=None) as stream:
        await stream.send_all(b"hello over OS TCP")
        await stream.send_eof()
        echoed = bytearray()
        while data := await stream.receive_some():
            echoed += data
        print(echoed.decode())


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
