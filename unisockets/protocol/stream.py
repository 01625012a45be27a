"""Byte-stream framing with credit-based flow control over a message pipe (sans-IO).

Each connection between two nodes is one *message pipe* (one WebRTC data
channel, one in-memory pipe): reliable, ordered, message-preserving, with
messages of at most ``max_message_size`` bytes. This module turns such a pipe
into a TCP-like byte stream with an end-of-stream marker and receive-side flow
control. It is our data-plane wire (docs/protocol.md, "The data plane").
It never touches the pipe: the driver (:mod:`unisockets.transport.stream`)
writes the frames this module returns and feeds it the messages it reads.

Frame format
------------

Every pipe message is exactly one frame: a 1-byte type, then the payload::

    +----------+--------------------------------+
    | type (1) | payload (0..max_message_size-1) |
    +----------+--------------------------------+

========  ======  ==============================================================
type      name    payload
========  ======  ==============================================================
``0x00``  DATA    1..``max_message_size - 1`` bytes of stream data.
``0x01``  EOF     empty. The sender sends no more DATA (half-close, like TCP FIN).
``0x02``  CREDIT  4 bytes, unsigned big-endian, 1..2**32-1: the receiver consumed
                  that many more bytes, so the sender may send that many more.
``0x03``  RESET   0..``max_message_size - 1`` bytes of UTF-8 reason (diagnostic,
                  decoded leniently). Abort: the connection failed; the receiver
                  discards what it buffered (like TCP RST).
========  ======  ==============================================================

Any other type, an empty message, a DATA without payload, an EOF or CREDIT with
the wrong payload length is malformed: :class:`RemoteProtocolError`.

Flow control
------------

Each direction has a *window* ``W`` that both ends must configure alike
(:data:`DEFAULT_WINDOW`, 256 KiB, unless both sides are told otherwise). The
sender starts with ``W`` bytes of credit and spends one per DATA payload
byte; the receiver grants credit back with CREDIT frames as the application
consumes bytes (:meth:`StreamConnection.consumed`), in batches of at least
``grant_threshold`` bytes (``W // 2`` by default) so that credit costs one
small frame per half window. The receiver's invariant, checked on every DATA:
bytes buffered + bytes consumed but not yet granted + credit the peer still
holds = ``W``. So a receiver never buffers more than ``W`` bytes, and a peer
that sends beyond its credit, or grants more credit than the window allows,
is a :class:`RemoteProtocolError`. Bytes the application asks to send beyond
the current credit wait inside :class:`StreamConnection` until credit arrives
(:meth:`StreamConnection.flush`).

States
------

Each direction is its own state machine; the transitions live in
:data:`TRANSITIONS` (rendered by :func:`render_mermaid`). The send side goes
``OPEN -> EOF_SENT`` on :meth:`~StreamConnection.send_eof`, the receive side
``OPEN -> EOF_RECEIVED`` on an EOF frame. A RESET sent or received, or a
protocol violation by the peer, moves both sides to ``ERROR``, after which
every method except :meth:`~StreamConnection.reset` raises
:class:`LocalProtocolError`. (Unlike the signaling machines, whose state is
unchanged by a :class:`RemoteProtocolError`, a byte stream cannot resynchronise
after a bad frame, so the connection is dead.)
"""

from __future__ import annotations

import enum
import operator
from dataclasses import dataclass
from typing import Final

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_WINDOW",
    "MAX_CREDIT",
    "MIN_MESSAGE_SIZE",
    "TRANSITIONS",
    "CreditGranted",
    "DataReceived",
    "EofReceived",
    "FrameType",
    "Input",
    "ResetReceived",
    "Side",
    "StreamConnection",
    "StreamEvent",
    "StreamState",
    "check_max_bytes",
    "render_mermaid",
]

#: The window each direction starts with, in bytes (both ends must agree).
DEFAULT_WINDOW: Final = 256 * 1024
#: The default largest pipe message, in bytes: a 64 KiB DATA payload and its 1-byte
#: header, so that writes of 16 or 64 KiB each leave as one message. WebRTC stacks
#: advertise what they take in the SDP (``a=max-message-size``, RFC 8841 §6): aiortc
#: and Chromium 262,144 bytes, Firefox more, so this fits every data channel we open.
DEFAULT_MAX_MESSAGE_SIZE: Final = 64 * 1024 + 1
#: The smallest usable pipe message, in bytes: a CREDIT frame (1 + 4 bytes).
MIN_MESSAGE_SIZE: Final = 5
#: The largest CREDIT amount and the largest window, in bytes (unsigned 32 bits).
MAX_CREDIT: Final = 2**32 - 1


def check_max_bytes(max_bytes: int | None) -> int | None:
    """Validate the ``max_bytes`` of a ``receive_some`` call (trio's ``ReceiveStream``).

    Every byte stream the drivers offer (:class:`~unisockets.transport.stream.PipeStream`,
    the legacy stream, the browser's streams) takes it the same way.

    Args:
        max_bytes: ``None`` (the stream's default size) or an integer >= 1.

    Returns:
        ``max_bytes`` as an ``int``, or ``None``.

    Raises:
        ValueError: ``max_bytes`` < 1.
        TypeError: ``max_bytes`` is not an integer (``operator.index`` fails).
    """
    if max_bytes is None:
        return None
    value = operator.index(max_bytes)  # also rejects floats and strings at run time
    if value < 1:
        raise ValueError("max_bytes must be >= 1")
    return value


class FrameType(enum.IntEnum):
    """The 1-byte type header of a frame (see the module docstring)."""

    DATA = 0x00
    EOF = 0x01
    CREDIT = 0x02
    RESET = 0x03


class _FastEnum(enum.Enum):
    """An enum hashed by identity (its members are singletons).

    ``enum.Enum.__hash__`` is Python code, and every frame looks its states up
    in :data:`TRANSITIONS` (a few hashes per frame).
    """

    __hash__ = object.__hash__


class Side(_FastEnum):
    """The two independent state machines of a connection."""

    SEND = "send"
    RECEIVE = "receive"


class StreamState(_FastEnum):
    """The state of one side of a connection."""

    OPEN = "OPEN"
    EOF_SENT = "EOF_SENT"
    EOF_RECEIVED = "EOF_RECEIVED"
    ERROR = "ERROR"


class Input(_FastEnum):
    """Everything that can change a side's state: local calls and remote frames."""

    SEND_DATA = "send_data"  # local: send_data()
    SEND_EOF = "send_eof"  # local: send_eof()
    CONSUMED = "consumed"  # local: consumed()
    RESET_SENT = "reset"  # local: reset()
    DATA = "DATA"  # remote frame
    EOF = "EOF"  # remote frame
    CREDIT = "CREDIT"  # remote frame
    RESET = "RESET"  # remote frame
    PROTOCOL_ERROR = "protocol error"  # remote: a malformed or illegal frame


#: The inputs that come from the peer (an illegal one is the peer's fault).
REMOTE_INPUTS: Final = frozenset(
    {Input.DATA, Input.EOF, Input.CREDIT, Input.RESET, Input.PROTOCOL_ERROR}
)

_FATAL: Final = (Input.RESET_SENT, Input.RESET, Input.PROTOCOL_ERROR)

#: Every legal transition: ``(side, state, input) -> new state``. A pair that is
#: missing is illegal: :class:`LocalProtocolError` for a local input,
#: :class:`RemoteProtocolError` (and ``ERROR``) for a remote one.
TRANSITIONS: Final[dict[tuple[Side, StreamState, Input], StreamState]] = {
    (Side.SEND, StreamState.OPEN, Input.SEND_DATA): StreamState.OPEN,
    (Side.SEND, StreamState.OPEN, Input.CREDIT): StreamState.OPEN,
    (Side.SEND, StreamState.OPEN, Input.SEND_EOF): StreamState.EOF_SENT,
    (Side.SEND, StreamState.EOF_SENT, Input.SEND_EOF): StreamState.EOF_SENT,
    (Side.SEND, StreamState.EOF_SENT, Input.CREDIT): StreamState.EOF_SENT,
    (Side.RECEIVE, StreamState.OPEN, Input.DATA): StreamState.OPEN,
    (Side.RECEIVE, StreamState.OPEN, Input.CONSUMED): StreamState.OPEN,
    (Side.RECEIVE, StreamState.OPEN, Input.EOF): StreamState.EOF_RECEIVED,
    (Side.RECEIVE, StreamState.EOF_RECEIVED, Input.CONSUMED): StreamState.EOF_RECEIVED,
    **{
        (side, state, fatal): StreamState.ERROR
        for side, states in (
            (Side.SEND, (StreamState.OPEN, StreamState.EOF_SENT)),
            (Side.RECEIVE, (StreamState.OPEN, StreamState.EOF_RECEIVED)),
        )
        for state in states
        for fatal in _FATAL
    },
}

#: Which side's machine an input drives (the fatal inputs drive both).
_SIDES_OF: Final[dict[Input, tuple[Side, ...]]] = {
    Input.SEND_DATA: (Side.SEND,),
    Input.SEND_EOF: (Side.SEND,),
    Input.CREDIT: (Side.SEND,),
    Input.DATA: (Side.RECEIVE,),
    Input.EOF: (Side.RECEIVE,),
    Input.CONSUMED: (Side.RECEIVE,),
    **{fatal: (Side.SEND, Side.RECEIVE) for fatal in _FATAL},
}


def render_mermaid() -> str:
    """Render :data:`TRANSITIONS` as a Mermaid ``stateDiagram-v2`` for the docs.

    Returns:
        The diagram source: one composite state per side, one arrow per
        (from, to) pair labelled with every input that takes it.
    """
    lines = ["stateDiagram-v2"]
    for side in Side:
        prefix = side.value
        lines.append(f"    state {prefix} {{")
        arrows: dict[tuple[StreamState, StreamState], list[str]] = {}
        states: list[StreamState] = []
        for (s, state, event), new in TRANSITIONS.items():
            if s is not side:
                continue
            arrows.setdefault((state, new), []).append(event.value)
            for st in (state, new):
                if st not in states:
                    states.append(st)
        for st in states:
            lines.append(f"        {prefix}_{st.value}: {st.value}")
        lines.append(f"        [*] --> {prefix}_{StreamState.OPEN.value}")
        for (src, dst), labels in arrows.items():
            lines.append(
                f"        {prefix}_{src.value} --> {prefix}_{dst.value}: {', '.join(labels)}"
            )
        lines.append("    }")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReceived:
    """The peer sent stream bytes (1..``max_message_size - 1`` of them).

    Attributes:
        data: the bytes, in stream order; the application must report them
            with :meth:`StreamConnection.consumed` once it has read them.
    """

    data: bytes

    def __post_init__(self) -> None:
        if type(self.data) is not bytes or not self.data:
            raise LocalProtocolError("DataReceived.data must be non-empty bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class EofReceived:
    """The peer half-closed: it sends no more data (the stream reads ``b""`` next)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditGranted:
    """The peer consumed ``amount`` bytes: we may send that many more.

    Attributes:
        amount: bytes of new credit, 1..:data:`MAX_CREDIT`. Call
            :meth:`StreamConnection.flush` for the frames it released.
    """

    amount: int

    def __post_init__(self) -> None:
        if type(self.amount) is not int or not 0 < self.amount <= MAX_CREDIT:
            raise LocalProtocolError(f"CreditGranted.amount must be 1..{MAX_CREDIT}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetReceived:
    """The peer aborted the connection (the connection is now in ``ERROR``).

    Attributes:
        reason: the peer's diagnostic text (possibly empty).
    """

    reason: str

    def __post_init__(self) -> None:
        if type(self.reason) is not str:
            raise LocalProtocolError("ResetReceived.reason must be a string")


StreamEvent = DataReceived | EofReceived | CreditGranted | ResetReceived

_CREDIT_HEADER: Final = bytes([FrameType.CREDIT])
#: The payload types whose ``len()`` is their size in bytes (the send fast path's).
_BYTES_TYPES: Final = frozenset({bytes, bytearray})
#: A :class:`DataReceived` without its ``__init__`` (the receive fast path checked it).
_new_event: Final = object.__new__
_set_field: Final = object.__setattr__
# The hot paths' enum members as module globals (a class attribute of an enum costs a
# few times a global's lookup).
_SEND: Final = Side.SEND
_RECEIVE: Final = Side.RECEIVE
_OPEN: Final = StreamState.OPEN
_EOF_RECEIVED: Final = StreamState.EOF_RECEIVED
_ERROR: Final = StreamState.ERROR
_DATA: Final = int(FrameType.DATA)
_DATA_HEADER: Final = bytes([FrameType.DATA])
_EOF_FRAME: Final = bytes([FrameType.EOF])


class StreamConnection:
    """One end of a framed, flow-controlled byte stream over a message pipe.

    Like h11's ``Connection``: it holds state and returns what to do, the
    caller does the I/O. Methods that make frames return them as a list of
    pipe messages, to be written in order.

    Args:
        max_message_size: the pipe's largest message in bytes, at least
            :data:`MIN_MESSAGE_SIZE`; DATA payloads are one byte less.
        receive_window: bytes the peer may have in flight to us (sent but not
            consumed), 1..:data:`MAX_CREDIT`; also the most we ever buffer.
        send_window: the peer's ``receive_window``, i.e. our initial credit;
            defaults to ``receive_window`` (both ends must agree).
        grant_threshold: consumed bytes to collect before sending a CREDIT,
            1..``receive_window``; defaults to ``receive_window // 2``.

    Raises:
        ValueError: an argument is out of range.
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        receive_window: int = DEFAULT_WINDOW,
        send_window: int | None = None,
        grant_threshold: int | None = None,
    ) -> None:
        if send_window is None:
            send_window = receive_window
        if grant_threshold is None:
            grant_threshold = max(1, receive_window // 2)
        for name, value, low, high in (
            ("max_message_size", max_message_size, MIN_MESSAGE_SIZE, None),
            ("receive_window", receive_window, 1, MAX_CREDIT),
            ("send_window", send_window, 1, MAX_CREDIT),
            ("grant_threshold", grant_threshold, 1, receive_window),
        ):
            if type(value) is not int or value < low or (high is not None and value > high):
                raise ValueError(f"{name} must be an int in {low}..{high or 'inf'}, got {value!r}")
        self.max_message_size = max_message_size
        self.receive_window = receive_window
        self.send_window = send_window
        self.grant_threshold = grant_threshold
        self._states = {Side.SEND: StreamState.OPEN, Side.RECEIVE: StreamState.OPEN}
        # send side
        self._credit = send_window
        self._pending = bytearray()
        self._eof_pending = False
        # receive side
        self._unconsumed = 0
        self._ungranted = 0
        self._reset_sent = False
        self._reset_received = False

    # ---- state ---------------------------------------------------------------

    @property
    def send_state(self) -> StreamState:
        """The send side's state: ``OPEN``, ``EOF_SENT`` or ``ERROR``."""
        return self._states[_SEND]

    @property
    def receive_state(self) -> StreamState:
        """The receive side's state: ``OPEN``, ``EOF_RECEIVED`` or ``ERROR``."""
        return self._states[_RECEIVE]

    @property
    def send_credit(self) -> int:
        """Bytes we may send now without waiting for a CREDIT."""
        return self._credit

    @property
    def pending_bytes(self) -> int:
        """Bytes accepted by :meth:`send_data` and still waiting for credit."""
        return len(self._pending)

    @property
    def eof_pending(self) -> bool:
        """True when :meth:`send_eof` was called and the EOF frame waits behind pending data."""
        return self._eof_pending

    @property
    def unconsumed_bytes(self) -> int:
        """Bytes received in DATA frames and not yet reported by :meth:`consumed`."""
        return self._unconsumed

    @property
    def peer_credit(self) -> int:
        """Bytes the peer may still send us before it needs a CREDIT."""
        return self.receive_window - self._unconsumed - self._ungranted

    @property
    def max_payload(self) -> int:
        """The largest DATA payload in bytes (``max_message_size - 1``)."""
        return self.max_message_size - 1

    def _transition(self, event: Input) -> None:
        """Apply ``event`` to the sides it drives, or raise without changing anything."""
        sides = _SIDES_OF[event]
        new = {}
        for side in sides:
            state = self._states[side]
            target = TRANSITIONS.get((side, state, event))
            if target is None:
                if event in REMOTE_INPUTS and state is not StreamState.ERROR:
                    self._fail()
                    raise RemoteProtocolError(
                        f"peer sent {event.value} while our {side.value} side is {state.value}"
                    )
                raise LocalProtocolError(
                    f"cannot {event.value} while the {side.value} side is {state.value}"
                )
            new[side] = target
        self._states.update(new)

    def _fail(self) -> None:
        self._states = {Side.SEND: StreamState.ERROR, Side.RECEIVE: StreamState.ERROR}
        self._pending.clear()
        self._eof_pending = False

    def _remote_error(self, message: str) -> RemoteProtocolError:
        """Enter ERROR for a peer's violation and return the error to raise."""
        self._transition(Input.PROTOCOL_ERROR)
        self._fail()
        return RemoteProtocolError(message)

    # ---- sending -------------------------------------------------------------

    def send_data(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Queue ``data`` for sending and return the frames the credit allows now.

        Args:
            data: stream bytes (may be empty: nothing happens).

        Returns:
            DATA frames to write in order; bytes beyond the credit stay queued
            (:attr:`pending_bytes`) until :meth:`flush` after a :class:`CreditGranted`.

        Raises:
            LocalProtocolError: EOF was sent or the connection is in ``ERROR``.
            TypeError: ``data`` is not bytes-like.
        """
        if self._states[_SEND] is not _OPEN:
            self._transition(Input.SEND_DATA)  # raises: EOF sent or ERROR
        n = len(data)
        if (
            not self._pending
            and 0 < n <= self._credit
            and n < self.max_message_size
            and type(data) in _BYTES_TYPES  # len() counts bytes (not a memoryview's items)
        ):
            # The common case (data fits the credit and one frame): one frame, no queue.
            self._credit -= n
            return [_DATA_HEADER + data]
        self._pending += data
        return self.flush()

    def send_eof(self) -> list[bytes]:
        """Half-close: queue an EOF frame after any pending data.

        Idempotent: a second call returns no frames.

        Returns:
            The frames to write now (the EOF frame once no data is pending).

        Raises:
            LocalProtocolError: the connection is in ``ERROR``.
        """
        if self.send_state is StreamState.EOF_SENT:
            self._transition(Input.SEND_EOF)
            return []
        self._transition(Input.SEND_EOF)
        self._eof_pending = True
        return self.flush()

    def flush(self) -> list[bytes]:
        """Return the frames that current credit allows: pending DATA, then a pending EOF.

        Returns:
            Frames to write in order (possibly none).

        Raises:
            LocalProtocolError: the connection is in ``ERROR``.
        """
        if self.send_state is StreamState.ERROR:
            raise LocalProtocolError("cannot flush: the connection is in ERROR")
        frames: list[bytes] = []
        size = self.max_payload
        while self._pending and self._credit:
            n = min(size, self._credit, len(self._pending))
            frames.append(_DATA_HEADER + self._pending[:n])
            del self._pending[:n]
            self._credit -= n
        if self._eof_pending and not self._pending:
            self._eof_pending = False
            frames.append(_EOF_FRAME)
        return frames

    def reset(self, reason: str = "") -> list[bytes]:
        """Abort the connection: enter ``ERROR`` and return a RESET frame for the peer.

        Valid in any state. Pending data is dropped. Returns no frame when a
        RESET was already sent or received (the peer needs no second one).

        Args:
            reason: diagnostic text, truncated to fit one frame.

        Returns:
            ``[RESET frame]`` or ``[]``.
        """
        if self._reset_sent or self._reset_received:
            return []
        if self.send_state is not StreamState.ERROR:
            self._transition(Input.RESET_SENT)
        self._fail()
        self._reset_sent = True
        payload = reason.encode("utf-8", "replace")[: self.max_payload]
        return [bytes([FrameType.RESET]) + payload]

    # ---- receiving -----------------------------------------------------------

    def receive_frame(self, frame: bytes | bytearray | memoryview) -> list[StreamEvent]:
        """Process one message read from the pipe.

        Args:
            frame: the message, exactly as read.

        Returns:
            The events it carried (one per frame today).

        Raises:
            RemoteProtocolError: the frame is malformed or illegal (unknown
                type, bad length, DATA beyond the credit or after EOF, credit
                beyond the window); the connection is now in ``ERROR`` and the
                driver should send :meth:`reset` and close the pipe.
            LocalProtocolError: the connection was already in ``ERROR``.
        """
        states = self._states
        receive_state = states[_RECEIVE]
        if (
            receive_state is _OPEN
            and type(frame) is bytes
            and frame
            and frame[0] == _DATA
            and states[_SEND] is not _ERROR
        ):
            # The common case, a DATA frame on an open stream (the same checks as below,
            # without a memoryview and a transition).
            n = len(frame) - 1
            if n > 0 and n < self.max_message_size:
                credit = self.receive_window - self._unconsumed - self._ungranted
                if n > credit:
                    raise self._remote_error(
                        f"peer exceeded its credit: sent {n} bytes with {credit} left"
                    )
                self._unconsumed += n
                event = _new_event(DataReceived)  # validated here: no __post_init__ call
                _set_field(event, "data", frame[1:])
                return [event]
        if receive_state is _ERROR or states[_SEND] is _ERROR:
            raise LocalProtocolError("cannot receive: the connection is in ERROR")
        view = memoryview(frame)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        if not view:
            raise self._remote_error("empty frame")
        if len(view) > self.max_message_size:
            raise self._remote_error(
                f"frame of {len(view)} bytes exceeds max_message_size {self.max_message_size}"
            )
        kind, payload = view[0], view[1:]
        if kind == FrameType.DATA:
            return self._receive_data(payload)
        if kind == FrameType.EOF:
            if payload:
                raise self._remote_error(f"EOF frame with {len(payload)} bytes of payload")
            self._transition(Input.EOF)
            return [EofReceived()]
        if kind == FrameType.CREDIT:
            return self._receive_credit(payload)
        if kind == FrameType.RESET:
            reason = bytes(payload).decode("utf-8", "replace")
            self._transition(Input.RESET)
            self._fail()
            self._reset_received = True
            return [ResetReceived(reason=reason)]
        raise self._remote_error(f"unknown frame type 0x{kind:02x}")

    def _receive_data(self, payload: memoryview) -> list[StreamEvent]:
        if not payload:
            raise self._remote_error("DATA frame without payload")
        self._transition(Input.DATA)
        credit = self.peer_credit
        if len(payload) > credit:
            raise self._remote_error(
                f"peer exceeded its credit: sent {len(payload)} bytes with {credit} left"
            )
        self._unconsumed += len(payload)
        return [DataReceived(data=bytes(payload))]

    def _receive_credit(self, payload: memoryview) -> list[StreamEvent]:
        if len(payload) != 4:
            raise self._remote_error(f"CREDIT frame with {len(payload)} payload bytes, not 4")
        amount = int.from_bytes(payload, "big")
        if amount == 0:
            raise self._remote_error("CREDIT of 0 bytes")
        self._transition(Input.CREDIT)
        if self._credit + amount > self.send_window:
            raise self._remote_error(
                f"peer granted {amount} bytes, beyond the window of {self.send_window}"
                f" ({self._credit} bytes of credit unused)"
            )
        self._credit += amount
        return [CreditGranted(amount=amount)]

    def consumed(self, n: int) -> list[bytes]:
        """Report that the application consumed ``n`` received bytes.

        Args:
            n: bytes, 0..:attr:`unconsumed_bytes`.

        Returns:
            ``[CREDIT frame]`` when at least ``grant_threshold`` bytes await a
            grant and the peer may still send (no EOF received), else ``[]``.

        Raises:
            LocalProtocolError: ``n`` is out of range or the connection is in ``ERROR``.
        """
        if type(n) is not int or not 0 <= n <= self._unconsumed:
            raise LocalProtocolError(f"consumed({n!r}) with {self._unconsumed} bytes unconsumed")
        state = self._states[_RECEIVE]
        if state is not _OPEN and state is not _EOF_RECEIVED:
            self._transition(Input.CONSUMED)  # raises: the connection is in ERROR
        self._unconsumed -= n
        self._ungranted += n
        if state is _OPEN and self._ungranted >= self.grant_threshold:
            amount, self._ungranted = self._ungranted, 0
            return [_CREDIT_HEADER + amount.to_bytes(4, "big")]
        return []

    def __repr__(self) -> str:
        return (
            f"<StreamConnection send={self.send_state.value} credit={self._credit}"
            f" pending={len(self._pending)} receive={self.receive_state.value}"
            f" unconsumed={self._unconsumed} peer_credit={self.peer_credit}>"
        )
