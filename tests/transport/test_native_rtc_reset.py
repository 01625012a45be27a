"""Stream resets that cross: both ends close a data channel in the same step (issue 17).

Two native peers (``unisockets._rtc.Peer``, str0m 0.24 and sctp-proto 0.10.8)
in this process, on real UDP sockets on 127.0.0.1, stepped by hand: each
step polls one peer (reads every datagram waiting, sends what str0m outputs,
takes its events), so the order in which the two ends act is the test's.
Both ends close one channel (RFC 8831 section 6.7: each resets its outgoing
stream, RFC 6525) in the same step, with DATA of another channel in flight
or not, and the allocating end (the DTLS client, even stream ids) then opens
new channels: str0m gives a new channel the lowest free id, so once the
reset completed the new channel gets the id just freed. The new channel must
open at both ends and carry messages both ways, whatever the interleaving.
"""

from __future__ import annotations

import random
import select
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from unisockets.transport.native_rtc import native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="the native extension is not built")

#: Seconds a wait for an event may take (a bound against hangs, not a speed test).
BOUND = 30.0


class _Pair:
    """Two connected native peers, A (offerer, the DTLS client) and B, stepped by hand."""

    def __init__(self) -> None:
        from unisockets._rtc import Peer

        self.peers = {"A": Peer("127.0.0.1"), "B": Peer("127.0.0.1")}
        a, b = self.peers["A"], self.peers["B"]
        self.events: dict[str, list[tuple[Any, ...]]] = {"A": [], "B": []}
        self._delay = {"A": 0.0, "B": 0.0}
        sdp, _legacy = a.create_offer("channel", "")
        a.accept_answer(b.accept_offer(sdp))
        for line in a.local_candidates():
            b.add_remote_candidate(line)
        for line in b.local_candidates():
            a.add_remote_candidate(line)
        self.wait(lambda: bool(self.opened("B")), "the first channel")

    def close(self) -> None:
        for peer in self.peers.values():
            peer.close()

    def step(self, who: str = "AB") -> None:
        """Poll each peer named in ``who`` once, in that order."""
        for name in who:
            peer = self.peers[name]
            queued, _ = peer.events()
            polled, delay = peer.poll_io()
            self.events[name].extend(queued + polled)
            self._delay[name] = delay

    def wait(self, done: Callable[[], bool], what: str) -> None:
        """Step both peers until ``done()``, sleeping only in ``select`` on their sockets."""
        deadline = time.monotonic() + BOUND
        while not done():
            left = deadline - time.monotonic()
            assert left > 0, f"no {what} within {BOUND} s"
            timeout = min(min(self._delay.values()), left, 0.05)
            select.select([peer.fileno() for peer in self.peers.values()], [], [], timeout)
            self.step()

    def opened(
        self, name: str, *, label: str | None = None, number: int | None = None
    ) -> list[int]:
        """The channel numbers ``name`` saw open (with ``label`` / ``number``)."""
        return [
            event[1]
            for event in self.events[name]
            if event[0] == "open"
            and (label is None or event[2] == label)
            and (number is None or event[1] == number)
        ]

    def closed(self, name: str, number: int) -> bool:
        return any(event[0] == "close" and event[1] == number for event in self.events[name])

    def received(self, name: str, number: int) -> list[bytes]:
        return [
            event[2] for event in self.events[name] if event[0] == "data" and event[1] == number
        ]

    def open(self, label: str) -> tuple[int, int]:
        """A opens a channel labelled ``label``; returns its number at A and at B, once open."""
        number = self.peers["A"].open_channel(label)
        self.wait(
            lambda: (
                bool(self.opened("A", number=number) or self.closed("A", number))
                and bool(self.opened("B", label=label))
            ),
            f"opening of {label!r}",
        )
        assert not self.closed("A", number), f"{label!r} closed before it opened"
        return number, self.opened("B", label=label)[-1]

    def exchange(self, label: str, at_a: int, at_b: int) -> None:
        """One message each way on the channel; both arrive, the channel stays open."""
        assert self.peers["A"].send(at_a, b"from A " + label.encode())
        assert self.peers["B"].send(at_b, b"from B " + label.encode())
        self.wait(
            lambda: bool(self.received("A", at_a) and self.received("B", at_b)),
            f"messages on {label!r}",
        )
        assert self.received("B", at_b) == [b"from A " + label.encode()]
        assert self.received("A", at_a) == [b"from B " + label.encode()]
        assert not self.closed("A", at_a) and not self.closed("B", at_b)


@pytest.fixture
def pair() -> Iterator[_Pair]:
    made = _Pair()
    try:
        yield made
    finally:
        made.close()


#: What happens around the two closes, one letter a move: x / y: A / B writes 60 kB on
#: another channel (DATA in flight past the reset's boundary TSN), a / b: A / B closes
#: the channel, A / B (upper case): only that peer polls, ``.``: both poll.
INTERLEAVINGS = [
    "ab",
    "ba",
    "xyab",
    "xab",
    "yab",
    "xyaAb",
    "xyaBb",
    "xyabA",
    "xyabB",
    "yba.",
    "xb.a",
]


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 6])
@pytest.mark.parametrize("moves", INTERLEAVINGS)
def test_a_channel_closed_by_both_ends_at_once_leaves_the_next_one_alone(
    pair: _Pair, moves: str, steps: int
) -> None:
    a, b = pair.peers["A"], pair.peers["B"]
    other_a, other_b = pair.open("other")
    old_a, old_b = pair.open("old")
    pair.exchange("old", old_a, old_b)
    bulk = bytes(60_000)
    for move in moves:
        if move == "x":
            assert a.send(other_a, bulk)
        elif move == "y":
            assert b.send(other_b, bulk)
        elif move == "a":
            a.close_channel(old_a)
        elif move == "b":
            b.close_channel(old_b)
        elif move == ".":
            pair.step()
        else:
            pair.step(move)
    for _ in range(steps):  # the new channel is opened at another point of the resets
        pair.step()
    new_a, new_b = pair.open("new")  # the freed id, when its reset completed by now
    pair.exchange("new", new_a, new_b)
    pair.wait(lambda: pair.closed("A", old_a) and pair.closed("B", old_b), "end of 'old'")
    pair.wait(
        lambda: (
            len(pair.received("A", other_a) + pair.received("B", other_b))
            == len([m for m in moves if m in "xy"])
        ),
        "the DATA in flight",
    )
    assert not pair.closed("A", other_a) and not pair.closed("B", other_b)


def test_hundreds_of_channels_closed_by_both_ends_while_more_open(pair: _Pair) -> None:
    # Every channel is closed by both ends in the same step, at a random step after its
    # messages crossed, while A keeps opening channels (many reuse a freed id) and bulk
    # DATA flows both ways on another channel; every channel opens and carries its messages.
    rng = random.Random(17)
    a, b = pair.peers["A"], pair.peers["B"]
    bulk_a, bulk_b = pair.open("bulk")
    blob = bytes(16384)
    waiting = [f"churn-{i}" for i in range(300)]
    opening: dict[str, int] = {}  # label -> A's number
    live: dict[str, tuple[int, int]] = {}  # label -> numbers at A and B, messages sent
    closing: dict[str, int] = {}  # label -> A's number, closed by both
    deadline = time.monotonic() + BOUND * 4
    while waiting or opening or live or closing:
        assert time.monotonic() < deadline, "the churn did not finish"
        if waiting and rng.random() < 0.5:
            label = waiting.pop()
            opening[label] = a.open_channel(label)
        for label, number in list(opening.items()):
            assert not pair.closed("A", number), f"{label} closed before it opened"
            at_b = pair.opened("B", label=label)
            if pair.opened("A", number=number) and at_b:
                del opening[label]
                live[label] = (number, at_b[-1])
                assert a.send(number, label.encode()) and b.send(at_b[-1], label.encode())
        for label, (at_a, at_b) in list(live.items()):
            if not (pair.received("A", at_a) and pair.received("B", at_b)):
                assert not pair.closed("A", at_a), f"{label} ended before its message"
                continue
            assert pair.received("A", at_a) == pair.received("B", at_b) == [label.encode()]
            if rng.random() < 0.3:
                a.close_channel(at_a)
                b.close_channel(at_b)
                del live[label]
                closing[label] = at_a
        for label, number in list(closing.items()):
            if pair.closed("A", number):
                del closing[label]
        for _ in range(4):
            if not a.send(bulk_a, blob) or not b.send(bulk_b, blob):
                break
        pair.step()
    assert not pair.closed("A", bulk_a) and not pair.closed("B", bulk_b)
