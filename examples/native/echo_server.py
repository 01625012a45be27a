"""The native fallback, with Berkeley socket objects on OS TCP: python echo_server.py"""

import trio

import unisockets
from unisockets.net import Socket


async def echo(conn: Socket) -> None:
    with conn:
        while data := await conn.recv(65536):  # b"" at EOF
            await conn.sendall(data)


async def main() -> None:
    async with unisockets.open_node(None) as node, trio.open_nursery() as nursery:
        sock = node.socket()
        await sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port
        sock.listen(5)
        print("listening on {}:{}".format(*sock.getsockname()), flush=True)
        while True:
            conn, _address = await sock.accept()
            nursery.start_soon(echo, conn)


if __name__ == "__main__":
    trio.run(main)
