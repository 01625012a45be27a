"""The post-input decisions both native drivers share (unisockets.transport.native_rtc_rules).

The trio link and the asyncio peer connection call these with their own
channel objects; here the channels are plain records, and str0m's send
buffer is a byte budget that refuses a message larger than what is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unisockets.transport.native_rtc_rules import (
    CONSENT_SLACK,
    consent_deadline,
    consent_expired,
    due_resets,
    retry_in_order,
)


@dataclass(eq=False)
class Channel:
    """A channel with a backlog of message sizes and a pending reset."""

    name: str
    backlog: list[int] = field(default_factory=list)
    reset_pending: bool = False
    reset_due: float | None = None
    gone: bool = False


class Buffer:
    """str0m's send buffer: takes messages in order while they fit."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.flushed: list[str] = []

    def flush(self, channel: Channel) -> None:
        self.flushed.append(channel.name)
        while channel.backlog and channel.backlog[0] <= self.room:
            self.room -= channel.backlog.pop(0)
        if not channel.backlog and channel.reset_pending:
            channel.reset_pending, channel.gone = False, True


def test_channels_behind_a_refused_one_keep_their_place_in_order() -> None:
    a, b, c, d = Channel("a", [10, 10]), Channel("b", [50]), Channel("c", [5]), Channel("d")
    d.reset_pending = True  # only a reset: flushed even behind a refused channel
    buffer = Buffer(room=30)
    kept: dict[Channel, None] = {}
    retry_in_order([a, b, c, d], kept, buffer.flush, lambda ch: ch.backlog)
    # a fits, b is refused: c waits behind it (no try), d's reset goes out.
    assert buffer.flushed == ["a", "b", "d"]
    assert list(kept) == [c]
    assert d.gone and not a.backlog and b.backlog == [50]


def test_a_later_success_does_not_lift_the_refusal() -> None:
    # b is refused; c (reset only) succeeds; e behind both must still wait.
    b, c, e = Channel("b", [50]), Channel("c", reset_pending=True), Channel("e", [1])
    buffer = Buffer(room=10)
    kept: dict[Channel, None] = {}
    retry_in_order([b, c, e], kept, buffer.flush, lambda ch: ch.backlog)
    assert buffer.flushed == ["b", "c"]
    assert list(kept) == [e]


def test_what_a_flush_asks_for_again_comes_before_those_kept() -> None:
    b, c = Channel("b", [50]), Channel("c", [1])
    kept: dict[Channel, None] = {}

    def flush(channel: Channel) -> None:
        kept.setdefault(channel, None)  # as wants_room does when str0m refuses

    retry_in_order([b, c], kept, flush, lambda ch: ch.backlog)
    assert list(kept) == [b, c]


def test_due_resets_are_taken_out_and_the_others_wait() -> None:
    early, late, gone, now_ = (
        Channel("early", reset_due=1.0),
        Channel("late", reset_due=5.0),
        Channel("gone", reset_due=9.0, gone=True),
        Channel("now"),
    )
    deferred = {early, late, gone, now_}
    ready = due_resets(deferred, 2.0, lambda ch: ch.reset_due, lambda ch: ch.gone)
    assert set(ready) == {early, gone, now_}
    assert deferred == {late}


def test_consent_is_judged_just_past_the_lifetime() -> None:
    assert consent_deadline(100.0, 30.0, 12.0) == 118.0 + CONSENT_SLACK
    assert not consent_expired(30.0, 30.0)
    assert consent_expired(30.0 + CONSENT_SLACK, 30.0)
