"""Kernel TCP through the lossy path: two TUN devices and a userspace relay between them.

The lossy UDP relay (:mod:`benchmarks.lossy_relay`) stands between WebRTC
peers; for the TCP baseline the packets of the kernel's own TCP must cross the
same kind of relay, so that its congestion control, fast retransmission and
SACK react to the loss and the delay (a TCP proxy cannot show that). Without
``netem`` or network namespaces, two TUN devices do it in the root namespace:

- ``A`` has 10.201.N.1/30 and ``B`` has 10.202.N.1/30 (``N`` from the PID, so
  that relays of parallel runs do not collide);
- a client connecting to ``10.201.N.2`` sends into ``A``; the relay rewrites
  the packet to ``10.202.N.2 -> 10.202.N.1`` and writes it into ``B``, where
  the kernel delivers it to a server listening on ``10.202.N.1``; replies go
  the other way. Addresses are swapped with the checksums updated
  incrementally (RFC 1624); the TCP payload is untouched.

Each packet is dropped with probability ``loss`` or delivered ``delay``
seconds later, in order, as by the UDP relay (one seeded generator per relay).
The devices vanish with the process that opened them (not persistent).

Needs root (``CAP_NET_ADMIN``), ``/dev/net/tun`` and ``ip``; otherwise
:class:`TunUnavailable` says which is missing.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import struct
import subprocess
from collections import deque

import trio

__all__ = ["TunPath", "TunUnavailable"]

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_IP_TCP = 6
_IP_UDP = 17


class TunUnavailable(Exception):
    """This machine cannot create the TUN devices (not root, no /dev/net/tun, no ``ip``)."""


def _open_tun(name: str) -> int:
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    except OSError as exc:
        raise TunUnavailable(f"cannot open /dev/net/tun: {exc.strerror}") from None
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise TunUnavailable(f"cannot create TUN device {name}: {exc.strerror}") from None
    return fd


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TunUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _fold(value: int) -> int:
    while value > 0xFFFF:
        value = (value & 0xFFFF) + (value >> 16)
    return value


def _adjust(checksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: the checksum after the 16-bit words ``old`` became ``new``."""
    total = ~checksum & 0xFFFF
    for index in range(0, len(old), 2):
        total += (~int.from_bytes(old[index : index + 2], "big") & 0xFFFF) + int.from_bytes(
            new[index : index + 2], "big"
        )
    return ~_fold(total) & 0xFFFF


def readdress(packet: bytes, addresses: bytes) -> bytes:
    """``packet`` (IPv4) with source and destination replaced by ``addresses`` (8 bytes).

    The IP header checksum and a TCP or UDP checksum (which covers the
    addresses through the pseudo-header) are updated; other protocols keep
    theirs. Returns ``packet`` unchanged if it is not IPv4.
    """
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return packet
    data = bytearray(packet)
    old = bytes(data[12:20])
    data[12:20] = addresses
    data[10:12] = _adjust(int.from_bytes(data[10:12], "big"), old, addresses).to_bytes(2, "big")
    header = (data[0] & 0x0F) * 4
    offset = {_IP_TCP: 16, _IP_UDP: 6}.get(data[9])
    fragment = int.from_bytes(data[6:8], "big") & 0x1FFF
    if offset is not None and fragment == 0 and len(data) >= header + offset + 2:
        where = header + offset
        checksum = int.from_bytes(data[where : where + 2], "big")
        if not (data[9] == _IP_UDP and checksum == 0):
            data[where : where + 2] = _adjust(checksum, old, addresses).to_bytes(2, "big")
    return bytes(data)


class TunPath:
    """Two TUN devices joined by a lossy, delaying relay (see the module docstring).

    Args:
        delay: one-way delay in seconds.
        loss: probability (0..1) that a packet is dropped.
        seed: seeds the relay's random generator.

    Attributes:
        connect_to: the address a client connects to (its packets enter ``A``).
        listen_on: the address the server binds (the kernel delivers to it from ``B``).
    """

    def __init__(self, delay: float, loss: float, seed: int) -> None:
        if shutil.which("ip") is None:
            raise TunUnavailable("no ip command (iproute2)")
        if delay < 0 or not 0 <= loss < 1:
            raise ValueError(f"need delay >= 0 and 0 <= loss < 1, got {delay!r}, {loss!r}")
        self.delay, self.loss = delay, loss
        self._random = random.Random(seed)
        n = os.getpid() % 250 + 1
        self.connect_to = f"10.201.{n}.2"
        self.listen_on = f"10.202.{n}.1"
        names = (f"ulossa{os.getpid()}"[:15], f"ulossb{os.getpid()}"[:15])
        self._fds: list[int] = []
        try:
            for name, subnet in zip(names, (201, 202), strict=True):
                self._fds.append(_open_tun(name))
                _ip("addr", "add", f"10.{subnet}.{n}.1/30", "dev", name)
                _ip("link", "set", name, "up")
        except BaseException:
            self.close()
            raise
        ip = [bytes([10, subnet, n, host]) for subnet in (201, 202) for host in (1, 2)]
        # a packet read from A (A.1 -> A.2) leaves B as B.2 -> B.1, and back
        self._rewrite = (ip[3] + ip[2], ip[1] + ip[0])
        self.forwarded = 0
        self.dropped = 0

    def close(self) -> None:
        """Close the devices (they vanish with their file descriptors)."""
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    async def run(self) -> None:
        """Relay packets both ways until cancelled."""
        pending: deque[tuple[float, int, bytes]] = deque()
        wake = trio.Event()

        async def receive(side: int) -> None:
            nonlocal wake
            fd, other = self._fds[side], self._fds[1 - side]
            while True:
                await trio.lowlevel.wait_readable(fd)
                while True:
                    try:
                        packet = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if self._random.random() < self.loss:
                        self.dropped += 1
                        continue
                    packet = readdress(packet, self._rewrite[side])
                    pending.append((trio.current_time() + self.delay, other, packet))
                    wake.set()

        async def send() -> None:
            nonlocal wake
            while True:
                if not pending:
                    wake = trio.Event()
                    await wake.wait()
                    continue
                await trio.sleep_until(pending[0][0])
                _, fd, packet = pending.popleft()
                try:
                    os.write(fd, packet)
                    self.forwarded += 1
                except OSError:
                    self.dropped += 1  # the device's queue is full: as a lost packet

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive, 0)
            nursery.start_soon(receive, 1)
            nursery.start_soon(send)
