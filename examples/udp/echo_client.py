"""A UDP echo client: python echo_client.py ws://127.0.0.1:6999 10.0.0.1:1234

Datagrams may be lost, so it sends again until the echo comes (as any UDP
client does). With ``none`` instead of a URL it uses the OS's UDP.
"""

import sys

import trio

import unisockets


async def main(url: str | None, server: str) -> None:
    host, port = server.rsplit(":", 1)
    async with unisockets.open_node(url) as node:
        with node.socket(unisockets.SOCK_DGRAM) as sock:
            await sock.connect((host, int(port)))  # the default peer, and a filter
            for _attempt in range(10):
                await sock.send(b"hello over datagrams")
                with trio.move_on_after(1):
                    print((await sock.recv(65536)).decode())
                    return
            sys.exit("no answer")


if __name__ == "__main__":
    trio.run(main, None if sys.argv[1] == "none" else sys.argv[1], sys.argv[2])
