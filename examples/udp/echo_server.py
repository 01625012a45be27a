"""A UDP echo server on a unisockets node: python echo_server.py ws://127.0.0.1:6999

With ``none`` instead of a URL it runs on the OS's UDP (the native fallback).
"""

import sys

import trio

import unisockets


async def main(url: str | None) -> None:
    async with unisockets.open_node(url) as node:
        with node.socket(unisockets.SOCK_DGRAM) as sock:
            await sock.bind(("", 1234 if url else 0))
            print("listening on {}:{}".format(*sock.getsockname()), flush=True)
            while True:
                data, sender = await sock.recvfrom(65536)  # one datagram, whole
                await sock.sendto(data, sender)


if __name__ == "__main__":
    trio.run(main, None if sys.argv[1] == "none" else sys.argv[1])
