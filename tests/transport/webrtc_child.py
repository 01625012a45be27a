"""A WebRTC transport in a child process, for the SIGKILL test in test_webrtc.py.

Signaling goes over stdin/stdout as JSON lines ``{"kind", "peer", "payload"}``
(kind: offer, answer, candidate). The child accepts every pipe it is told
about (a ``pipe`` line carries the label) and echoes what it receives.
Run: ``python webrtc_child.py <local id> [aiortc|native]`` (the WebRTC backend, aiortc by default).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from unisockets.transport.base import MessagePipe, SignalSender
from unisockets.transport.webrtc import (
    LOOPBACK,
    WebRTCTransport,
)


class StdoutSignal(SignalSender):
    """Writes signaling messages to stdout, one JSON line each."""

    def __init__(self) -> None:
        self._stdout = trio.lowlevel.FdStream(sys.stdout.fileno())
        self._lock = trio.Lock()

    async def _write(self, kind: str, peer: str, payload: str) -> None:
        line = json.dumps({"kind": kind, "peer": peer, "payload": payload}) + "\n"
        async with self._lock:
            await self._stdout.send_all(line.encode())

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        """Write an offer line."""
        await self._write("offer", peer_id, sdp)

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        """Write an answer line."""
        await self._write("answer", peer_id, sdp)

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        """Write a candidate line."""
        await self._write("candidate", peer_id, candidate)


async def echo(pipe: MessagePipe) -> None:
    """Send back every message until the pipe ends."""
    try:
        while True:
            await pipe.send_message(await pipe.receive_message())
    except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def accept_and_echo(transport: WebRTCTransport, peer: str, label: str) -> None:
    """Accept the pipe ``peer`` opens as ``label`` and echo it."""
    await echo(await transport.accept_pipe(peer, label))


async def main(local_id: str, backend: str = "aiortc") -> None:
    """Run the transport (of ``backend``) until stdin closes."""
    from unisockets.transport.native_rtc import rtc_opener

    opener = rtc_opener("native" if backend == "native" else "aiortc")
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    async with (
        opener(local_id, StdoutSignal(), host_addresses=LOOPBACK) as transport,
        trio.open_nursery() as nursery,
    ):
        buffer = b""
        while chunk := await stdin.receive_some():
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                kind, peer, payload = message["kind"], message["peer"], message["payload"]
                if kind == "offer":
                    await transport.handle_offer(peer, payload)
                elif kind == "answer":
                    await transport.handle_answer(peer, payload)
                elif kind == "candidate":
                    await transport.handle_candidate(peer, payload)
                elif kind == "pipe":
                    nursery.start_soon(accept_and_echo, transport, peer, payload)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:3])
