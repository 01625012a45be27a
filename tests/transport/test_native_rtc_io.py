"""The native core's batched UDP reads: one ``poll_io`` takes every datagram waiting.

Real UDP sockets on 127.0.0.1 and the real extension; no WebRTC peer is
needed to see how the socket is read (``recvmmsg``, 64 datagrams per system
call, up to ``MAX_BATCH`` per ``poll_io``): datagrams that are not STUN, DTLS
or RTP are counted and dropped, and the peer lives on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from unisockets.transport.native_rtc import native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="the native extension is not built")


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 to throw datagrams at the peer from."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def test_one_poll_reads_a_burst_larger_than_one_recvmmsg(sender: socket.socket) -> None:
    from unisockets._rtc import MAX_BATCH, Peer

    peer = Peer("127.0.0.1")
    burst = 200  # more than one recvmmsg batch (64), less than MAX_BATCH
    assert burst < MAX_BATCH
    for i in range(burst):
        sender.sendto(b"\xffnot webrtc %d" % i, peer.local_address)
    peer.poll_io()
    assert peer.stats()["datagrams_in"] == burst
    peer.poll_io()  # nothing was left behind
    assert peer.stats()["datagrams_in"] == burst
    assert peer.is_alive()
    peer.close()


def test_a_poll_stops_at_max_and_the_next_one_takes_the_rest(sender: socket.socket) -> None:
    from unisockets._rtc import Peer

    peer = Peer("127.0.0.1")
    for i in range(100):
        sender.sendto(b"\xff%d" % i, peer.local_address)
    peer.poll_io(70)
    assert peer.stats()["datagrams_in"] == 70
    peer.poll_io()
    assert peer.stats()["datagrams_in"] == 100
    peer.close()


def test_an_oversized_datagram_is_dropped_and_the_next_ones_are_read(
    sender: socket.socket,
) -> None:
    from unisockets._rtc import Peer

    peer = Peer("127.0.0.1")
    sender.sendto(b"\xff" * 3000, peer.local_address)  # no WebRTC peer sends this much
    for i in range(5):
        sender.sendto(b"\xff%d" % i, peer.local_address)
    peer.poll_io()
    assert peer.stats()["datagrams_in"] == 5
    assert peer.is_alive()
    peer.close()
