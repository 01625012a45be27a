"""Datagram sockets (``SOCK_DGRAM``) as data: the wire header, the limits, the port table.

Shared by every driver of datagram sockets (trio natively, Pyodide in a
browser), so that all of them put the same bytes on the wire and give the same
errno for the same misuse (docs/protocol.md, "Datagrams"):

- **Wire.** Datagrams between two nodes travel on the unreliable, unordered
  data channel :data:`DATAGRAM_LABEL` of their peer link. Each data channel
  message is one datagram: a :data:`HEADER_SIZE`-byte header (source port,
  destination port, payload length; unsigned 16-bit big-endian integers) and
  the payload. :func:`encode_datagram` writes it, :func:`decode_datagram`
  reads it and answers ``None`` for anything malformed (shorter than the
  header, a length that is not the rest of the message, port 0): a hostile
  peer's bytes are dropped and counted, never raised.
- **Limits.** By default a payload is at most :data:`DEFAULT_MAX_PAYLOAD`
  bytes: a message that fits one SCTP DATA chunk of a 1,189-byte SCTP packet
  (what aiortc and libwebrtc send, so that no datagram is fragmented). A
  socket may raise its limit up to the channel's max message size less the
  header, and never beyond :data:`MAX_PAYLOAD` (UDP over IPv4's, RFC 768 and
  RFC 791). A larger payload is ``EMSGSIZE`` (sendto(2)).
- **Ports.** Datagram ports are a namespace of their own (:class:`PortTable`),
  separate from stream ports as UDP's are from TCP's. Port 0 binds an
  ephemeral port from :data:`EPHEMERAL_PORTS`; a taken port is
  ``EADDRINUSE``; no free ephemeral port is ``EAGAIN`` (Linux's udp(7)).
- **Receive queues.** Each socket (:class:`DatagramEndpoint`) queues at most
  its ``receive_buffer`` bytes, each datagram charged its payload plus
  :data:`DATAGRAM_OVERHEAD` (like ``SO_RCVBUF`` and the kernel's per-packet
  accounting, socket(7)); a datagram that does not fit is dropped and counted.
  A datagram for a port nobody bound, and one from another sender than a
  connected socket's peer, are dropped and counted too (udp(7)).
- **Calls.** :class:`DatagramEndpoint` decides each call's errno as Linux
  does: ``EBADF`` once closed, ``EINVAL`` for a second ``bind`` or a bad
  address, ``EADDRNOTAVAIL`` for another node's address, ``EDESTADDRREQ`` for
  ``send`` without ``connect``, ``ENOTCONN`` for ``getpeername`` without it.
"""

from __future__ import annotations

import collections
import errno
import random
import struct
from dataclasses import dataclass
from typing import Final

from .planner import ANY_HOSTS, check_address, check_port
from .socket_states import oserror

__all__ = [
    "DATAGRAM_LABEL",
    "DATAGRAM_OVERHEAD",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_RECEIVE_BUFFER",
    "EPHEMERAL_PORTS",
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "MAX_PENDING_DATAGRAMS",
    "RETRY_AFTER",
    "SCTP_USER_DATA_SIZE",
    "DatagramEndpoint",
    "DatagramStatistics",
    "PortTable",
    "check_max_payload",
    "check_recv_size",
    "decode_datagram",
    "encode_datagram",
]

#: The label of a peer link's datagram channel (unordered, no retransmissions).
DATAGRAM_LABEL: Final = "unisockets/datagram"
#: Source port, destination port, payload length: unsigned 16-bit, big-endian.
_HEADER: Final = struct.Struct("!HHH")
#: Bytes of the header before each payload.
HEADER_SIZE: Final = _HEADER.size
#: User data of one SCTP DATA chunk in a 1,189-byte SCTP packet (aiortc and
#: libwebrtc), rounded down to 4 bytes: ``(1189 - 12 - 16) // 4 * 4``.
SCTP_USER_DATA_SIZE: Final = 1160
#: The default largest payload: a datagram that SCTP never fragments.
DEFAULT_MAX_PAYLOAD: Final = SCTP_USER_DATA_SIZE - HEADER_SIZE
#: The largest payload at all: UDP over IPv4's (65,535 - 20 - 8).
MAX_PAYLOAD: Final = 65507
#: Linux's default ``SO_RCVBUF`` (``net.core.rmem_default``), bytes.
DEFAULT_RECEIVE_BUFFER: Final = 212992
#: Bytes each queued datagram is charged beyond its payload (bookkeeping), so
#: that a flood of empty datagrams is bounded too.
DATAGRAM_OVERHEAD: Final = 256
#: Datagrams to one peer that wait while its link or datagram channel opens; more are dropped.
MAX_PENDING_DATAGRAMS: Final = 64
#: Seconds datagrams to a peer that could not be reached are dropped before trying again.
RETRY_AFTER: Final = 2.0
#: Ports picked for ``bind`` to port 0 (IANA's dynamic range, RFC 6335).
EPHEMERAL_PORTS: Final = range(49152, 65536)

Address = tuple[str, int]


def encode_datagram(source_port: int, destination_port: int, payload: bytes) -> bytes:
    """Build one datagram channel message.

    Args:
        source_port: the sending socket's port, 1..65535.
        destination_port: the receiving socket's port, 1..65535.
        payload: 0..:data:`MAX_PAYLOAD` bytes.

    Returns:
        The header followed by the payload.

    Raises:
        ValueError: a port out of range or a payload over :data:`MAX_PAYLOAD`
            (the drivers check both first, with the errno a socket gives).
    """
    if not (0 < source_port <= 65535 and 0 < destination_port <= 65535):
        raise ValueError(f"bad ports {source_port} -> {destination_port}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return _HEADER.pack(source_port, destination_port, len(payload)) + payload


def decode_datagram(message: bytes) -> tuple[int, int, bytes] | None:
    """Read one datagram channel message; never raises.

    Args:
        message: the data channel message, as received.

    Returns:
        ``(source port, destination port, payload)``, or ``None`` when the
        message is malformed: shorter than the header, a length field that is
        not the number of bytes after the header, or a port 0.
    """
    if len(message) < HEADER_SIZE:
        return None
    source, destination, length = _HEADER.unpack_from(message)
    if length != len(message) - HEADER_SIZE or source == 0 or destination == 0:
        return None
    return source, destination, bytes(message[HEADER_SIZE:])


def check_max_payload(size: object, max_message_size: int) -> int:
    """Validate a socket's requested largest payload.

    Args:
        size: the requested limit, bytes.
        max_message_size: the largest message the datagram channel carries, bytes.

    Returns:
        ``size``.

    Raises:
        OSError: ``EINVAL`` unless ``size`` is an ``int`` from 1 to
            ``min(max_message_size - HEADER_SIZE, MAX_PAYLOAD)``.
    """
    ceiling = min(max_message_size - HEADER_SIZE, MAX_PAYLOAD)
    if type(size) is not int or not 0 < size <= ceiling:
        raise oserror(errno.EINVAL, f"max payload must be 1..{ceiling} bytes, not {size!r}")
    return size


def check_recv_size(bufsize: object) -> int:
    """Validate ``recvfrom``'s size as :mod:`socket` does (0 is allowed: the datagram is lost).

    Returns:
        ``bufsize``.

    Raises:
        ValueError: a negative size (:mod:`socket`'s "negative buffersize").
        OSError: ``EINVAL`` when it is not an ``int``.
    """
    if type(bufsize) is not int:
        raise oserror(errno.EINVAL, f"bad bufsize {bufsize!r}")
    if bufsize < 0:
        raise ValueError("negative buffersize in recvfrom")
    return bufsize


@dataclass(slots=True)
class DatagramStatistics:
    """What a node's datagram layer dropped and delivered (counters since it started).

    Attributes:
        delivered: datagrams queued on a socket.
        malformed: messages :func:`decode_datagram` refused.
        unknown_port: datagrams for a port no socket is bound to.
        filtered: datagrams a connected socket refused (another sender than its peer).
        queue_full: datagrams dropped because the socket's receive queue was full.
        send_dropped: datagrams this node could not send (no link to the peer, a
            legacy peer, the link failing, or more than
            :data:`MAX_PENDING_DATAGRAMS` waiting for the link).
    """

    delivered: int = 0
    malformed: int = 0
    unknown_port: int = 0
    filtered: int = 0
    queue_full: int = 0
    send_dropped: int = 0


class DatagramEndpoint:
    """One datagram socket's state: its port, its peer, its bounded receive queue.

    A driver checks each call here before doing any I/O (the errnos are in the
    module docstring) and pops what :meth:`PortTable.deliver` queued.

    Attributes:
        port: the bound port, or None before bind (and after close).
        peer: the connected ``(host, port)``, or None.
        receive_buffer: the most bytes the queue may be charged (``SO_RCVBUF``).
        max_payload: the largest payload ``sendto`` takes (``EMSGSIZE`` beyond).
        closed: whether ``close`` was called.
        dropped: datagrams dropped because the queue was full.
        received: datagrams queued since the socket was created.
    """

    def __init__(
        self,
        *,
        receive_buffer: int = DEFAULT_RECEIVE_BUFFER,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.port: int | None = None
        self.peer: Address | None = None
        self.receive_buffer = receive_buffer
        self.max_payload = max_payload
        self.closed = False
        self.dropped = 0
        self.received = 0
        self._queue: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._charged = 0

    # --- calls -------------------------------------------------------------------------

    def check_open(self) -> None:
        """Raise ``EBADF`` when the socket is closed."""
        if self.closed:
            raise oserror(errno.EBADF, "the socket is closed")

    def check_bind(self, address: object, own_address: str) -> int:
        """Check a ``bind`` and return the port asked for (0: any).

        Raises:
            OSError: ``EBADF`` (closed), ``EINVAL`` (already bound, or a bad
                address), ``EADDRNOTAVAIL`` (not this node's address).
        """
        self.check_open()
        host, port = check_address(address)
        if self.port is not None:
            raise oserror(errno.EINVAL, "the socket is already bound")
        if host not in (*ANY_HOSTS, own_address):
            raise oserror(errno.EADDRNOTAVAIL, f"{host} is not this node's address")
        return port

    def destination(self, address: object | None, size: int, own_address: str) -> Address:
        """Check a ``sendto`` (``address`` given) or ``send`` (None) of ``size`` bytes.

        Args:
            address: the destination ``(host, port)``, or None for the peer.
            size: the payload's length, bytes.
            own_address: this node's address (``""``, ``"0.0.0.0"`` and
                ``"localhost"`` mean it).

        Returns:
            The destination, with its host resolved.

        Raises:
            OSError: ``EBADF`` (closed), ``EDESTADDRREQ`` (``send`` while not
                connected), ``EINVAL`` (bad address or port 0), ``EMSGSIZE``
                (over :attr:`max_payload`).
        """
        self.check_open()
        if address is None:
            if self.peer is None:
                raise oserror(errno.EDESTADDRREQ, "the socket is not connected")
            destination = self.peer
        else:
            destination = self.resolve(address, own_address)
        if size > self.max_payload:
            raise oserror(
                errno.EMSGSIZE, f"{size} bytes exceed the datagram limit of {self.max_payload}"
            )
        return destination

    def resolve(self, address: object, own_address: str) -> Address:
        """Validate a remote address; ``""``/``"0.0.0.0"``/``"localhost"`` are this node.

        Raises:
            OSError: ``EINVAL`` for a malformed address or port 0.
        """
        host, port = check_address(address)
        if port == 0:
            raise oserror(errno.EINVAL, "port 0 is not a destination")
        return (own_address if host in ANY_HOSTS else host, port)

    def getpeername(self) -> Address:
        """The connected peer.

        Raises:
            OSError: ``EBADF`` (closed), ``ENOTCONN`` (not connected).
        """
        self.check_open()
        if self.peer is None:
            raise oserror(errno.ENOTCONN, "the socket is not connected")
        return self.peer

    # --- the receive queue -------------------------------------------------------------

    def offer(self, payload: bytes, source: Address) -> bool:
        """Queue a datagram if the receive buffer has room; else count it dropped.

        Returns:
            Whether it was queued.
        """
        charge = len(payload) + DATAGRAM_OVERHEAD
        if self.closed or self._charged + charge > self.receive_buffer:
            self.dropped += 1
            return False
        self._queue.append((payload, source))
        self._charged += charge
        self.received += 1
        return True

    def pop(self, bufsize: int) -> tuple[bytes, Address] | None:
        """Take the oldest datagram, cut to ``bufsize`` bytes (the rest is lost, as in recv(2)).

        Returns:
            ``(payload, source)``, or None when the queue is empty.
        """
        if not self._queue:
            return None
        payload, source = self._queue.popleft()
        self._charged -= len(payload) + DATAGRAM_OVERHEAD
        return payload[:bufsize], source

    @property
    def queued(self) -> int:
        """Datagrams waiting to be received."""
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Bytes the queue is charged (payloads plus :data:`DATAGRAM_OVERHEAD` each)."""
        return self._charged

    def close(self) -> bool:
        """Close: drop the queue. Returns True the first time (then release its port)."""
        if self.closed:
            return False
        self.closed = True
        self._queue.clear()
        self._charged = 0
        return True


class PortTable:
    """One node's datagram ports and where arriving datagrams go.

    Args:
        rng: picks ephemeral ports (a seeded one makes tests repeatable).

    Attributes:
        statistics: the node's counters (:class:`DatagramStatistics`).
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._ports: dict[int, DatagramEndpoint] = {}
        self.statistics = DatagramStatistics()

    def bind(self, endpoint: DatagramEndpoint, port: int) -> int:
        """Give ``endpoint`` ``port`` (0: a free ephemeral port).

        Returns:
            The port bound.

        Raises:
            OSError: ``EINVAL`` (bad port, already bound, closed),
                ``EADDRINUSE`` (taken), ``EAGAIN`` (no ephemeral port free).
        """
        check_port(port)
        if endpoint.port is not None or endpoint.closed:
            raise oserror(errno.EINVAL, "the socket is already bound or closed")
        if port == 0:
            port = self._ephemeral()
        elif port in self._ports:
            raise oserror(errno.EADDRINUSE, f"datagram port {port} is taken")
        self._ports[port] = endpoint
        endpoint.port = port
        return port

    # --- one socket's calls, as both drivers make them -------------------------------

    def bind_address(self, endpoint: DatagramEndpoint, address: object, own_address: str) -> int:
        """``bind(address)``: check it (:meth:`DatagramEndpoint.check_bind`) and take the port.

        Returns:
            The port bound.
        """
        return self.bind(endpoint, endpoint.check_bind(address, own_address))

    def connect(self, endpoint: DatagramEndpoint, address: object, own_address: str) -> None:
        """``connect(address)``: set the peer, binding an ephemeral port first if unbound.

        Raises:
            OSError: ``EBADF`` (closed), ``EINVAL`` (bad address or port 0),
                ``EAGAIN`` (no ephemeral port free).
        """
        endpoint.check_open()
        peer = endpoint.resolve(address, own_address)
        self.autobind(endpoint)
        endpoint.peer = peer

    def prepare_send(
        self, endpoint: DatagramEndpoint, address: object | None, size: int, own_address: str
    ) -> tuple[int, Address]:
        """``sendto``/``send``: check (:meth:`DatagramEndpoint.destination`), bind if unbound.

        Returns:
            ``(source port, destination)``.
        """
        destination = endpoint.destination(address, size, own_address)
        return self.autobind(endpoint), destination

    def autobind(self, endpoint: DatagramEndpoint) -> int:
        """The socket's port, binding an ephemeral one first if it has none."""
        if endpoint.port is None:
            return self.bind(endpoint, 0)
        return endpoint.port

    @staticmethod
    def sockname(endpoint: DatagramEndpoint, own_address: str) -> Address:
        """``getsockname()``: ``(own address, port)``, ``("0.0.0.0", 0)`` before bind.

        Raises:
            OSError: ``EBADF`` (closed).
        """
        endpoint.check_open()
        return ("0.0.0.0", 0) if endpoint.port is None else (own_address, endpoint.port)

    def _ephemeral(self) -> int:
        start = self._rng.randrange(len(EPHEMERAL_PORTS))
        for offset in range(len(EPHEMERAL_PORTS)):
            port = EPHEMERAL_PORTS[(start + offset) % len(EPHEMERAL_PORTS)]
            if port not in self._ports:
                return port
        raise oserror(errno.EAGAIN, "no ephemeral datagram port is free")

    def release(self, endpoint: DatagramEndpoint) -> None:
        """Free ``endpoint``'s port (it may be bound again at once); idempotent."""
        if endpoint.port is not None and self._ports.get(endpoint.port) is endpoint:
            del self._ports[endpoint.port]

    def bound(self, port: int) -> DatagramEndpoint | None:
        """The socket bound to ``port``, if any."""
        return self._ports.get(port)

    def deliver(self, source_host: str, message: bytes) -> DatagramEndpoint | None:
        """Take one message from ``source_host``'s datagram channel; never raises.

        Returns:
            The socket that queued it (its reader is to be woken), or None when
            it was dropped (and counted).
        """
        decoded = decode_datagram(message)
        if decoded is None:
            self.statistics.malformed += 1
            return None
        source_port, destination_port, payload = decoded
        return self.deliver_payload((source_host, source_port), destination_port, payload)

    def deliver_payload(
        self, source: Address, destination_port: int, payload: bytes
    ) -> DatagramEndpoint | None:
        """Queue a decoded datagram (or one from this node itself) on its socket.

        Returns:
            As :meth:`deliver`.
        """
        endpoint = self._ports.get(destination_port)
        if endpoint is None:
            self.statistics.unknown_port += 1
            return None
        if endpoint.peer is not None and endpoint.peer != source:
            self.statistics.filtered += 1
            return None
        if not endpoint.offer(payload, source):
            self.statistics.queue_full += 1
            return None
        self.statistics.delivered += 1
        return endpoint
