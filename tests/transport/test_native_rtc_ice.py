"""ICE servers on the native backend: srflx candidates from a real STUN server, TURN refused.

The STUN server (tests/cli/stun.py) runs on 127.0.0.1 and answers Binding
requests as a public one does. Without a NAT its answer is the host
candidate's own address, which ICE drops as redundant (RFC 8445 §5.1.3), so
the server here reports each sender at 127.0.0.2 (the address a NAT would
have given it): a srflx candidate that must reach the peer by trickle, while
the link connects over the host pair.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import trio
from aiortc import RTCConfiguration, RTCIceServer

from unisockets._rtc import CandidateError
from unisockets.transport import native_rtc
from unisockets.transport.native_rtc import (
    native_available,
    open_native_rtc_transport,
    open_rtc_transport,
)
from unisockets.transport.native_rtc_link import NativePeerLink
from unisockets.transport.webrtc import open_webrtc_transport

from ..cli.stun import stun_server
from . import conftest
from .conftest import open_mesh, wait_until
from .test_webrtc import HANG, A, B, _pipe_pair

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not native_available(), reason="the native extension is not built"),
]

#: Where the test's "NAT" maps every sender (a loopback address nobody binds).
NAT_IP = "127.0.0.2"


@pytest.fixture(autouse=True)
def native_mesh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``open_mesh`` open native transports."""
    monkeypatch.setattr(conftest, "open_webrtc_transport", open_native_rtc_transport)
    yield


def _stun(url: str) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(url)])


@pytest.mark.trio
async def test_stun_answer_becomes_a_trickled_srflx_candidate_and_the_link_connects() -> None:
    with stun_server(mapped=lambda sender: (NAT_IP, sender[1])) as server:
        async with open_mesh(A, B, rtc_configuration=_stun(server.url)) as mesh:
            trickled: list[str] = []
            signal = mesh.signals[A]
            send_candidate = signal.send_candidate

            async def recording(peer_id: str, candidate: str) -> None:
                trickled.append(json.loads(candidate)["candidate"])
                await send_candidate(peer_id, candidate)

            signal.send_candidate = recording  # type: ignore[method-assign]
            with trio.fail_after(HANG):
                pa, pb = await _pipe_pair(mesh[A], mesh[B], "over-host")
                await pa.send_message(b"hello")
                assert await pb.receive_message() == b"hello"
                await wait_until(lambda: any("typ srflx" in c for c in trickled))
            link = mesh[A].links[B]
            assert isinstance(link, NativePeerLink) and link.native_peer is not None
            host, port = link.native_peer.local_address
            # The request left from the link's own socket, and its answer is the candidate.
            assert (host, port) in server.requests
            [srflx] = [c for c in trickled if "typ srflx" in c]
            assert f" {NAT_IP} {port} typ srflx" in srflx  # raddr: str0m hides the base
            assert srflx in link.native_peer.local_candidates()
            # The host pair still carries the pipes.
            await pb.send_message(b"back")
            assert await pa.receive_message() == b"back"


@pytest.mark.trio
async def test_a_silent_stun_server_delays_nothing() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        url = f"stun:127.0.0.1:{silent.getsockname()[1]}"
        async with open_mesh(A, B, rtc_configuration=_stun(url)) as mesh:
            with trio.fail_after(HANG):
                pa, pb = await _pipe_pair(mesh[A], mesh[B], "no-answer")
                await pa.send_message(b"fine")
                assert await pb.receive_message() == b"fine"
                await trio.lowlevel.wait_readable(silent)
            request, _ = silent.recvfrom(2048)
            # RFC 8489 §5: a Binding request (0x0001) with the magic cookie.
            assert request[:2] == b"\x00\x01" and request[4:8] == b"\x21\x12\xa4\x42"


def test_auto_picks_native_for_stun_servers_and_aiortc_for_turn() -> None:
    assert native_rtc.rtc_opener("auto", _stun("stun:127.0.0.1:3478")) is (
        open_native_rtc_transport
    )
    turn = RTCConfiguration(
        iceServers=[
            RTCIceServer("stun:127.0.0.1:3478"),
            RTCIceServer("turn:127.0.0.1:3478", username="u", credential="p"),
        ]
    )
    assert native_rtc.rtc_opener("auto", turn) is open_webrtc_transport


@pytest.mark.trio
async def test_native_refuses_a_turn_server_with_a_clear_error() -> None:
    turn = _stun("turn:127.0.0.1:3478")
    with pytest.raises(ValueError, match="no TURN client"):
        async with open_rtc_transport(
            A, conftest.DirectSignal(A), backend="native", rtc_configuration=turn
        ):
            pass


def test_the_core_refuses_a_stun_server_that_is_not_an_address() -> None:
    from unisockets._rtc import Peer

    with pytest.raises(CandidateError, match="not an IP address"):
        Peer("127.0.0.1", stun_servers=[("stun.example.org", 3478)])
