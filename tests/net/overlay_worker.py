"""Overlay nodes in a child process, driven line by line (test_overlay_restart, test_lazy_subnet).

Run: ``python overlay_worker.py <signaling url[,url...]> [--lazy] <subnet> [<subnet> ...]``:
one node per subnet argument (WebRTC on loopback), each listening on port 7
and echoing. Without ``--lazy`` the nodes link eagerly (``lazy_links=False``:
the original's full mesh, which most of these tests exercise); with it they
link on demand, the library's default. Prints ``{"ids": [...]}`` once
all joined, then reads one JSON command per line on stdin and answers each
with one JSON line on stdout:

- ``{"op": "stream", "node": i, "peer": id, "seed": s}``: node ``i`` opens a
  stream to ``peer``:7 and echoes checksummed random data through it, round
  after round, until ``stop``; answers ``{"streaming": s}`` after the first round.
- ``{"op": "listening"}``: waits until every node is back in signaling and
  accepts on port 7 again (a connect to itself); answers
  ``{"listening": [errors]}``.
- ``{"op": "fresh", "node": i, "peer": id}``: a new connection from node ``i``
  to ``peer``:7, one round; answers ``{"fresh": i, "error": null or text}``.
- ``{"op": "ids"}``: answers ``{"ids": [...]}``, each node's address now.
- ``{"op": "links"}``: answers ``{"links": [[peer id, ...], ...]}``, each
  node's peer links now.
- ``{"op": "stop"}``: ends every stream after its round; answers
  ``{"streams": [{"seed", "bytes", "error"}]}``.
- ``{"op": "exit"}``: leaves.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import unisockets.net as net

#: Bytes per round of a stream.
ROUND = 16 * 1024


def say(message: dict[str, Any]) -> None:
    """One JSON line on stdout."""
    print(json.dumps(message), flush=True)


async def echo(stream: net.SocketStream) -> None:
    """Send back what arrives until EOF (or the stream breaks)."""
    try:
        async with stream:
            while data := await stream.receive_some(65536):
                await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def one_round(stream: net.SocketStream, rng: random.Random, digests: list[Any]) -> int:
    """Send a round of random bytes, read the echo, check both digests agree."""
    data = rng.randbytes(ROUND)
    digests[0].update(data)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.send_all, data)
        got = 0
        while got < ROUND:
            chunk = await stream.receive_some(ROUND - got)
            if not chunk:
                raise EOFError("the echo ended")
            digests[1].update(chunk)
            got += len(chunk)
    if digests[0].digest() != digests[1].digest():
        raise ValueError("the echo differs from what was sent")
    return ROUND


class Streams:
    """The checksummed streams of this process."""

    def __init__(self) -> None:
        self.stop = trio.Event()
        self.results: list[dict[str, Any]] = []
        self.running = 0
        self.done = trio.Event()

    async def run(self, node: net.Node, peer: str, seed: int) -> None:
        rng = random.Random(seed)
        digests = [hashlib.sha256(), hashlib.sha256()]
        sent, error = 0, None
        self.running += 1
        try:
            stream = await node.connect((peer, 7))
            async with stream:
                sent += await one_round(stream, rng, digests)
                say({"streaming": seed})
                while not self.stop.is_set():
                    sent += await one_round(stream, rng, digests)
        except Exception as exc:  # reported, not raised: the test judges
            error = repr(exc)
        self.results.append({"seed": seed, "bytes": sent, "error": error})
        self.running -= 1
        if self.running == 0 and self.stop.is_set():
            self.done.set()


async def listening_again(node: net.Node) -> str | None:
    """Wait until ``node`` is back in signaling and accepts on port 7 again.

    A connect to itself waits for the node's next session; it is refused until
    the node's ``accepting`` (sent once its rebind is answered) reached the
    server, so each refusal is one round trip, never a sleep.
    """
    for _attempt in range(1000):
        try:
            stream = await node.connect((node.address, 7))
        except ConnectionRefusedError:
            continue
        except Exception as exc:
            return repr(exc)
        await stream.aclose()
        return None
    return f"{node.address}:7 refused 1,000 connects from itself"


async def fresh(node: net.Node, peer: str) -> str | None:
    """A new connection and one round; None, or why it failed."""
    try:
        stream = await node.connect((peer, 7))
        async with stream:
            rng = random.Random(peer)
            await one_round(stream, rng, [hashlib.sha256(), hashlib.sha256()])
    except Exception as exc:
        return repr(exc)
    return None


async def main(url: str, subnets: list[str]) -> None:
    lazy = subnets[:1] == ["--lazy"]
    subnets = subnets[1:] if lazy else subnets
    # several signaling instances (docs/signaling-server.md): "ws://a,ws://b", tried in turn
    urls: Any = url.split(",") if "," in url else url
    async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
        nodes: list[net.Node] = []
        for subnet in subnets:
            node = await stack.enter_async_context(
                net.open_node(urls, subnet, ice_addresses=["127.0.0.1"], lazy_links=lazy)
            )
            listener = await stack.enter_async_context(node.listen(7, 64))
            nursery.start_soon(trio.serve_listeners, echo, [listener])
            nodes.append(node)
        say({"ids": [node.address for node in nodes]})
        streams = Streams()
        stdin = trio.wrap_file(sys.stdin)
        while line := await stdin.readline():
            command = json.loads(line)
            op = command["op"]
            if op == "stream":
                nursery.start_soon(
                    streams.run, nodes[command["node"]], command["peer"], command["seed"]
                )
            elif op == "fresh":

                async def answer(index: int, peer: str) -> None:
                    say({"fresh": index, "error": await fresh(nodes[index], peer)})

                nursery.start_soon(answer, command["node"], command["peer"])
            elif op == "listening":
                errors = [await listening_again(node) for node in nodes]
                say({"listening": [error for error in errors if error is not None]})
            elif op == "links":
                say({"links": [sorted(node.transport.links) for node in nodes]})  # type: ignore[attr-defined]
            elif op == "ids":
                say({"ids": [node.address for node in nodes]})
            elif op == "stop":
                streams.stop.set()
                if streams.running:
                    await streams.done.wait()
                say({"streams": streams.results})
            elif op == "exit":
                break
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2:])
