"""The stream connection's fast paths behave exactly as its general paths.

:class:`StreamConnection` takes shortcuts for the data plane's common cases
(``send_data`` of ``bytes`` that fit the credit and one frame, a DATA frame
as ``bytes`` on an open stream, ``consumed`` on a live stream). A
``memoryview`` to send and a ``bytearray`` frame never take them, so two
connections fed the same operations, one with ``bytes`` and one with those
types, must return the same frames, events and errors, and end in the same
state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from unisockets.protocol.errors import LocalProtocolError, RemoteProtocolError
from unisockets.protocol.stream import FrameType, StreamConnection

WINDOW = 64
MAX_MESSAGE = 16


def _frame() -> st.SearchStrategy[bytes]:
    data = st.binary(min_size=0, max_size=MAX_MESSAGE + 2).map(
        lambda b: bytes([FrameType.DATA]) + b
    )
    credit = st.integers(0, 2 * WINDOW).map(
        lambda n: bytes([FrameType.CREDIT]) + n.to_bytes(4, "big")
    )
    other = st.sampled_from([b"\x01", b"\x03why", b"\x07", b"", b"\x01x"])
    return st.one_of(data, data, credit, other)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.binary(max_size=3 * MAX_MESSAGE)),
        st.tuples(st.just("receive"), _frame()),
        st.tuples(st.just("consumed"), st.integers(0, WINDOW)),
        st.tuples(st.just("eof"), st.none()),
        st.tuples(st.just("reset"), st.none()),
    ),
    max_size=40,
)


def _apply(conn: StreamConnection, op: str, arg: Any, *, general: bool) -> object:
    try:
        if op == "send":
            return conn.send_data(memoryview(arg) if general else arg)
        if op == "receive":
            return conn.receive_frame(bytearray(arg) if general else arg)
        if op == "consumed":
            return conn.consumed(min(arg, conn.unconsumed_bytes))
        if op == "eof":
            return conn.send_eof()
        return conn.reset("r")
    except (LocalProtocolError, RemoteProtocolError) as exc:
        return (type(exc), str(exc))


def _state(conn: StreamConnection) -> tuple[object, ...]:
    return (
        conn.send_state,
        conn.receive_state,
        conn.send_credit,
        conn.pending_bytes,
        conn.eof_pending,
        conn.unconsumed_bytes,
        conn.peer_credit,
    )


@settings(max_examples=300, deadline=None)
@given(operations)
def test_fast_paths_match_the_general_paths(ops: list[tuple[str, Any]]) -> None:
    fast = StreamConnection(max_message_size=MAX_MESSAGE, receive_window=WINDOW)
    general = StreamConnection(max_message_size=MAX_MESSAGE, receive_window=WINDOW)
    for op, arg in ops:
        got = _apply(fast, op, arg, general=False)
        want = _apply(general, op, arg, general=True)
        assert got == want, (op, arg)
        assert _state(fast) == _state(general), (op, arg)


def test_fast_paths_are_taken_for_the_common_case() -> None:
    conn = StreamConnection()
    frames = conn.send_data(b"x" * 100)
    assert frames == [b"\x00" + b"x" * 100] and type(frames[0]) is bytes
    (event,) = conn.receive_frame(b"\x00abc")
    assert event.data == b"abc" and type(event.data) is bytes  # type: ignore[union-attr]
    assert conn.consumed(3) == []
    assert conn.unconsumed_bytes == 0
