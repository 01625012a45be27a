"""A lossy, slow path on loopback: a UDP relay that delays and drops, and its TCP twin.

This kernel has no ``netem``, so the benchmarks' "100 ms round trip, 1 % loss"
path is this relay on 127.0.0.1, in its own process so that its work does not
share a GIL with a measured stack.

**UDP** (for any WebRTC stack). The relay stands in for each peer: for a
peer's real address ``A`` it opens a relay socket ``R(A)``; the signalling
rewrites ``A`` into ``R(A)`` in every host candidate the other peer receives
(:func:`rewrite_candidates`). A datagram from ``B`` arriving at ``R(A)`` is
dropped with probability ``loss``, or, ``delay`` seconds later, sent to ``A``
from ``R(B)``, so ``A`` sees it come from the address it was told ``B`` has
and ICE pairs only relayed candidates. Delay is fixed, so order is kept.

**TCP** (the baseline through the same path): kernel TCP must meet the
loss itself, so its packets cross the same kind of relay between two TUN
devices (:mod:`benchmarks.lossy_tun`, root only), run by this process too.

Each draws from its own :class:`random.Random` seeded with ``seed``.

Control (the benchmark's child process, ``python -m benchmarks.lossy_relay
--child '{"delay": 0.05, "loss": 0.01, "seed": 1}'``): it prints
``{"ready": {}}``; a line ``{"udp": [host, port]}`` is answered with
``{"relay": [host, port]}`` (``R`` of that address); ``{"tcp": true}`` sets up
the TUN path and is answered with ``{"connect_to": host, "listen_on": host}``
or ``{"error": reason}``; ``{"stats": true}`` with the counts of
datagrams (and TUN packets) forwarded and dropped, and of datagrams it could
not send (the peer's socket gone). It runs until its stdin closes. It is used
by ``benchmarks.webrtc_stacks`` (``--lossy``).
"""

from __future__ import annotations

import json
import random
import re
import socket
import sys
from collections import deque
from typing import Any

import trio

from . import common, lossy_tun

__all__ = ["Relay", "candidate_addresses", "rewrite_candidates"]


_CANDIDATE = re.compile(
    r"(candidate:\S+ \d+ (?:udp|UDP) \d+ )(\S+) (\d+)( typ host)",
)
#: An SDP line (or a whole candidate) of a TCP or an IPv6 candidate: ICE-TCP would bypass
#: the relay, and the relay's sockets are IPv4.
_UNRELAYED = re.compile(
    r"^(?:a=)?candidate:\S+ \d+ "
    r"(?:(?:tcp|TCP) .*|\S+ \d+ [0-9a-fA-F.]*:[0-9a-fA-F:.]* .*)(?:\r?\n)?",
    re.MULTILINE,
)


def rewrite_candidates(text: str, relay_of: dict[tuple[str, int], tuple[str, int]]) -> str:
    """Replace every UDP host candidate's address in ``text`` by its relay address.

    Args:
        text: an SDP or one candidate line (``candidate:...`` or ``a=candidate:...``).
        relay_of: ``{(host, port): (relay host, relay port)}``; every candidate's
            address must be in it (see :func:`candidate_addresses`).

    Returns:
        ``text`` with the addresses replaced, TCP and IPv6 candidates removed
        (they would bypass the relay, whose sockets are IPv4); other lines
        untouched. A single removed candidate becomes ``""``.

    Raises:
        KeyError: a candidate's address is not in ``relay_of``.
    """
    text = _UNRELAYED.sub("", text)

    def replace(match: re.Match[str]) -> str:
        host, port = relay_of[match.group(2), int(match.group(3))]
        return f"{match.group(1)}{host} {port}{match.group(4)}"

    return _CANDIDATE.sub(replace, text)


def candidate_addresses(text: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` of every IPv4 UDP host candidate in ``text`` (SDP or one line)."""
    return [(m.group(2), int(m.group(3))) for m in _CANDIDATE.finditer(_UNRELAYED.sub("", text))]


class Relay:
    """The UDP relay (trio), see the module docstring.

    Args:
        delay: one-way delay in seconds.
        loss: probability (0..1) that a datagram is lost.
        seed: seeds the random generator.
        nursery: runs the relay's tasks (cancel it to stop the relay).

    Raises:
        ValueError: a negative delay or a loss outside [0, 1).
    """

    def __init__(self, delay: float, loss: float, seed: int, nursery: trio.Nursery) -> None:
        if delay < 0 or not 0 <= loss < 1:
            raise ValueError(f"need delay >= 0 and 0 <= loss < 1, got {delay!r}, {loss!r}")
        self.delay, self.loss = delay, loss
        self._random = random.Random(seed)
        self._nursery = nursery
        self._sockets: dict[tuple[str, int], trio.socket.SocketType] = {}
        self._pending: deque[tuple[float, trio.socket.SocketType, bytes, tuple[str, int]]] = deque()
        self._wake = trio.Event()
        self.forwarded = 0
        self.dropped = 0
        self.undeliverable = 0
        nursery.start_soon(self._sender)

    async def relay_for(self, peer: tuple[str, int]) -> tuple[str, int]:
        """The relay address standing in for ``peer`` (opened on first use)."""
        sock = self._sockets.get(peer)
        if sock is None:
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * common.MIB)
            await sock.bind(("127.0.0.1", 0))
            self._sockets[peer] = sock
            self._nursery.start_soon(self._receiver, sock, peer)
        host, port = sock.getsockname()
        return str(host), int(port)

    async def _receiver(self, sock: trio.socket.SocketType, peer: tuple[str, int]) -> None:
        while True:
            data, source = await sock.recvfrom(65536)
            if self._random.random() < self.loss:
                self.dropped += 1
                continue
            source = (str(source[0]), int(source[1]))
            if source not in self._sockets:
                await self.relay_for(source)  # a peer-reflexive sender: stand in for it too
            self._pending.append(
                (trio.current_time() + self.delay, self._sockets[source], data, peer)
            )
            self._wake.set()

    async def _sender(self) -> None:
        while True:
            if not self._pending:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            due, sock, data, target = self._pending[0]
            await trio.sleep_until(due)
            self._pending.popleft()
            try:
                await sock.sendto(data, target)
                self.forwarded += 1
            except OSError:
                self.undeliverable += 1  # e.g. the peer's socket closed


async def _child_main(params: dict[str, Any]) -> None:
    parent = common.TrioParent()
    async with trio.open_nursery() as nursery:
        relay = Relay(float(params["delay"]), float(params["loss"]), int(params["seed"]), nursery)
        paths: list[lossy_tun.TunPath] = []
        parent.send({"ready": {}})
        while (message := await parent.receive()) is not None:
            if "udp" in message:
                host, port = message["udp"]
                parent.send({"relay": list(await relay.relay_for((host, int(port))))})
            elif message.get("tcp"):
                try:
                    path = lossy_tun.TunPath(relay.delay, relay.loss, int(params["seed"]))
                except lossy_tun.TunUnavailable as exc:
                    parent.send({"error": str(exc)})
                    continue
                paths.append(path)
                nursery.start_soon(path.run)
                parent.send({"connect_to": path.connect_to, "listen_on": path.listen_on})
            elif message.get("stats"):
                forwarded = relay.forwarded + sum(path.forwarded for path in paths)
                dropped = relay.dropped + sum(path.dropped for path in paths)
                parent.send(
                    {
                        "forwarded": forwarded,
                        "dropped": dropped,
                        "undeliverable": relay.undeliverable,
                    }
                )
        nursery.cancel_scope.cancel()
        for path in paths:
            path.close()


def main() -> None:
    """Entry point of the relay child (``--child JSON``)."""
    if len(sys.argv) != 3 or sys.argv[1] != "--child":
        sys.exit("this module is the lossy relay of benchmarks.webrtc_stacks; run that instead")
    trio.run(_child_main, json.loads(sys.argv[2]))


if __name__ == "__main__":
    main()
