"""Real software on datagram sockets: a DNS query and its answer with dnspython, unmodified.

dnspython's :mod:`dns.message` is sans-IO (it builds and parses wire-format
messages); here a small DNS server on one node and a resolver on another
exchange its messages over our datagram sockets, across real WebRTC.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

import unisockets
import unisockets.net as net

pytestmark = pytest.mark.trio

ZONE = {"printer.example.": "10.0.0.42"}


async def _serve_dns(sock: net.DatagramSocket, answered: list[str]) -> None:
    """Answer A queries from ZONE (NXDOMAIN otherwise), one datagram per query."""
    while True:
        wire, client = await sock.recvfrom(512)
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text()
        answered.append(name)
        if question.rdtype == dns.rdatatype.A and name in ZONE:
            response.answer.append(dns.rrset.from_text(name, 300, "IN", "A", ZONE[name]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        await sock.sendto(response.to_wire(), client)


async def _resolve(sock: net.DatagramSocket, name: str) -> dns.message.Message:
    """Query ``name`` (A) on the connected server; resend every 0.5 s (UDP may lose it)."""
    query = dns.message.make_query(name, dns.rdatatype.A)
    while True:
        await sock.send(query.to_wire())
        with trio.move_on_after(0.5):  # the resend interval of a DNS client
            while True:
                response = dns.message.from_wire(await sock.recv(512))
                if query.is_response(response):
                    return response


async def test_dns_query_and_answer_over_webrtc_datagrams(signaling_url: str) -> None:
    async with (
        net.open_node(signaling_url, ice_addresses=["127.0.0.1"]) as server_node,
        net.open_node(signaling_url, ice_addresses=["127.0.0.1"]) as client_node,
    ):
        answered: list[str] = []
        with (
            server_node.socket(unisockets.SOCK_DGRAM) as server,
            client_node.socket(unisockets.SOCK_DGRAM) as client,
        ):
            await server.bind(("", 53))
            await client.connect((server_node.address, 53))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_serve_dns, server, answered)
                with trio.fail_after(60):
                    found = await _resolve(client, "printer.example.")
                    missing = await _resolve(client, "nowhere.example.")
                nursery.cancel_scope.cancel()
        assert found.rcode() == dns.rcode.NOERROR
        assert found.flags & dns.flags.QR
        (rrset,) = found.answer
        assert [rdata.to_text() for rdata in rrset] == ["10.0.0.42"]
        assert missing.rcode() == dns.rcode.NXDOMAIN and not missing.answer
        assert "printer.example." in answered and "nowhere.example." in answered
