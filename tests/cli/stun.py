"""A STUN server on 127.0.0.1 (RFC 5389 Binding only) that records who asked.

It answers each Binding request with the sender's address as
XOR-MAPPED-ADDRESS, as a public STUN server does, using aioice's own message
codec; a test then knows that ``--ice-server stun:...`` reached the ICE agent.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aioice import stun

__all__ = ["StunServer", "stun_server"]


class StunServer:
    """The running server: its ``url`` and the ``requests`` it answered (sender addresses)."""

    def __init__(
        self,
        sock: socket.socket,
        mapped: Callable[[tuple[str, int]], tuple[str, int]] | None = None,
    ) -> None:
        self._sock = sock
        self._mapped = mapped
        host, port = sock.getsockname()
        self.url = f"stun:{host}:{port}"
        self.requests: list[tuple[str, int]] = []
        self.answered = threading.Event()

    def serve(self) -> None:
        """Answer Binding requests until the socket is closed."""
        while True:
            try:
                data, sender = self._sock.recvfrom(2048)
            except OSError:
                return
            try:
                request = stun.parse_message(data)
            except ValueError:
                continue
            if request.message_method != stun.Method.BINDING:
                continue
            response = stun.Message(
                message_method=stun.Method.BINDING,
                message_class=stun.Class.RESPONSE,
                transaction_id=request.transaction_id,
            )
            response.attributes["XOR-MAPPED-ADDRESS"] = (
                self._mapped(sender) if self._mapped else sender
            )
            self._sock.sendto(bytes(response), sender)
            self.requests.append(sender)
            self.answered.set()


@contextmanager
def stun_server(
    mapped: Callable[[tuple[str, int]], tuple[str, int]] | None = None,
) -> Iterator[StunServer]:
    """Run a :class:`StunServer` on a free UDP port of 127.0.0.1 for the block.

    Args:
        mapped: the address to report for a sender (as a NAT would map it);
            None reports the sender's own address.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    server = StunServer(sock, mapped)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        sock.close()
        thread.join(10)
