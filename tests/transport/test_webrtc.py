"""The WebRTC transport with real aiortc on loopback (no STUN/TURN).

Signaling is an in-test relay (conftest.DirectSignal) or, for the SIGKILL
test, JSON lines over a child process's stdin/stdout. Timeouts here only
keep a broken build from hanging; they assert no speed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing
from trio.testing import check_half_closeable_stream

from unisockets.protocol.consent import ConsentPolicy
from unisockets.protocol.probe import is_probe
from unisockets.transport import webrtc_link, webrtc_peers
from unisockets.transport.base import MessagePipe, SignalSender
from unisockets.transport.stream import PipeStream
from unisockets.transport.webrtc import LOOPBACK, WebRTCTransport, open_webrtc_transport
from unisockets.transport.webrtc_link import LinkState, PeerKind, offer_wins
from unisockets.transport.webrtc_pipe import HIGH_WATER, MAX_MESSAGE_SIZE, DataChannelPipe

from .conftest import open_mesh, strip_candidates, wait_until

A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"
HANG = 30  # seconds: only to turn a hang into a failure
#: Consent that expires quickly once 2 checks went unanswered (for a peer that is gone).
FAST_CONSENT = ConsentPolicy(interval=0.3, lifetime=1.5, unanswered_checks=2)

pytestmark = pytest.mark.slow


async def _pipe_pair(
    opener: WebRTCTransport, acceptor: WebRTCTransport, label: str
) -> tuple[MessagePipe, MessagePipe]:
    async with trio.open_nursery() as nursery:
        accepted: list[MessagePipe] = []

        async def accept() -> None:
            accepted.append(await acceptor.accept_pipe(opener.local_id, label))

        nursery.start_soon(accept)
        opened = await opener.open_pipe(acceptor.local_id, label)
    return opened, accepted[0]


@pytest.mark.trio
async def test_pipe_carries_messages_both_ways_and_close_is_seen() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "conn-1")
            assert (pa.label, pa.peer_id, pb.label, pb.peer_id) == ("conn-1", B, "conn-1", A)
            assert pa.max_message_size == MAX_MESSAGE_SIZE

            await pa.send_message(b"ping")
            assert await pb.receive_message() == b"ping"
            await pb.send_message(b"pong")
            assert await pa.receive_message() == b"pong"

            # Everything sent before the close arrives, then EndOfChannel.
            for i in range(50):
                await pa.send_message(b"%d" % i)
            await pa.aclose()
            await pa.aclose()  # idempotent
            got = [await pb.receive_message() for _ in range(50)]
            assert got == [b"%d" % i for i in range(50)]
            with pytest.raises(trio.EndOfChannel):
                await pb.receive_message()
            with pytest.raises(trio.EndOfChannel):  # and stays so
                await pb.receive_message()
            with pytest.raises(trio.BrokenResourceError):
                await pb.send_message(b"too late")

            with pytest.raises(trio.ClosedResourceError):
                await pa.send_message(b"x")
            with pytest.raises(trio.ClosedResourceError):
                await pa.receive_message()
            await pb.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await pb.receive_message()
            # The link stays up for the next pipe.
            assert mesh[A].links[B].state is LinkState.CONNECTED
            assert not mesh[A].links[B].pipes


@pytest.mark.trio
async def test_bad_arguments_raise_value_error() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            pa, _ = await _pipe_pair(mesh[A], mesh[B], "args")
            with pytest.raises(ValueError):
                await pa.send_message(b"")
            with pytest.raises(ValueError):
                await pa.send_message(b"x" * (MAX_MESSAGE_SIZE + 1))
            await pa.send_message(b"x" * MAX_MESSAGE_SIZE)  # the limit itself is fine
            for label in ("", "channel", "x" * 65536):
                with pytest.raises(ValueError):
                    await mesh[A].open_pipe(B, label)
            with pytest.raises(ValueError):
                await mesh[A].open_pipe(A, "to-myself")
            with pytest.raises(ValueError):
                await mesh[A].accept_pipe("", "x")


async def _hundred_concurrent_pipes() -> None:
    rng = random.Random(4)
    count = 100

    async def exchange(pipe: MessagePipe, seed: int, digests: dict[str, str]) -> None:
        # Send a few random messages, then a digest of them; read the other side's.
        local = random.Random(seed)
        sent = hashlib.sha256()
        for _ in range(local.randint(1, 6)):
            payload = local.randbytes(local.randint(1, MAX_MESSAGE_SIZE))
            sent.update(payload)
            await pipe.send_message(payload)
        await pipe.send_message(b"END" + sent.hexdigest().encode())
        received = hashlib.sha256()
        while True:
            message = await pipe.receive_message()
            if message.startswith(b"END") and len(message) == 67:
                assert message[3:].decode() == received.hexdigest(), pipe.label
                break
            received.update(message)
        digests[pipe.label] = received.hexdigest()

    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG * 4):  # a bound against hangs, not a speed test (CPU load)
            labels = [f"pipe-{i}" for i in range(count)]
            pairs: dict[str, tuple[MessagePipe, MessagePipe]] = {}

            async def make(label: str, index: int) -> None:
                # half opened by each side, all at once
                if index % 2:
                    pairs[label] = await _pipe_pair(mesh[A], mesh[B], label)
                else:
                    opened, accepted = await _pipe_pair(mesh[B], mesh[A], label)
                    pairs[label] = (accepted, opened)

            async with trio.open_nursery() as nursery:
                for index, label in enumerate(labels):
                    nursery.start_soon(make, label, index)
            assert len(mesh[A].links[B].pipes) == count

            at_a: dict[str, str] = {}
            at_b: dict[str, str] = {}
            seeds = {label: rng.getrandbits(32) for label in labels}
            async with trio.open_nursery() as nursery:
                for label, (pa, pb) in pairs.items():
                    nursery.start_soon(exchange, pa, seeds[label], at_a)
                    nursery.start_soon(exchange, pb, seeds[label] + 1, at_b)
            assert set(at_a) == set(at_b) == set(labels)
            # each pipe's own digest matched (asserted inside); no two pipes got the same data
            assert len(set(at_a.values())) == count
            # one peer connection carried all of them (both offered at first: glare, A won)
            assert mesh[A].links[B].role == "offerer"
            assert mesh[B].links[A].role == "answerer"


@pytest.mark.trio
async def test_hundred_concurrent_pipes_do_not_mix() -> None:
    await _hundred_concurrent_pipes()


@pytest.mark.trio
async def test_hundred_concurrent_pipes_on_a_busy_machine(cpu_load: int) -> None:
    # Two CPU-bound processes compete for the cores: slow, but no link may expire.
    await _hundred_concurrent_pipes()


@pytest.mark.trio
async def test_a_marked_answer_makes_the_peer_modern_without_waiting_for_the_hello(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No grace at all for the hello (as if the loop were starved), and what the
    # answerer sends on "channel" is not the hello: by the old rules the peer would be
    # legacy. The answer's mark alone says it is modern.
    monkeypatch.setattr(webrtc_link, "HELLO_GRACE", 0.0)
    monkeypatch.setattr(webrtc_link, "HELLO", b"not the hello")
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            assert await mesh[A].legacy_channel(B, offer=True) is None
            assert mesh[A].links[B].kind is PeerKind.MODERN
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "after")  # labelled pipes work
            await pa.send_message(b"modern")
            assert await pb.receive_message() == b"modern"


@pytest.mark.trio
async def test_when_ice_fails_the_error_says_so_with_candidates_and_a_hint() -> None:
    # Neither side learns a single candidate of the other (stripped from the SDPs,
    # trickled ones dropped), so ICE fails: the error must say that, not just "failed".
    def no_candidates(sdp: str) -> str:
        return "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith("a=candidate"))

    async with open_mesh(A, B) as mesh:
        for signal in mesh.signals.values():
            signal.rewrite_sdp = no_candidates
            signal.drop = lambda kind, peer: kind == "candidate"
        with trio.fail_after(HANG), pytest.raises(trio.BrokenResourceError) as caught:
            await mesh[A].open_pipe(B, "doomed")
    reasons = []
    error: BaseException | None = caught.value
    while error is not None:
        reasons.append(str(error))
        error = error.__cause__
    text = " / ".join(reasons)
    assert "ICE could not connect to 10.0.0.2" in text, text
    assert "gathered here: host" in text and "received from the peer: none" in text, text


@pytest.mark.trio
async def test_greeting_makes_the_existing_member_offer() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            await mesh[A].handle_greeting(B)  # A is the existing member, B the new one
            await mesh[A].links[B].wait_connected()
            assert mesh[A].links[B].role == "offerer"
            assert mesh[B].links[A].role == "answerer"
            # Trickled candidates went out too (a JSON RTCIceCandidateInit each).
            assert ("candidate", B) in mesh.signals[A].sent
            # Pipes in both directions reuse that link.
            pb, pa = await _pipe_pair(mesh[B], mesh[A], "from-b")
            await pb.send_message(b"hi")
            assert await pa.receive_message() == b"hi"
            offers = [m for m in mesh.signals[A].sent + mesh.signals[B].sent if m[0] == "offer"]
            assert offers == [("offer", B)]


@pytest.mark.trio
async def test_link_on_demand_and_trickle_only_candidates() -> None:
    async with open_mesh(A, B) as mesh:
        # Like a browser: no candidates in the SDP, only candidate messages.
        for signal in mesh.signals.values():
            signal.rewrite_sdp = strip_candidates
        with trio.fail_after(HANG):
            assert B not in mesh[A].links
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "demand")
            assert mesh[A].links[B].role == "offerer"
            await pa.send_message(b"over trickled candidates")
            assert await pb.receive_message() == b"over trickled candidates"


@pytest.mark.trio
@pytest.mark.parametrize(("low", "high"), [(A, B), ("10.0.0.9", "10.0.0.10")])
async def test_glare_lower_id_offer_wins(low: str, high: str) -> None:
    assert offer_wins(low, high)
    assert not offer_wins(high, low)
    async with open_mesh(low, high) as mesh:
        with trio.fail_after(HANG):
            results: dict[str, tuple[MessagePipe, MessagePipe]] = {}

            async def from_low() -> None:
                results["low"] = await _pipe_pair(mesh[low], mesh[high], "from-low")

            async def from_high() -> None:
                results["high"] = await _pipe_pair(mesh[high], mesh[low], "from-high")

            async with trio.open_nursery() as nursery:  # both sides offer at once
                nursery.start_soon(from_low)
                nursery.start_soon(from_high)
            assert ("offer", high) in mesh.signals[low].sent
            assert ("offer", low) in mesh.signals[high].sent  # so it was glare
            assert mesh[low].links[high].role == "offerer"
            assert mesh[high].links[low].role == "answerer"
            for opened, accepted in results.values():
                await opened.send_message(opened.label.encode())
                assert await accepted.receive_message() == opened.label.encode()


def _deaf(transport: WebRTCTransport, peer: str) -> None:
    """Make ``transport``'s link to ``peer`` drop probes unanswered (a dead or an older node)."""
    link = transport.links[peer]
    inspect = link._inspect_legacy

    def deaf(data: bytes) -> bool:
        return is_probe(data) or inspect(data)

    link._inspect_legacy = deaf  # type: ignore[method-assign]
    assert link.legacy_pipe is not None
    link.legacy_pipe.inspect = deaf


@pytest.mark.trio
async def test_peer_left_probes_a_live_peer_and_keeps_every_pipe() -> None:
    # Goodbye is not death (docs/protocol.md): B's signaling left, B did not.
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "kept")
            link = mesh[A].links[B]
            await mesh[A].peer_left(B)
            assert link.negotiation.probing
            await pb.send_message(b"still here")
            assert await pa.receive_message() == b"still here"
            while link.negotiation.probing:  # the answer comes over the link
                await pa.send_message(b"ping")
                assert await pb.receive_message() == b"ping"
            assert mesh[A].links[B] is link and link.state is LinkState.CONNECTED
            await pa.send_message(b"after the probe")
            assert await pb.receive_message() == b"after the probe"


@pytest.mark.trio
async def test_peer_left_breaks_every_pipe_of_a_peer_that_does_not_answer() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            pairs = [await _pipe_pair(mesh[A], mesh[B], f"p{i}") for i in range(3)]
            _deaf(mesh[B], A)
            blocked: list[BaseException] = []

            async def read_blocked(pipe: MessagePipe) -> None:
                try:
                    await pipe.receive_message()
                except trio.BrokenResourceError as exc:
                    blocked.append(exc)

            async def accept_blocked() -> None:
                try:
                    await mesh[A].accept_pipe(B, "never-opened")
                except trio.BrokenResourceError as exc:
                    blocked.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_blocked, pairs[0][0])
                nursery.start_soon(accept_blocked)
                await trio.testing.wait_all_tasks_blocked()
                await mesh[A].peer_left(B)
            assert len(blocked) == 2  # the blocked reader and the blocked accept
            for error in blocked:
                assert f"{B} left: no answer on the link" in f"{error} {error.__cause__}"
            assert B not in mesh[A].links
            for pa, pb in pairs:
                with pytest.raises(trio.BrokenResourceError):
                    await pa.send_message(b"x")
                with pytest.raises(trio.BrokenResourceError):
                    await pa.receive_message()
                # B's side breaks too: A closed the peer connection.
                with pytest.raises(trio.BrokenResourceError):
                    await pb.receive_message()
            # The next pipe sets a new link up.
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "again")
            await pa.send_message(b"back")
            assert await pb.receive_message() == b"back"
            assert mesh[A].links[B].state is LinkState.CONNECTED


@pytest.mark.trio
async def test_repeated_greetings_keep_live_links_and_a_restarted_peer_replaces_them() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "first")
            old_link = mesh[A].links[B]
            # Signaling greets B again (the server restarted and B rejoined with
            # its id): the link is alive, so it stays, and so do its pipes.
            await mesh[A].handle_greeting(B)
            assert mesh[A].links[B] is old_link
            await pa.send_message(b"still here")
            assert await pb.receive_message() == b"still here"
            offers = [m for m in mesh.signals[A].sent if m[0] == "offer"]
            # A node that restarted behind B's id has no link: it offers a new
            # one, which replaces the old link and breaks its pipes. (A's old
            # process answers no probe.)
            _deaf(mesh[A], B)
            await mesh[B].peer_left(A)
            await wait_until(lambda: A not in mesh[B].links)  # the probe timed out
            pb2, pa2 = await _pipe_pair(mesh[B], mesh[A], "after-restart")
            with pytest.raises(trio.BrokenResourceError):
                await pa.receive_message()
            assert old_link.state is LinkState.FAILED
            await pb2.send_message(b"new link")
            assert await pa2.receive_message() == b"new link"
            assert [m for m in mesh.signals[A].sent if m[0] == "offer"] == offers
            pa, _ = await _pipe_pair(mesh[A], mesh[B], "second")
            # A rejoined signaling under a new id: every link it had is stale.
            mesh[A].local_id = "10.0.0.7"
            assert mesh[A].local_id == "10.0.0.7"
            assert mesh[A].links == {}
            with pytest.raises(trio.BrokenResourceError):
                await pa.send_message(b"x")


@pytest.mark.trio
async def test_link_timeout_and_bad_signaling_fail_only_that_link() -> None:
    async with open_mesh(A, B, C, link_timeout=2.0) as mesh:
        with trio.fail_after(HANG):
            # C never answers A: the link times out, open_pipe says so.
            mesh.signals[C].drop = lambda kind, peer: peer == A
            with pytest.raises(trio.BrokenResourceError):
                await mesh[A].open_pipe(C, "unanswered")
            assert C not in mesh[A].links

            # Garbage from B: a bad offer fails B's link at A; bad candidates are ignored.
            await mesh[A].handle_candidate(B, "{not json")  # no link yet: dropped
            await mesh[A].handle_offer(B, "v=0 this is not SDP")
            with pytest.raises(trio.BrokenResourceError):
                await mesh[A].links[B].wait_connected()
            assert B not in mesh[A].links

            # A and B still connect; junk candidates on a live link change nothing.
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "after-junk")
            for junk in ("{not json", "[]", '{"candidate": 5}', '{"candidate": "candidate:1 1"}'):
                await mesh[A].handle_candidate(B, junk)
            await mesh[A].handle_candidate(B, '{"candidate": ""}')  # end-of-candidates
            await mesh[A].handle_answer(B, "unexpected answer")  # not offering: ignored
            await pa.send_message(b"still fine")
            assert await pb.receive_message() == b"still fine"
            assert mesh[A].links[B].state is LinkState.CONNECTED


@pytest.mark.trio
async def test_unclaimed_pipes_close_and_accept_times_out() -> None:
    async with open_mesh(A, B, claim_timeout=0.2, link_timeout=1.5) as mesh:
        with trio.fail_after(HANG):
            pa = await mesh[A].open_pipe(B, "nobody-accepts")
            await pa.send_message(b"hello?")
            with pytest.raises(trio.EndOfChannel):  # B closed it after the claim timeout
                await pa.receive_message()
            with pytest.raises(TimeoutError):
                await mesh[B].accept_pipe(A, "nobody-accepts")
            # A pipe claimed before it arrives and one claimed after both work.
            early = trio.Event()
            got: list[MessagePipe] = []

            async def accept_early() -> None:
                early.set()
                got.append(await mesh[B].accept_pipe(A, "early"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept_early)
                await early.wait()
                first = await mesh[A].open_pipe(B, "early")
            second = await mesh[A].open_pipe(B, "late")
            late = await mesh[B].accept_pipe(A, "late")
            await first.send_message(b"1")
            await second.send_message(b"2")
            assert await got[0].receive_message() == b"1"
            assert await late.receive_message() == b"2"


@pytest.mark.trio
async def test_a_flooded_unaccepted_pipe_breaks() -> None:
    async with open_mesh(A, B, link_timeout=1.5) as mesh:
        with trio.fail_after(HANG):
            flood = await mesh[A].open_pipe(B, "flood")
            with pytest.raises(trio.BrokenResourceError):  # B closes it past 1 MiB
                for _ in range(1000):  # 16 MB at most
                    await flood.send_message(b"x" * MAX_MESSAGE_SIZE)
            with pytest.raises(TimeoutError):  # and does not hand it out
                await mesh[B].accept_pipe(A, "flood")
            fine, accepted = await _pipe_pair(mesh[A], mesh[B], "fine")
            assert isinstance(accepted, DataChannelPipe)
            for _ in range(100):  # an accepted pipe has no such limit
                await fine.send_message(b"y" * MAX_MESSAGE_SIZE)
            await fine.send_message(b"last")
            await wait_until(
                lambda: accepted.statistics().queued_bytes == 100 * MAX_MESSAGE_SIZE + 4
            )


@pytest.mark.trio
async def test_unaccepted_pipes_of_one_peer_share_a_byte_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pipes of 600, 600 and 900 KiB each fit their own 1 MiB limit, but not a 1.5 MiB
    # budget together: the third breaks, the first two are accepted whole, and what an
    # accepted pipe queued goes back to the budget for the next one.
    monkeypatch.setattr(webrtc_peers, "UNCLAIMED_BYTES_PER_PEER", 1536 * 1024)
    chunk = b"z" * MAX_MESSAGE_SIZE
    per_pipe = 9  # 9 x 64 KiB + headers: about 600 KiB
    async with open_mesh(A, B, link_timeout=1.5) as mesh:
        with trio.fail_after(HANG):
            sent = {}
            for label in ("one", "two"):
                sent[label] = await mesh[A].open_pipe(B, label)
                for _ in range(per_pipe):
                    await sent[label].send_message(chunk)
            third = await mesh[A].open_pipe(B, "three")
            for _ in range(14):  # about 900 KiB: within its own limit, not the budget
                await third.send_message(chunk)
            # B closes it over the budget
            await wait_until(lambda: third.statistics().state in ("eof", "broken"))
            with pytest.raises(TimeoutError):  # and does not hand it out
                await mesh[B].accept_pipe(A, "three")
            for label in ("one", "two"):
                accepted = await mesh[B].accept_pipe(A, label)
                for _ in range(per_pipe):
                    assert await accepted.receive_message() == chunk
            fourth = await mesh[A].open_pipe(B, "four")  # the budget is free again
            for _ in range(per_pipe):
                await fourth.send_message(chunk)
            await fourth.send_message(b"last")
            accepted = await mesh[B].accept_pipe(A, "four")
            for _ in range(per_pipe):
                assert await accepted.receive_message() == chunk
            assert await accepted.receive_message() == b"last"


@pytest.mark.trio
async def test_slow_reader_blocks_the_sender_and_bounds_its_buffer() -> None:
    total = 8 * 1024 * 1024
    payload = random.Random(7).randbytes(total)
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG * 2):
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "bulk")
            assert isinstance(pa, DataChannelPipe)
            bridge = mesh[A]._bridge
            channel_buffer: list[int] = []

            async def buffered() -> int:
                assert pa._channel is not None
                return int(pa._channel.bufferedAmount)

            async def send_all() -> None:
                for offset in range(0, total, MAX_MESSAGE_SIZE):
                    await pa.send_message(payload[offset : offset + MAX_MESSAGE_SIZE])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                # Nobody reads yet: the sender ends up waiting on backpressure.
                while pa.statistics().tasks_waiting_send == 0:
                    channel_buffer.append(await bridge.run(buffered))
                    await trio.sleep(0.001)
                for _ in range(20):
                    channel_buffer.append(await bridge.run(buffered))
                    await trio.sleep(0.005)
                assert max(channel_buffer) <= HIGH_WATER + MAX_MESSAGE_SIZE
                # Now read everything: it arrives intact and in order.
                received = bytearray()
                while len(received) < total:
                    received += await pb.receive_message()
                    if len(received) % (1024 * 1024) == 0:
                        channel_buffer.append(await bridge.run(buffered))
            assert bytes(received) == payload
            assert max(channel_buffer) <= HIGH_WATER + MAX_MESSAGE_SIZE


@pytest.mark.trio
async def test_pipe_stream_conformance_over_data_channels() -> None:
    # trio's own HalfCloseableStream checks, with the byte stream layer on our pipes.
    labels = itertools.count()
    window = 4096
    async with open_mesh(A, B) as mesh:

        async def stream_pair(**options: int) -> tuple[PipeStream, PipeStream]:
            opened, accepted = await _pipe_pair(mesh[A], mesh[B], f"s{next(labels)}")
            return PipeStream(opened, **options), PipeStream(accepted, **options)

        async def clogged_pair() -> tuple[PipeStream, PipeStream]:
            s1, s2 = await stream_pair(window=window)
            await s1.send_all(b"x" * window)
            await s2.send_all(b"x" * window)
            return s1, s2

        with trio.fail_after(HANG * 2):
            await check_half_closeable_stream(stream_pair, clogged_pair)


@pytest.mark.trio
async def test_slow_stream_reader_bounds_the_receivers_memory() -> None:
    # Over the stream layer, credit bounds what the receiving pipe queues too.
    total = 4 * 1024 * 1024
    payload = random.Random(9).randbytes(total)
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG * 2):
            opened, accepted = await _pipe_pair(mesh[A], mesh[B], "stream")
            assert isinstance(accepted, DataChannelPipe)
            sender, receiver = PipeStream(opened), PipeStream(accepted)
            sent = trio.Event()

            async def send() -> None:
                await sender.send_all(payload)
                await sender.send_eof()
                sent.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                # Nobody reads: the sender spends its credit (one window) and stops.
                await wait_until(lambda: accepted.statistics().queued_bytes >= receiver.window)
                assert sender.send_credit == 0
                assert not sent.is_set()
                for _ in range(10):  # and nothing more arrives while we wait
                    assert accepted.statistics().queued_bytes <= receiver.window * 17 // 16
                    await trio.sleep(0.01)
                received = bytearray()
                while chunk := await receiver.receive_some():
                    received += chunk
                    assert accepted.statistics().queued_bytes <= receiver.window * 17 // 16
            assert bytes(received) == payload


@pytest.mark.trio
async def test_an_offer_on_a_live_link_replaces_it() -> None:
    # A new node took B's id while A still has a live link to the old one (its
    # goodbye got lost): the new B's offer makes A drop the old link and answer.
    signal_a = _Relay(A)
    async with open_webrtc_transport(A, signal_a, host_addresses=LOOPBACK) as a:
        with trio.fail_after(HANG):
            async with (
                open_webrtc_transport(B, _Relay(B, a), host_addresses=LOOPBACK) as b1,
                open_webrtc_transport(B, _Relay(B, a), host_addresses=LOOPBACK) as b2,
            ):
                signal_a.target = b1
                old_b, old_a = await _pipe_pair(b1, a, "old")
                old_link = a.links[B]
                signal_a.target = b2
                new_b, new_a = await _pipe_pair(b2, a, "new")
                assert a.links[B] is not old_link
                assert old_link.state is LinkState.FAILED
                await new_b.send_message(b"new incarnation")
                assert await new_a.receive_message() == b"new incarnation"
                with pytest.raises(trio.BrokenResourceError):
                    await old_a.receive_message()
                with pytest.raises(trio.BrokenResourceError):  # A closed that connection
                    await old_b.receive_message()


class _Relay(SignalSender):
    """Relays to one target transport that tests can swap."""

    def __init__(self, sender_id: str, target: WebRTCTransport | None = None) -> None:
        self.sender_id = sender_id
        self.target = target

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        if self.target is not None:
            await self.target.handle_offer(self.sender_id, sdp)

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        if self.target is not None:
            await self.target.handle_answer(self.sender_id, sdp)

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        if self.target is not None:
            await self.target.handle_candidate(self.sender_id, candidate)


@pytest.mark.trio
async def test_closing_a_transport_first_delivers_what_was_sent() -> None:
    signal_a, signal_b = _Relay(A), _Relay(B)
    async with open_webrtc_transport(B, signal_b, host_addresses=LOOPBACK) as b:
        with trio.fail_after(HANG):
            async with open_webrtc_transport(A, signal_a, host_addresses=LOOPBACK) as a:
                signal_a.target, signal_b.target = b, a
                closed, still_open = (
                    await _pipe_pair(a, b, "closed"),
                    await _pipe_pair(a, b, "open"),
                )
                for _ in range(200):  # 3 MB, far more than is acknowledged at once
                    await closed[0].send_message(b"z" * MAX_MESSAGE_SIZE)
                    await still_open[0].send_message(b"z" * MAX_MESSAGE_SIZE)
                await closed[0].aclose()
            # A left right after: B still reads everything, then the clean end
            for _ in range(200):
                assert await closed[1].receive_message() == b"z" * MAX_MESSAGE_SIZE
            with pytest.raises(trio.EndOfChannel):
                await closed[1].receive_message()
            # the pipe A left open: all its data, then broken (no clean end)
            for _ in range(200):
                assert await still_open[1].receive_message() == b"z" * MAX_MESSAGE_SIZE
            with pytest.raises(trio.BrokenResourceError):
                await still_open[1].receive_message()


@pytest.mark.trio
async def test_closing_the_transport_breaks_its_pipes() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            pb, pa = await _pipe_pair(mesh[B], mesh[A], "x")
            async with open_webrtc_transport(C, mesh.signals[A], host_addresses=LOOPBACK) as c:
                pass
            with pytest.raises(trio.ClosedResourceError):
                await c.open_pipe(A, "after close")
        # (the mesh closes here)
    with pytest.raises(trio.BrokenResourceError):
        await pa.receive_message()
    with pytest.raises(trio.BrokenResourceError):
        await pb.send_message(b"x")


# --- a peer in another process, killed with SIGKILL -----------------------------------------

CHILD = Path(__file__).with_name("webrtc_child.py")
#: The child's WebRTC backend (webrtc_child.py's second argument; test_native_rtc sets it).
CHILD_BACKEND = "aiortc"


class _ProcessSignal(SignalSender):
    """Writes signaling to the child's stdin as JSON lines ``{"kind", "peer", "payload"}``."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None
        self._stdin = process.stdin
        self._lock = trio.Lock()

    async def write(self, kind: str, peer: str, payload: str) -> None:
        line = json.dumps({"kind": kind, "peer": peer, "payload": payload}) + "\n"
        async with self._lock:
            await self._stdin.send_all(line.encode())

    # The child reads "peer" as the sender: always A.
    async def send_offer(self, peer_id: str, sdp: str) -> None:
        await self.write("offer", A, sdp)

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        await self.write("answer", A, sdp)

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        await self.write("candidate", A, candidate)


async def _pump_child(process: trio.Process, transport: WebRTCTransport) -> None:
    """Feed the child's signaling lines to our transport (EOF is *not* a peer_left)."""
    assert process.stdout is not None
    buffer = b""
    while chunk := await process.stdout.receive_some():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            message = json.loads(line)
            kind, payload = message["kind"], message["payload"]
            if kind == "offer":
                await transport.handle_offer(B, payload)
            elif kind == "answer":
                await transport.handle_answer(B, payload)
            elif kind == "candidate":
                await transport.handle_candidate(B, payload)


@pytest.mark.trio
async def test_sigkilled_peer_breaks_the_survivors_pipes() -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, str(CHILD), B, CHILD_BACKEND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        signal = _ProcessSignal(process)
        async with (
            open_webrtc_transport(
                A, signal, host_addresses=LOOPBACK, consent=FAST_CONSENT
            ) as transport,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_pump_child, process, transport)
            with trio.fail_after(HANG):
                pipes = []
                for i in range(3):
                    await signal.write("pipe", A, f"echo-{i}")  # the child accepts it
                    pipe = await transport.open_pipe(B, f"echo-{i}")
                    await pipe.send_message(b"are you there %d" % i)
                    assert await pipe.receive_message() == b"are you there %d" % i
                    pipes.append(pipe)
            process.kill()  # SIGKILL: no goodbye, no SCTP ABORT, no DTLS close_notify
            await process.wait()
            # No signaling server here to say goodbye: only ICE consent can notice (a
            # short policy, so the test is quick; nodes learn it from the server's goodbye).
            with trio.fail_after(HANG):
                for pipe in pipes:
                    with pytest.raises(trio.BrokenResourceError) as caught:
                        await pipe.receive_message()
                    assert "ICE consent expired" in str(caught.value.__cause__)
            assert B not in transport.links
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
