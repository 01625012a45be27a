"""Tests of the sans-IO stream framing and credit-based flow control."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from unisockets.protocol.errors import LocalProtocolError, RemoteProtocolError
from unisockets.protocol.stream import (
    DEFAULT_WINDOW,
    MAX_CREDIT,
    TRANSITIONS,
    CreditGranted,
    DataReceived,
    EofReceived,
    FrameType,
    Input,
    ResetReceived,
    Side,
    StreamConnection,
    StreamState,
    render_mermaid,
)


def credit(amount: int) -> bytes:
    return bytes([FrameType.CREDIT]) + amount.to_bytes(4, "big")


# ---- the wire format ---------------------------------------------------------


def test_frames_are_a_type_byte_then_payload() -> None:
    conn = StreamConnection()
    assert conn.send_data(b"hello") == [b"\x00hello"]
    assert conn.send_eof() == [b"\x01"]
    assert conn.reset("bye") == [b"\x03bye"]


def test_data_is_split_to_fit_max_message_size() -> None:
    conn = StreamConnection(max_message_size=8)
    frames = conn.send_data(bytes(range(20)))
    assert frames == [
        b"\x00" + bytes(range(0, 7)),
        b"\x00" + bytes(range(7, 14)),
        b"\x00" + bytes(range(14, 20)),
    ]
    assert all(len(f) <= 8 for f in frames)


def test_send_data_accepts_bytearray_and_memoryview_and_empty() -> None:
    conn = StreamConnection()
    assert conn.send_data(bytearray(b"ab")) == [b"\x00ab"]
    assert conn.send_data(memoryview(b"cd")) == [b"\x00cd"]
    assert conn.send_data(b"") == []
    assert conn.send_credit == DEFAULT_WINDOW - 4


def test_receiving_frames_gives_events() -> None:
    conn = StreamConnection(receive_window=100)
    conn.send_data(b"x" * 60)
    assert conn.receive_frame(b"\x00abc") == [DataReceived(data=b"abc")]
    assert conn.receive_frame(bytearray(credit(7))) == [CreditGranted(amount=7)]
    assert conn.send_credit == 47
    assert conn.receive_frame(memoryview(b"\x01")) == [EofReceived()]
    assert conn.receive_state is StreamState.EOF_RECEIVED


# ---- flow control ------------------------------------------------------------


def test_sender_stops_at_the_window_and_resumes_on_credit() -> None:
    conn = StreamConnection(max_message_size=1000, receive_window=100)
    frames = conn.send_data(b"a" * 250)
    assert sum(len(f) - 1 for f in frames) == 100
    assert conn.send_credit == 0
    assert conn.pending_bytes == 150
    assert conn.send_eof() == []  # EOF waits behind the pending data
    assert conn.eof_pending
    assert conn.receive_frame(credit(60)) == [CreditGranted(amount=60)]
    assert conn.flush() == [b"\x00" + b"a" * 60]
    conn.receive_frame(credit(100))
    assert conn.flush() == [b"\x00" + b"a" * 90, b"\x01"]
    assert conn.pending_bytes == 0
    assert not conn.eof_pending
    assert conn.send_credit == 10


def test_receiver_grants_credit_in_batches() -> None:
    conn = StreamConnection(receive_window=100)  # grant threshold 50
    conn.receive_frame(b"\x00" + b"x" * 80)
    assert conn.peer_credit == 20
    assert conn.consumed(30) == []
    assert conn.consumed(19) == []
    assert conn.consumed(1) == [credit(50)]
    assert conn.peer_credit == 70
    assert conn.unconsumed_bytes == 30


def test_no_credit_after_eof_received() -> None:
    conn = StreamConnection(receive_window=10, grant_threshold=1)
    conn.receive_frame(b"\x00abc")
    conn.receive_frame(b"\x01")
    assert conn.consumed(3) == []


def test_custom_grant_threshold() -> None:
    conn = StreamConnection(receive_window=100, grant_threshold=1)
    conn.receive_frame(b"\x00ab")
    assert conn.consumed(1) == [credit(1)]


def test_peer_exceeding_credit_is_a_remote_error() -> None:
    conn = StreamConnection(max_message_size=64, receive_window=100)
    conn.receive_frame(b"\x00" + b"x" * 63)
    with pytest.raises(RemoteProtocolError, match="exceeded its credit"):
        conn.receive_frame(b"\x00" + b"x" * 38)
    assert conn.send_state is conn.receive_state is StreamState.ERROR


def test_exactly_the_window_is_fine() -> None:
    conn = StreamConnection(max_message_size=64, receive_window=100)
    conn.receive_frame(b"\x00" + b"x" * 63)
    conn.receive_frame(b"\x00" + b"x" * 37)
    assert conn.unconsumed_bytes == 100
    assert conn.peer_credit == 0


def test_credit_beyond_the_window_is_a_remote_error() -> None:
    conn = StreamConnection(receive_window=100)
    conn.send_data(b"x" * 10)
    conn.receive_frame(credit(10))
    conn2 = StreamConnection(receive_window=100)
    conn2.send_data(b"x" * 10)
    with pytest.raises(RemoteProtocolError, match="beyond the window"):
        conn2.receive_frame(credit(11))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "empty frame"),
        (b"\x00", "DATA frame without payload"),
        (b"\x01x", "EOF frame with 1 bytes"),
        (b"\x02\x00\x00\x01", "not 4"),
        (b"\x02\x00\x00\x00\x01\x00", "not 4"),
        (b"\x02\x00\x00\x00\x00", "CREDIT of 0"),
        (b"\x04", "unknown frame type 0x04"),
        (b"\xff" + b"x" * 10, "unknown frame type 0xff"),
        (b"\x00" + b"x" * 16, "exceeds max_message_size"),
    ],
)
def test_malformed_frames(frame: bytes, message: str) -> None:
    conn = StreamConnection(max_message_size=16)
    conn.send_data(b"x" * 10)
    with pytest.raises(RemoteProtocolError, match=message):
        conn.receive_frame(frame)
    assert conn.receive_state is StreamState.ERROR
    with pytest.raises(LocalProtocolError):
        conn.receive_frame(b"\x00x")
    # after an error we can still tell the peer, once
    assert conn.reset("bad frame") == [b"\x03bad frame"]
    assert conn.reset("again") == []


def test_data_and_eof_after_eof_are_remote_errors() -> None:
    conn = StreamConnection()
    conn.receive_frame(b"\x01")
    with pytest.raises(RemoteProtocolError, match="DATA while our receive side is EOF_RECEIVED"):
        conn.receive_frame(b"\x00x")
    conn = StreamConnection()
    conn.receive_frame(b"\x01")
    with pytest.raises(RemoteProtocolError, match="EOF"):
        conn.receive_frame(b"\x01")


def test_reset_received() -> None:
    conn = StreamConnection()
    conn.send_data(b"x")
    assert conn.receive_frame(b"\x03gone \xff") == [ResetReceived(reason="gone \ufffd")]
    assert conn.send_state is conn.receive_state is StreamState.ERROR
    assert conn.reset() == []
    for call in (lambda: conn.send_data(b"x"), conn.send_eof, conn.flush, lambda: conn.consumed(0)):
        with pytest.raises(LocalProtocolError):
            call()


def test_reset_drops_pending_and_truncates_reason() -> None:
    conn = StreamConnection(max_message_size=8, receive_window=10)
    conn.send_data(b"x" * 50)
    conn.send_eof()
    frames = conn.reset("a long reason")
    assert frames == [b"\x03a long "]
    assert conn.pending_bytes == 0
    assert not conn.eof_pending


def test_local_errors() -> None:
    conn = StreamConnection()
    conn.send_eof()
    assert conn.send_eof() == []  # idempotent, like trio's send_eof
    with pytest.raises(LocalProtocolError):
        conn.send_data(b"x")
    with pytest.raises(LocalProtocolError):
        conn.send_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.consumed(1)  # nothing received
    with pytest.raises(LocalProtocolError):
        conn.consumed(-1)
    with pytest.raises(TypeError):
        StreamConnection().send_data("text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_message_size": 4},
        {"receive_window": 0},
        {"receive_window": MAX_CREDIT + 1},
        {"send_window": 0},
        {"grant_threshold": 0},
        {"receive_window": 10, "grant_threshold": 11},
        {"receive_window": 1.5},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StreamConnection(**kwargs)  # type: ignore[arg-type]


def test_event_validation() -> None:
    with pytest.raises(LocalProtocolError):
        DataReceived(data=b"")
    with pytest.raises(LocalProtocolError):
        CreditGranted(amount=0)
    with pytest.raises(LocalProtocolError):
        ResetReceived(reason=b"x")  # type: ignore[arg-type]


# ---- every state x input (the transition table is the truth) -------------------

LOCAL_CALLS = {
    Input.SEND_DATA: lambda c: c.send_data(b"x"),
    Input.SEND_EOF: lambda c: c.send_eof(),
    Input.CONSUMED: lambda c: c.consumed(0),
    Input.DATA: lambda c: c.receive_frame(b"\x00x"),
    Input.EOF: lambda c: c.receive_frame(b"\x01"),
    Input.CREDIT: lambda c: c.receive_frame(credit(1)),
    Input.RESET: lambda c: c.receive_frame(b"\x03"),
    Input.PROTOCOL_ERROR: lambda c: c.receive_frame(b"\x09"),
    Input.RESET_SENT: lambda c: c.reset(),
}
DRIVES = {
    Input.SEND_DATA: {Side.SEND},
    Input.SEND_EOF: {Side.SEND},
    Input.CREDIT: {Side.SEND},
    Input.DATA: {Side.RECEIVE},
    Input.EOF: {Side.RECEIVE},
    Input.CONSUMED: {Side.RECEIVE},
    Input.RESET: {Side.SEND, Side.RECEIVE},
    Input.RESET_SENT: {Side.SEND, Side.RECEIVE},
    Input.PROTOCOL_ERROR: {Side.SEND, Side.RECEIVE},
}
REACH = {
    (Side.SEND, StreamState.OPEN): lambda c: None,
    (Side.SEND, StreamState.EOF_SENT): lambda c: c.send_eof(),
    (Side.SEND, StreamState.ERROR): lambda c: c.reset(),
    (Side.RECEIVE, StreamState.OPEN): lambda c: None,
    (Side.RECEIVE, StreamState.EOF_RECEIVED): lambda c: c.receive_frame(b"\x01"),
    (Side.RECEIVE, StreamState.ERROR): lambda c: c.reset(),
}


def test_every_input_is_exercised() -> None:
    assert set(LOCAL_CALLS) == set(Input) == set(DRIVES)
    assert {(side, state) for side, state, _ in TRANSITIONS} <= set(REACH)


@pytest.mark.parametrize(("side", "state"), list(REACH))
@pytest.mark.parametrize("event", list(Input))
def test_state_by_input(side: Side, state: StreamState, event: Input) -> None:
    conn = StreamConnection(receive_window=100)
    conn.send_data(b"x" * 10)  # spend some credit so that a CREDIT of 1 is legal
    REACH[side, state](conn)
    state_of = {Side.SEND: lambda: conn.send_state, Side.RECEIVE: lambda: conn.receive_state}
    assert state_of[side]() is state
    if side not in DRIVES[event]:
        return
    if event is Input.RESET_SENT:  # documented as valid in any state
        LOCAL_CALLS[event](conn)
        assert state_of[side]() is StreamState.ERROR
        return
    target = TRANSITIONS.get((side, state, event))
    if target is not None and event is Input.PROTOCOL_ERROR:
        with pytest.raises(RemoteProtocolError):
            LOCAL_CALLS[event](conn)
        assert state_of[side]() is StreamState.ERROR
    elif target is not None:
        LOCAL_CALLS[event](conn)
        assert state_of[side]() is target
    elif state is StreamState.ERROR or event not in {
        Input.DATA,
        Input.EOF,
        Input.CREDIT,
        Input.RESET,
        Input.PROTOCOL_ERROR,
    }:
        with pytest.raises(LocalProtocolError):
            LOCAL_CALLS[event](conn)
        assert state_of[side]() is state
    else:
        with pytest.raises(RemoteProtocolError):
            LOCAL_CALLS[event](conn)
        assert state_of[side]() is StreamState.ERROR


def test_render_mermaid_shows_every_transition() -> None:
    text = render_mermaid()
    assert text.startswith("stateDiagram-v2\n")
    for (side, state, event), target in TRANSITIONS.items():
        arrow = f"{side.value}_{state.value} --> {side.value}_{target.value}: "
        line = next(line for line in text.splitlines() if arrow in line)
        assert event.value in line.split(": ", 1)[1].split(", ")


# ---- fuzz: garbage is a RemoteProtocolError, never anything else -------------------

frames = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda t, p: bytes([t]) + p, st.integers(0, 5), st.binary(max_size=40)),
    st.builds(credit, st.integers(0, 2**32 - 1)),
)


@settings(max_examples=500)
@given(st.lists(frames, max_size=30), st.booleans())
def test_garbage_raises_remote_protocol_error_only(messages: list[bytes], sent: bool) -> None:
    conn = StreamConnection(max_message_size=32, receive_window=64)
    if sent:
        conn.send_data(b"x" * 100)
    for message in messages:
        try:
            events = conn.receive_frame(message)
        except RemoteProtocolError:
            assert conn.receive_state is StreamState.ERROR
            assert conn.reset("bye")[0][0] == FrameType.RESET
            return
        assert len(events) == 1
        assert conn.unconsumed_bytes <= 64
        if isinstance(events[0], DataReceived):
            conn.consumed(len(events[0].data))
        if isinstance(events[0], ResetReceived):
            return


# ---- two connections wired together, random interleavings -------------------------


class WiredPair(RuleBasedStateMachine):
    """Two StreamConnections joined by two in-order wires; the app reads at random."""

    @initialize(
        window=st.integers(1, 300),
        max_message_size=st.integers(5, 64),
        threshold_fraction=st.floats(0.01, 1.0),
    )
    def setup(self, window: int, max_message_size: int, threshold_fraction: float) -> None:
        self.window = window
        threshold = max(1, min(window, int(window * threshold_fraction)))
        self.conns = [
            StreamConnection(
                max_message_size=max_message_size,
                receive_window=window,
                grant_threshold=threshold,
            )
            for _ in range(2)
        ]
        self.wires: list[deque[bytes]] = [deque(), deque()]  # wires[i]: frames from i
        self.sent = [bytearray(), bytearray()]  # what app i asked to send
        self.buffered = [bytearray(), bytearray()]  # delivered to i, not yet consumed
        self.consumed = [bytearray(), bytearray()]  # consumed by app i
        self.eof_sent = [False, False]
        self.eof_received = [False, False]

    def _deliver(self, sender: int) -> None:
        receiver = 1 - sender
        frame = self.wires[sender].popleft()
        assert len(frame) <= self.conns[sender].max_message_size
        for event in self.conns[receiver].receive_frame(frame):
            if isinstance(event, DataReceived):
                self.buffered[receiver] += event.data
            elif isinstance(event, EofReceived):
                self.eof_received[receiver] = True
            elif isinstance(event, CreditGranted):
                self.wires[receiver].extend(self.conns[receiver].flush())
            else:  # pragma: no cover - nobody resets here
                raise AssertionError(event)

    @rule(end=st.integers(0, 1), data=st.binary(max_size=200))
    def send(self, end: int, data: bytes) -> None:
        if self.eof_sent[end]:
            with pytest.raises(LocalProtocolError):
                self.conns[end].send_data(data)
            return
        self.wires[end].extend(self.conns[end].send_data(data))
        self.sent[end] += data

    @rule(end=st.integers(0, 1))
    def send_eof(self, end: int) -> None:
        self.wires[end].extend(self.conns[end].send_eof())
        self.eof_sent[end] = True

    @precondition(lambda self: self.wires[0] or self.wires[1])
    @rule(end=st.integers(0, 1), count=st.integers(1, 10))
    def deliver(self, end: int, count: int) -> None:
        for _ in range(count):
            if not self.wires[end]:
                end = 1 - end
            if not self.wires[end]:
                return
            self._deliver(end)

    @rule(end=st.integers(0, 1), n=st.integers(0, 300))
    def consume(self, end: int, n: int) -> None:
        n = min(n, len(self.buffered[end]))
        self.consumed[end] += self.buffered[end][:n]
        del self.buffered[end][:n]
        self.wires[end].extend(self.conns[end].consumed(n))

    @invariant()
    def bytes_arrive_in_order_within_the_window(self) -> None:
        if not hasattr(self, "conns"):
            return
        for receiver in (0, 1):
            sender = 1 - receiver
            got = self.consumed[receiver] + self.buffered[receiver]
            assert self.sent[sender][: len(got)] == got
            assert self.conns[receiver].unconsumed_bytes == len(self.buffered[receiver])
            assert len(self.buffered[receiver]) <= self.window
            on_wire = len(self.sent[sender]) - self.conns[sender].pending_bytes
            in_flight = on_wire - len(self.consumed[receiver])
            assert 0 <= in_flight <= self.window
            assert self.conns[sender].send_credit >= 0

    def teardown(self) -> None:
        if not hasattr(self, "conns"):
            return
        # Drain: deliver everything, read everything, until nothing moves.
        for _ in range(10_000):
            if self.wires[0] or self.wires[1]:
                self.deliver(0, 10)
            elif self.buffered[0] or self.buffered[1]:
                self.consume(0, 300)
                self.consume(1, 300)
            else:
                break
        for receiver in (0, 1):
            sender = 1 - receiver
            assert self.consumed[receiver] == self.sent[sender]
            assert self.conns[sender].pending_bytes == 0
            assert self.eof_received[receiver] == self.eof_sent[sender]
            assert self.conns[receiver].receive_state is (
                StreamState.EOF_RECEIVED if self.eof_sent[sender] else StreamState.OPEN
            )


WiredPair.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_wired_pair = WiredPair.TestCase
