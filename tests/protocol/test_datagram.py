"""The sans-IO datagram core: the wire header, the limits, the port table, the queues.

A Hypothesis state machine binds, connects, closes, delivers and receives on
a :class:`PortTable` and checks it against a plain model of UDP: one socket
per port, per-socket queues bounded by their receive buffer, connected sockets
taking only their peer's datagrams, every drop counted under its reason.
Hostile messages (any bytes at all) are dropped and counted, never raised.
"""

from __future__ import annotations

import errno
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from unisockets.protocol.datagram import (
    DATAGRAM_OVERHEAD,
    DEFAULT_MAX_PAYLOAD,
    EPHEMERAL_PORTS,
    HEADER_SIZE,
    MAX_PAYLOAD,
    DatagramEndpoint,
    PortTable,
    check_max_payload,
    decode_datagram,
    encode_datagram,
)

OWN = "10.0.0.1"
PEERS = ["10.0.0.2", "10.0.0.3"]
PORTS = st.sampled_from([1, 2, 3, 49152])


def test_header_layout_is_ports_and_length_big_endian() -> None:
    message = encode_datagram(0x1234, 0xABCD, b"hi")
    assert message == b"\x12\x34\xab\xcd\x00\x02hi"
    assert HEADER_SIZE == 6
    assert decode_datagram(message) == (0x1234, 0xABCD, b"hi")
    assert decode_datagram(encode_datagram(1, 2, b"")) == (1, 2, b"")


def test_default_limit_fits_one_sctp_chunk() -> None:
    # aiortc's user data per DATA chunk: (1189 - 12 - 16) // 4 * 4.
    from aiortc import rtcsctptransport

    assert DEFAULT_MAX_PAYLOAD + HEADER_SIZE == rtcsctptransport.USERDATA_MAX_LENGTH


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x00",
        b"\x00\x01\x00\x02\x00",  # truncated header
        b"\x00\x01\x00\x02\xff\xff",  # huge length, no payload
        b"\x00\x01\x00\x02\x00\x05abc",  # length beyond the message
        b"\x00\x01\x00\x02\x00\x01abc",  # length short of the message
        b"\x00\x00\x00\x02\x00\x00",  # source port 0
        b"\x00\x01\x00\x00\x00\x00",  # destination port 0
    ],
)
def test_malformed_messages_are_dropped_and_counted(message: bytes) -> None:
    table = PortTable(random.Random(1))
    endpoint = DatagramEndpoint()
    table.bind(endpoint, 2)
    assert table.deliver(PEERS[0], message) is None
    assert table.statistics.malformed == 1
    assert endpoint.queued == 0


@given(st.binary(max_size=64))
def test_any_bytes_never_raise(message: bytes) -> None:
    table = PortTable(random.Random(1))
    table.bind(DatagramEndpoint(), 2)
    table.deliver(PEERS[0], message)
    stats = table.statistics
    assert stats.malformed + stats.unknown_port + stats.delivered == 1


def test_encode_refuses_what_the_drivers_must_check() -> None:
    with pytest.raises(ValueError):
        encode_datagram(0, 1, b"")
    with pytest.raises(ValueError):
        encode_datagram(1, 65536, b"")
    with pytest.raises(ValueError):
        encode_datagram(1, 2, bytes(MAX_PAYLOAD + 1))


def test_errnos_of_every_misuse() -> None:
    table = PortTable(random.Random(1))
    sock = DatagramEndpoint()
    with pytest.raises(OSError) as info:
        sock.destination(None, 1, OWN)
    assert info.value.errno == errno.EDESTADDRREQ
    with pytest.raises(OSError) as info:
        sock.getpeername()
    assert info.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as info:
        sock.destination((PEERS[0], 1), DEFAULT_MAX_PAYLOAD + 1, OWN)
    assert info.value.errno == errno.EMSGSIZE
    assert sock.destination(("", 7), DEFAULT_MAX_PAYLOAD, OWN) == (OWN, 7)
    for bad in [(PEERS[0], 0), ("nonsense", 1), (PEERS[0], 70000), "x"]:
        with pytest.raises(OSError) as info:
            sock.destination(bad, 1, OWN)
        assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        sock.check_bind((PEERS[0], 1), OWN)
    assert info.value.errno == errno.EADDRNOTAVAIL
    assert sock.check_bind((OWN, 5), OWN) == 5
    table.bind(sock, 5)
    with pytest.raises(OSError) as info:
        sock.check_bind(("", 6), OWN)
    assert info.value.errno == errno.EINVAL
    other = DatagramEndpoint()
    with pytest.raises(OSError) as info:
        table.bind(other, 5)
    assert info.value.errno == errno.EADDRINUSE
    assert sock.close() and not sock.close()
    table.release(sock)
    assert table.bind(other, 5) == 5
    for call in (
        lambda: sock.check_bind(("", 0), OWN),
        lambda: sock.destination((PEERS[0], 1), 1, OWN),
        sock.getpeername,
        sock.check_open,
    ):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF


def test_max_payload_bounds() -> None:
    assert check_max_payload(16384 - HEADER_SIZE, 16384) == 16378
    assert check_max_payload(MAX_PAYLOAD, 262144) == MAX_PAYLOAD
    for bad, channel in [(0, 16384), (-1, 16384), (16379, 16384), (MAX_PAYLOAD + 1, 262144)]:
        with pytest.raises(OSError) as info:
            check_max_payload(bad, channel)
        assert info.value.errno == errno.EINVAL
    for bad in [True, 1.5]:
        with pytest.raises(OSError) as info:
            check_max_payload(bad, 16384)
        assert info.value.errno == errno.EINVAL


def test_ephemeral_ports_exhausted_is_eagain() -> None:
    table = PortTable(random.Random(1))
    for _ in EPHEMERAL_PORTS:
        assert table.bind(DatagramEndpoint(), 0) in EPHEMERAL_PORTS
    with pytest.raises(OSError) as info:
        table.bind(DatagramEndpoint(), 0)
    assert info.value.errno == errno.EAGAIN


def test_receive_truncates_to_bufsize_and_loses_the_rest() -> None:
    table = PortTable(random.Random(1))
    sock = DatagramEndpoint()
    table.bind(sock, 9)
    table.deliver(PEERS[0], encode_datagram(4, 9, b"abcdef"))
    table.deliver(PEERS[0], encode_datagram(4, 9, b"gh"))
    assert sock.pop(3) == (b"abc", (PEERS[0], 4))
    assert sock.pop(0) == (b"", (PEERS[0], 4))
    assert sock.pop(10) is None


class PortTableMachine(RuleBasedStateMachine):
    """The table against a model: ports owned, queues as lists, counters."""

    def __init__(self) -> None:
        super().__init__()
        self.table = PortTable(random.Random(0))
        self.sockets: list[DatagramEndpoint] = []
        # model
        self.owner: dict[int, int] = {}  # port -> socket index
        self.queues: dict[int, deque[tuple[bytes, tuple[str, int]]]] = {}
        self.peer: dict[int, tuple[str, int]] = {}
        self.buffer: dict[int, int] = {}
        self.closed: set[int] = set()
        self.counts = {"delivered": 0, "unknown_port": 0, "filtered": 0, "queue_full": 0}
        self.malformed = 0

    @rule(
        buffer=st.one_of(
            st.sampled_from([DATAGRAM_OVERHEAD, 2 * DATAGRAM_OVERHEAD, 2 * DATAGRAM_OVERHEAD + 8]),
            st.integers(0, 3 * (DATAGRAM_OVERHEAD + 8)),
        )
    )
    def new_socket(self, buffer: int) -> None:
        self.sockets.append(DatagramEndpoint(receive_buffer=buffer))
        index = len(self.sockets) - 1
        self.queues[index] = deque()
        self.buffer[index] = buffer

    @precondition(lambda self: self.sockets)
    @rule(data=st.data(), port=st.one_of(st.just(0), PORTS))
    def bind(self, data: st.DataObject, port: int) -> None:
        index = data.draw(st.integers(0, len(self.sockets) - 1))
        sock = self.sockets[index]
        bound_already = index in self.owner.values() or index in self.closed
        try:
            got = self.table.bind(sock, port)
        except OSError as exc:
            if bound_already:
                assert exc.errno == errno.EINVAL
            else:
                assert exc.errno == errno.EADDRINUSE and port in self.owner
            return
        assert not bound_already
        assert got not in self.owner
        assert got == port or (port == 0 and got in EPHEMERAL_PORTS)
        self.owner[got] = index

    @precondition(lambda self: self.sockets)
    @rule(data=st.data(), host=st.sampled_from(PEERS), port=PORTS)
    def connect(self, data: st.DataObject, host: str, port: int) -> None:
        index = data.draw(st.integers(0, len(self.sockets) - 1))
        if index in self.closed:
            return
        self.sockets[index].peer = (host, port)
        self.peer[index] = (host, port)

    @precondition(lambda self: self.sockets)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.sockets) - 1))
        sock = self.sockets[index]
        assert sock.close() is (index not in self.closed)
        self.table.release(sock)
        self.closed.add(index)
        self.queues[index].clear()
        self.owner = {p: i for p, i in self.owner.items() if i != index}

    @rule(data=st.data(), host=st.sampled_from(PEERS), source=PORTS, size=st.integers(0, 8))
    def deliver(self, data: st.DataObject, host: str, source: int, size: int) -> None:
        # Mostly to a bound port (ephemeral ones included), sometimes to any.
        destination = data.draw(st.sampled_from([*self.owner, *self.owner, 1, 2, 3]))
        payload = bytes([size]) * size
        got = self.table.deliver(host, encode_datagram(source, destination, payload))
        index = self.owner.get(destination)
        if index is None:
            reason = "unknown_port"
        elif self.peer.get(index, (host, source)) != (host, source):
            reason = "filtered"
        else:
            used = sum(len(p) + DATAGRAM_OVERHEAD for p, _ in self.queues[index])
            if used + size + DATAGRAM_OVERHEAD > self.buffer[index]:
                reason = "queue_full"
            else:
                reason = "delivered"
                self.queues[index].append((payload, (host, source)))
        self.counts[reason] += 1
        assert (got is not None) == (reason == "delivered")

    @rule(message=st.binary(max_size=10))
    def hostile(self, message: bytes) -> None:
        if decode_datagram(message) is None:
            assert self.table.deliver(PEERS[0], message) is None
            self.malformed += 1

    @precondition(lambda self: self.sockets)
    @rule(data=st.data(), bufsize=st.integers(0, 10))
    def receive(self, data: st.DataObject, bufsize: int) -> None:
        index = data.draw(st.integers(0, len(self.sockets) - 1))
        got = self.sockets[index].pop(bufsize)
        queue = self.queues[index]
        if not queue:
            assert got is None
            return
        payload, source = queue.popleft()
        assert got == (payload[:bufsize], source)

    @invariant()
    def counters_match(self) -> None:
        stats = self.table.statistics
        assert stats.malformed == self.malformed
        for name, count in self.counts.items():
            assert getattr(stats, name) == count
        for index, sock in enumerate(self.sockets):
            assert sock.queued == len(self.queues[index])
            assert sock.queued_bytes <= self.buffer[index]
        for port, index in self.owner.items():
            assert self.table.bound(port) is self.sockets[index]


TestPortTable = PortTableMachine.TestCase
TestPortTable.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_socket_calls_bind_ephemeral_ports_when_needed() -> None:
    table = PortTable(random.Random(1))
    sock = DatagramEndpoint()
    assert table.sockname(sock, OWN) == ("0.0.0.0", 0)
    with pytest.raises(OSError) as info:
        table.prepare_send(sock, None, 1, OWN)
    assert info.value.errno == errno.EDESTADDRREQ
    assert sock.port is None  # a refused send binds nothing
    port, destination = table.prepare_send(sock, ("", 7), 1, OWN)
    assert port in EPHEMERAL_PORTS and destination == (OWN, 7)
    assert table.sockname(sock, OWN) == (OWN, port)
    other = DatagramEndpoint()
    table.connect(other, (PEERS[0], 9), OWN)
    assert other.port in EPHEMERAL_PORTS and other.getpeername() == (PEERS[0], 9)
    table.connect(other, (PEERS[1], 9), OWN)  # again: a new peer, the same port
    assert other.getpeername() == (PEERS[1], 9)
    third = DatagramEndpoint()
    assert table.bind_address(third, ("", 5), OWN) == 5
    with pytest.raises(OSError) as info:
        table.bind_address(DatagramEndpoint(), (OWN, 5), OWN)
    assert info.value.errno == errno.EADDRINUSE
