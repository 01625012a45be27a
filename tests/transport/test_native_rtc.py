"""The WebRTC transport's conformance tests on the native backend (str0m), and mixed.

Reruns the tests of test_webrtc.py (real peers on loopback, no mocks) with the
transports made by :func:`~unisockets.transport.native_rtc.open_native_rtc_transport`
("native": every node native) or alternately native and aiortc ("mixed": the
first node opened is native, the next aiortc, and so on, so each pair talks
across the two stacks on the wire). Skipped when the extension is not built.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from unisockets.transport import native_rtc
from unisockets.transport.native_rtc import native_available, open_native_rtc_transport
from unisockets.transport.native_rtc_link import NativePeerLink
from unisockets.transport.native_rtc_pipe import NativePipe
from unisockets.transport.webrtc import open_webrtc_transport
from unisockets.transport.webrtc_pipe import HIGH_WATER, MAX_MESSAGE_SIZE

from . import conftest, test_webrtc
from .conftest import open_mesh
from .test_leaks import Snapshot
from .test_webrtc import (  # noqa: F401 - collected here again, on the native backend
    CHILD,
    FAST_CONSENT,
    HANG,
    A,
    B,
    _pipe_pair,
    _ProcessSignal,
    _pump_child,
    test_closing_a_transport_first_delivers_what_was_sent,
    test_closing_the_transport_breaks_its_pipes,
    test_glare_lower_id_offer_wins,
    test_greeting_makes_the_existing_member_offer,
    test_hundred_concurrent_pipes_do_not_mix,
    test_link_on_demand_and_trickle_only_candidates,
    test_pipe_carries_messages_both_ways_and_close_is_seen,
    test_pipe_stream_conformance_over_data_channels,
    test_repeated_greetings_keep_live_links_and_a_restarted_peer_replaces_them,
    test_sigkilled_peer_breaks_the_survivors_pipes,
    test_slow_stream_reader_bounds_the_receivers_memory,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not native_available(), reason="the native extension is not built"),
]


@pytest.fixture(autouse=True, params=["native", "mixed"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Make the WebRTC tests open native transports ("native") or alternate ("mixed")."""
    turn = itertools.count()
    native_only = request.param == "native"

    def opener(local_id: str, signal: Any, **options: Any) -> Any:
        native = native_only or next(turn) % 2 == 0
        chosen = open_native_rtc_transport if native else open_webrtc_transport
        return chosen(local_id, signal, **options)

    monkeypatch.setattr(conftest, "open_webrtc_transport", opener)
    monkeypatch.setattr(test_webrtc, "open_webrtc_transport", opener)
    # The SIGKILL test's survivor is the first transport opened (native in both
    # modes); its killed peer, a child process, is native too, or aiortc in "mixed".
    monkeypatch.setattr(test_webrtc, "CHILD_BACKEND", "native" if native_only else "aiortc")
    yield request.param


def test_auto_picks_native_when_built_and_aiortc_for_turn_servers() -> None:
    from aiortc import RTCConfiguration, RTCIceServer

    assert native_rtc.rtc_opener("auto") is open_native_rtc_transport
    assert native_rtc.rtc_opener("aiortc") is open_webrtc_transport
    servers = RTCConfiguration(iceServers=[RTCIceServer("turn:127.0.0.1:3478", "u", "p")])
    assert native_rtc.rtc_opener("auto", servers) is open_webrtc_transport
    with pytest.raises(ValueError, match="webrtc_backend"):
        native_rtc.rtc_opener("quic")  # type: ignore[arg-type]


#: What str0m keeps queued across the channels of one peer connection, bytes.
STR0M_SEND_BUFFER = 128 * 1024


@pytest.mark.trio
async def test_slow_reader_blocks_the_sender_and_bounds_its_buffer(backend: str) -> None:
    total = 8 * 1024 * 1024
    payload = random.Random(7).randbytes(total)
    async with open_mesh(A, B) as mesh:  # A is native in both modes
        with trio.fail_after(HANG * 2):
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "bulk")
            assert isinstance(pa, NativePipe)
            link = mesh[A].links[B]
            assert isinstance(link, NativePeerLink) and link.native_peer is not None
            peer = link.native_peer
            backlog: list[int] = []
            in_sctp: list[int] = []

            def sample() -> None:
                backlog.append(pa.statistics().buffered_amount)
                in_sctp.append(peer.buffered_amount(pa.channel))

            async def send_all() -> None:
                for offset in range(0, total, MAX_MESSAGE_SIZE):
                    await pa.send_message(payload[offset : offset + MAX_MESSAGE_SIZE])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                # Nobody reads yet: the sender ends up waiting on backpressure.
                while pa.statistics().tasks_waiting_send == 0:
                    sample()
                    await trio.sleep(0.001)
                for _ in range(20):
                    sample()
                    await trio.sleep(0.005)
                received = bytearray()
                while len(received) < total:
                    received += await pb.receive_message()
                    sample()
            assert bytes(received) == payload
            assert max(backlog) <= HIGH_WATER + MAX_MESSAGE_SIZE
            assert max(in_sctp) <= STR0M_SEND_BUFFER + MAX_MESSAGE_SIZE


@pytest.mark.trio
async def test_native_transport_runs_no_thread_and_leaves_no_socket(backend: str) -> None:
    if backend != "native":
        pytest.skip("about the native backend alone")
    before = Snapshot.take()
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            for i in range(3):
                pa, pb = await _pipe_pair(mesh[A], mesh[B], f"p{i}")
                await pa.send_message(b"ping")
                assert await pb.receive_message() == b"ping"
            during = Snapshot.take()
            assert threading.active_count() == len(before.threads)  # no thread started
            assert len(during.udp_sockets - before.udp_sockets) == 2  # one per peer connection
    after = Snapshot.take()
    assert after.threads - before.threads == set()
    assert after.udp_sockets - before.udp_sockets == set()


@pytest.mark.trio
async def test_pipes_closed_by_both_ends_at_once_leave_new_pipes_alone(backend: str) -> None:
    """Stream ids freed by simultaneous resets are reused by new pipes, which must open.

    Both ends close each pipe at the same moment while hundreds more open
    (the accepting side's reset waits up to native_rtc_pipe.RESET_DEFER for
    the opener's; test_native_rtc_reset.py crosses the resets by hand).
    """
    count = 1000 if backend == "native" else 300
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG * 4):

            async def one(index: int) -> None:
                pa, pb = await _pipe_pair(mesh[A], mesh[B], f"churn-{index}")
                message = b"%d" % index * 100
                await pa.send_message(message)
                await pb.send_message(await pb.receive_message())
                assert await pa.receive_message() == message
                await pa.aclose()
                await pb.aclose()

            async with trio.open_nursery() as nursery:
                for index in range(count):
                    nursery.start_soon(one, index)
                    if index % 10 == 9:
                        await trio.sleep(0.001)  # opens keep coming while others close
            assert mesh[A].links[B].failure is None


class _CountingPeer:
    """Stands in for a native peer, counting the sends str0m refuses and the I/O polls."""

    def __init__(self, peer: Any) -> None:
        self._peer = peer
        self.refused = 0
        self.accepted = 0
        self.polls = 0

    def send(self, channel: int, data: bytes) -> bool:
        accepted: bool = self._peer.send(channel, data)
        if accepted:
            self.accepted += 1
        else:
            self.refused += 1
        return accepted

    def send_many(self, channel: int, messages: list[bytes]) -> Any:
        accepted, events, delay = self._peer.send_many(channel, messages)
        self.accepted += accepted
        if accepted < len(messages):
            self.refused += 1  # str0m refused the next one: the call stopped there
        return accepted, events, delay

    def poll_io(self, *args: Any) -> Any:
        self.polls += 1
        return self._peer.poll_io(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._peer, name)


@pytest.mark.trio
async def test_pipes_waiting_for_room_are_retried_in_order_not_all_at_once(backend: str) -> None:
    """str0m's send buffer is one for every channel: a retry round stops at the first refusal.

    Fifty pipes send at once, far more than the buffer holds. Each refused
    write costs str0m a pass over every channel, so retrying every waiting
    pipe after each input (as before) made the I/O work grow with the number
    of pipes; now each round of input costs at most one refusal, and a new
    message queues behind the waiting ones without a try.
    """
    if backend != "native":
        pytest.skip("about the native backend alone")
    count, messages = 50, 8
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG * 2):
            pairs = [await _pipe_pair(mesh[A], mesh[B], f"fifo-{i}") for i in range(count)]
            link = mesh[A].links[B]
            assert isinstance(link, NativePeerLink) and link.native_peer is not None
            counting = _CountingPeer(link.native_peer)
            link.native_peer = counting  # type: ignore[assignment]
            size = messages * MAX_MESSAGE_SIZE
            payloads = [random.Random(i).randbytes(size) for i in range(count)]

            async def one(index: int) -> None:
                pa, pb = pairs[index]
                payload = payloads[index]

                async def send() -> None:
                    for offset in range(0, len(payload), MAX_MESSAGE_SIZE):
                        await pa.send_message(payload[offset : offset + MAX_MESSAGE_SIZE])

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send)
                    received = bytearray()
                    while len(received) < len(payload):
                        received += await pb.receive_message()
                assert bytes(received) == payload

            async with trio.open_nursery() as nursery:
                for index in range(count):
                    nursery.start_soon(one, index)
            assert counting.accepted == count * messages
            assert counting.refused > 0  # the buffer did fill
            assert counting.refused <= counting.polls + count
