"""Markdown for docs/protocol.md, generated from unisockets.protocol at build time.

Nothing here is written by hand that the code already knows:

- The opcode table and the per-opcode reference come from
  ``MESSAGE_TYPES`` and each message class's field metadata (``"wire"``,
  ``"kind"``, ``"optional"``) and docstring.
- Every example frame is real ``encode()`` output, taken from a recorded
  session: the sans-IO signaling server (``SignalingServerProtocol``) and two
  sans-IO clients (``SignalingClientProtocol``) driven against each other
  through the wire codec, as a driver would (:func:`record_session`). The
  same session gives the directions (a message is "server → node" because the
  server sent it) and the sequence diagrams.
- The state diagrams are the ``render_mermaid()`` output of the transition
  tables, with the tables themselves listed under them.
- The data-plane frames come from two ``StreamConnection`` objects talking.

Each public function returns Markdown; :mod:`unisockets_docs` (the mkdocs
hook) places it where a page says ``<!-- gen: NAME ARGS -->``.
"""

from __future__ import annotations

import dataclasses
import errno
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from unisockets.protocol import client_states, server_states, socket_options, socket_states
from unisockets.protocol import stream as stream_protocol
from unisockets.protocol.client import SignalingClientProtocol
from unisockets.protocol.events import (
    Event,
    IncomingConnection,
    OfferReceived,
    PeerGreeted,
)
from unisockets.protocol.messages import (
    MAX_CANDIDATE_LENGTH,
    MAX_CONNECTION_ID_LENGTH,
    MAX_SDP_LENGTH,
    MAX_TOKEN_LENGTH,
    MESSAGE_TYPES,
    Message,
)
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.server_states import ClientInput, StateMachine
from unisockets.protocol.wire import decode, encode

__all__ = [
    "PHASES",
    "Step",
    "data_plane_example",
    "frame_types",
    "message_reference",
    "opcode_table",
    "record_session",
    "sequence_diagram",
    "state_machine",
    "stream_state_machine",
]

#: The participants of the recorded session: driver key -> (mermaid id, label).
NODES: dict[str, str] = {"A": "node A", "B": "node B"}
SERVER = "server"

#: A short but well-formed SDP offer/answer for the examples (real ones are 0.5 to 5 KB).
EXAMPLE_SDP = (
    "v=0\r\no=- 3911111111 3911111111 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n..."
)
#: One ICE candidate as the JSON RTCIceCandidateInit string a ``candidate`` carries.
EXAMPLE_CANDIDATE = json.dumps(
    {
        "candidate": "candidate:1 1 UDP 2130706431 127.0.0.1 50000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "Yb3x",
    },
    separators=(",", ":"),
)
#: The ``clientConnectionId`` of the examples (nodes pick a random UUID v4).
EXAMPLE_CONNECTION_IDS = (
    "5f0c6d1e-8a43-4b8e-9d07-2c1f4a6b9e30",
    "0b7e3c55-1d2f-4e6a-8c90-7a3b5d1e2f48",
)

#: The phases of the recorded session, in order, with the title each diagram gets.
PHASES: dict[str, str] = {
    "join": "Join: A knocks, then B; the server greets A with B",
    "peer-link": "Peer link: offer, answer and candidates, relayed by the server",
    "bind": "Bind and listen: A binds 10.0.0.1:1234 and accepts on it",
    "connect": "Connect: B connects to 10.0.0.1:1234",
    "refused": "Refused connect: nobody accepts on 10.0.0.1:9999",
    "shutdown": "Shutdown: B releases its connection alias",
    "leave": "Leave: A's WebSocket closes",
}

#: What a field of each kind holds on the wire (keys: the ``kind`` metadata of messages.py).
KIND_TYPES: dict[str, str] = {
    "id": 'string: a node id, dotted IPv4 (`"10.0.0.3"`)',
    "subnet": 'string: three octets (`"10.0.0"`)',
    "alias": 'string: `"<id>:<port>"`, port 0..65535 (`"10.0.0.3:1234"`)',
    "bool": "boolean",
    "sdp": f"string: an SDP offer or answer, 1..{MAX_SDP_LENGTH} characters",
    "candidate": (
        "string: a JSON RTCIceCandidateInit (`candidate`, `sdpMid`, `sdpMLineIndex`, "
        f"`usernameFragment`), 1..{MAX_CANDIDATE_LENGTH} characters"
    ),
    "connection_id": f"string: 1..{MAX_CONNECTION_ID_LENGTH} characters (a UUID v4)",
    "rejoin_token": (
        f"string: 1..{MAX_TOKEN_LENGTH} characters, ours (see "
        "[Stable addresses](#stable-addresses))"
    ),
}


@dataclass(frozen=True)
class Step:
    """One message of the recorded session.

    Attributes:
        phase: a key of :data:`PHASES`.
        sender: ``"A"``, ``"B"`` or ``"server"``.
        recipient: likewise.
        frame: the WebSocket text frame, exactly as ``encode()`` wrote it.
    """

    phase: str
    sender: str
    recipient: str
    frame: str

    @property
    def message(self) -> Message:
        """The frame, decoded."""
        return decode(self.frame)


class _Session:
    """Drives one server and two clients through the wire codec, recording every frame."""

    def __init__(self) -> None:
        self.server: SignalingServerProtocol[str] = SignalingServerProtocol()
        self.clients = {key: SignalingClientProtocol(subnet="10.0.0") for key in NODES}
        self.steps: list[Step] = []
        self.phase = ""
        self._queue: deque[tuple[str, str, Message]] = deque()

    def run(self, phase: str, sender: str, messages: list[Message]) -> None:
        """Send ``messages`` from client ``sender`` and deliver everything that follows."""
        self.phase = phase
        self._queue.extend((sender, SERVER, message) for message in messages)
        self._drain()

    def disconnect(self, phase: str, key: str) -> None:
        """Close client ``key``'s WebSocket and deliver what the server sends the others."""
        self.phase = phase
        self.clients[key].connection_lost()
        self._queue.extend((SERVER, to, m) for to, m in self.server.client_disconnected(key))
        self._drain()

    def _drain(self) -> None:
        while self._queue:
            sender, recipient, message = self._queue.popleft()
            frame = encode(message)
            self.steps.append(Step(self.phase, sender, recipient, frame))
            if recipient == SERVER:
                outputs = self.server.receive_data(sender, frame)
                self._queue.extend((SERVER, to, out) for to, out in outputs)
            else:
                self._react(recipient, self.clients[recipient].receive_data(frame))

    def _react(self, key: str, events: list[Event]) -> None:
        """What a node's driver does with its events (only what the session needs)."""
        client = self.clients[key]
        for event in events:
            if isinstance(event, PeerGreeted):
                self._queue.append((key, SERVER, client.offer(event.peer_id, EXAMPLE_SDP)))
                self._queue.append(
                    (key, SERVER, client.candidate(event.peer_id, EXAMPLE_CANDIDATE))
                )
            elif isinstance(event, OfferReceived):
                self._queue.append((key, SERVER, client.answer(event.peer_id, EXAMPLE_SDP)))
            elif isinstance(event, IncomingConnection):
                self._queue.extend((key, SERVER, m) for m in client.accept(event.bound_alias))


@cache
def record_session() -> tuple[Step, ...]:
    """Run the example session of :data:`PHASES` and return its frames in order.

    Returns:
        Every frame sent, by whom and to whom, in sending order.

    Raises:
        RuntimeError: the session does not use every opcode of ``MESSAGE_TYPES``
            (the docs would lack an example).
    """
    session = _Session()
    a, b = session.clients["A"], session.clients["B"]
    for key in NODES:
        session.server.client_connected(key)
    session.run("join", "A", [a.knock()])
    session.run("join", "B", [b.knock()])
    # The greeting made A offer (see _react); split the relayed part into its own phase.
    steps = session.steps
    for index, step in enumerate(steps):
        if step.phase == "join" and step.message.OPCODE in ("offer", "answer", "candidate"):
            steps[index] = dataclasses.replace(step, phase="peer-link")
    session.run("peer-link", "B", [b.candidate("10.0.0.1", EXAMPLE_CANDIDATE)])
    _request, messages = a.bind("10.0.0.1:1234")
    session.run("bind", "A", messages)
    session.run("bind", "A", a.accept("10.0.0.1:1234"))
    _request, messages = b.connect("10.0.0.1:1234", EXAMPLE_CONNECTION_IDS[0])
    session.run("connect", "B", messages)
    _request, messages = b.connect("10.0.0.1:9999", EXAMPLE_CONNECTION_IDS[1])
    session.run("refused", "B", messages)
    (connection_alias,) = b.connection_aliases
    _request, messages = b.shutdown(connection_alias)
    session.run("shutdown", "B", messages)
    session.disconnect("leave", "A")
    missing = set(MESSAGE_TYPES) - {step.message.OPCODE for step in steps}
    if missing:
        raise RuntimeError(f"the example session never sends {sorted(missing)}")
    return tuple(steps)


def _directions() -> dict[str, str]:
    """Each opcode's direction: node → server if a client may send it (the server's
    client table lists it), server → node if the server sent it in the session."""
    from_nodes = {item.value for item in ClientInput}
    from_server = {step.message.OPCODE for step in record_session() if step.sender == SERVER}
    directions = {}
    for opcode in MESSAGE_TYPES:
        if opcode in from_nodes and opcode in from_server:
            directions[opcode] = "node → server → node (relayed)"
        elif opcode in from_nodes:
            directions[opcode] = "node → server"
        elif opcode in from_server:
            directions[opcode] = "server → node"
        else:  # pragma: no cover - record_session() checks every opcode is used
            raise RuntimeError(f"no direction known for {opcode}")
    return directions


def _summary(cls: type) -> str:
    """The first sentence of a class docstring, as Markdown (RST ``literals`` kept)."""
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


def _fields(cls: type) -> list[tuple[str, str, bool]]:
    """``(wire name, kind, optional)`` of a message class's fields, in wire order."""
    return [
        (f.metadata["wire"], f.metadata["kind"], bool(f.metadata.get("optional")))
        for f in dataclasses.fields(cls)
    ]


def _first_frames() -> dict[str, Step]:
    first: dict[str, Step] = {}
    for step in record_session():
        first.setdefault(step.message.OPCODE, step)
    return first


def opcode_table() -> str:
    """One row per opcode: direction and data fields (``?``: optional).

    Returns:
        A Markdown table with a link to each opcode's section below it.
    """
    directions = _directions()
    rows = ["| opcode | direction | data fields |", "| --- | --- | --- |"]
    for opcode, cls in MESSAGE_TYPES.items():
        fields = ", ".join(
            f"`{wire}`" + (" (optional)" if optional else "")
            for wire, _kind, optional in _fields(cls)
        )
        rows.append(f"| [`{opcode}`](#opcode-{opcode}) | {directions[opcode]} | {fields} |")
    return "\n".join(rows) + "\n"


def message_reference() -> str:
    """A section per opcode: meaning, direction, each field's JSON type, an example frame.

    Returns:
        Markdown with one ``### `opcode`` heading per message class.
    """
    directions = _directions()
    first = _first_frames()
    parts = []
    for opcode, cls in MESSAGE_TYPES.items():
        step = first[opcode]
        rows = ["| field | JSON type | Python attribute |", "| --- | --- | --- |"]
        for f in dataclasses.fields(cls):
            kind = f.metadata["kind"]
            if kind not in KIND_TYPES:
                raise RuntimeError(f"{cls.__name__}.{f.name}: no description of kind {kind!r}")
            optional = " (optional, omitted when absent)" if f.metadata.get("optional") else ""
            rows.append(f"| `{f.metadata['wire']}` | {KIND_TYPES[kind]}{optional} | `{f.name}` |")
        sender = "the server" if step.sender == SERVER else NODES[step.sender]
        recipient = "the server" if step.recipient == SERVER else NODES[step.recipient]
        parts.append(
            f"### `{opcode}` {{ #opcode-{opcode} }}\n\n"
            f"{_summary(cls)}\n\n"
            f"Direction: {directions[opcode]}. Class: "
            f"[`{cls.__name__}`][unisockets.protocol.messages.{cls.__name__}].\n\n"
            + "\n".join(rows)
            + f"\n\nExample ({sender} to {recipient}, phase “{step.phase}” of the session "
            "below), the exact text of the frame:\n\n"
            f"```json\n{step.frame}\n```\n"
        )
    return "\n".join(parts)


def _label(message: Message) -> str:
    """A short Mermaid-safe label: ``opcode(field=value, ...)``, long strings elided."""
    items = []
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if value is None:
            continue
        if f.metadata["kind"] in ("sdp", "candidate"):
            text = "(SDP)" if f.metadata["kind"] == "sdp" else "(candidate JSON)"
        elif f.metadata["kind"] in ("connection_id", "rejoin_token"):
            text = value[:8] + "…"
        else:
            text = json.dumps(value).strip('"')
        items.append(f"{f.metadata['wire']}={text}")
    return f"{message.OPCODE}({', '.join(items)})"


def sequence_diagram(phase: str) -> str:
    """The frames of one phase of the recorded session as a Mermaid sequence diagram.

    Args:
        phase: a key of :data:`PHASES`.

    Returns:
        A fenced ``mermaid`` block.

    Raises:
        KeyError: ``phase`` is not a phase of the session.
    """
    if phase not in PHASES:
        raise KeyError(f"no phase {phase!r}; the phases are {sorted(PHASES)}")
    participants = {"A": "A", "B": "B", SERVER: "S"}
    lines = [
        "```mermaid",
        "sequenceDiagram",
        "    participant A as node A (10.0.0.1)",
        "    participant S as signaling server",
        "    participant B as node B (10.0.0.2)",
    ]
    steps = [step for step in record_session() if step.phase == phase]
    if not steps:
        raise KeyError(f"the session has no frames in phase {phase!r}")
    for step in steps:
        arrow = f"{participants[step.sender]}->>{participants[step.recipient]}"
        lines.append(f"    {arrow}: {_label(step.message)}")
    return "\n".join(lines) + "\n```\n"


def _transition_table(machine: StateMachine[Any, Any]) -> str:
    rows = ["| state | input | next state |", "| --- | --- | --- |"]
    for (state, event), target in machine.transitions.items():
        rows.append(f"| `{state.value}` | {event.value} | `{target.value}` |")
    return "\n".join(rows)


_MACHINES: Mapping[str, tuple[StateMachine[Any, Any], Any]] = {
    "server-client": (server_states.CLIENT_MACHINE, server_states.render_mermaid),
    "server-alias": (server_states.ALIAS_MACHINE, server_states.render_mermaid),
    "client-join": (client_states.JOIN_MACHINE, server_states.render_mermaid),
    "client-request": (client_states.REQUEST_MACHINE, server_states.render_mermaid),
    "socket": (socket_states.SOCKET_MACHINE, server_states.render_mermaid),
}


def state_machine(name: str) -> str:
    """One state machine of the signaling protocol: its diagram and its table.

    Args:
        name: ``server-client``, ``server-alias``, ``client-join``, ``client-request``
            or ``socket`` (the socket objects' machine, ``protocol.socket_states``).

    Returns:
        A fenced ``mermaid`` block (the machine's ``render_mermaid()`` output)
        followed by a collapsed table of every transition.

    Raises:
        KeyError: unknown name.
    """
    machine, render = _MACHINES[name]
    diagram = render(machine)
    return (
        f"```mermaid\n{diagram}```\n\n"
        f'??? note "Transition table: {machine.name}"\n\n'
        + _indent(_transition_table(machine))
        + "\n"
    )


def socket_refusals() -> str:
    """Every illegal call of a socket object and its errno (``socket_states.REFUSALS``).

    Returns:
        A Markdown table: call, the states refusing it, errno, message detail;
        one row per distinct refusal of a call, in the order of the table.
    """
    rows: dict[tuple[str, int, str], list[str]] = {}
    for (state, call), refusal in socket_states.REFUSALS.items():
        key = (call.value, refusal.errno, refusal.detail or "")
        rows.setdefault(key, []).append(f"`{state.value}`")
    lines = ["| call | in state | errno | message detail |", "| --- | --- | --- | --- |"]
    for (call, code, detail), states in sorted(rows.items(), key=lambda row: row[0][0]):
        name = errno.errorcode[code]
        lines.append(f"| `{call}` | {', '.join(states)} | `{name}` | {detail or '—'} |")
    return "\n".join(lines) + "\n"


def socket_options_table() -> str:
    """The socket options of both socket objects and their effect (``socket_options.OPTIONS``).

    Returns:
        A Markdown table: option, level, values, default, overlay effect, native effect.
    """
    values = {"flag": "0 or 1", "size": "bytes, >= 0", "read-only": "read-only"}
    lines = [
        "| option | level | values | default | on the overlay | on the native fallback |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for option in socket_options.OPTIONS.values():
        default = "`SOCK_STREAM`" if option.name == "SO_TYPE" else f"`{option.default}`"
        lines.append(
            f"| `{option.name}` | `{option.level}` | {values[option.kind]} | {default} "
            f"| {option.effect} | {option.native} |"
        )
    return "\n".join(lines) + "\n"


def stream_state_machine() -> str:
    """The data-plane state machines (``protocol.stream.render_mermaid()``) and their table.

    Returns:
        A fenced ``mermaid`` block and a collapsed transition table.
    """
    rows = ["| side | state | input | next state |", "| --- | --- | --- | --- |"]
    for (side, state, event), target in stream_protocol.TRANSITIONS.items():
        rows.append(f"| {side.value} | `{state.value}` | {event.value} | `{target.value}` |")
    return (
        f"```mermaid\n{stream_protocol.render_mermaid()}```\n\n"
        '??? note "Transition table: byte stream (one per side)"\n\n'
        + _indent("\n".join(rows))
        + "\n"
    )


def frame_types() -> str:
    """The frame types of the data plane (``FrameType``), with their payload sizes.

    Returns:
        A Markdown table: type byte, name, payload.
    """
    payloads = {
        "DATA": "1..`max_message_size - 1` bytes of stream data",
        "EOF": "empty: the sender sends no more DATA (half-close, like TCP FIN)",
        "CREDIT": (
            f"4 bytes, unsigned big-endian, 1..{stream_protocol.MAX_CREDIT}: "
            "the receiver consumed that many more bytes"
        ),
        "RESET": "0..`max_message_size - 1` bytes of UTF-8 reason: abort (like TCP RST)",
    }
    rows = ["| type byte | name | payload |", "| --- | --- | --- |"]
    for frame_type in stream_protocol.FrameType:
        if frame_type.name not in payloads:
            raise RuntimeError(f"FrameType.{frame_type.name} is not described")
        rows.append(f"| `0x{frame_type:02x}` | {frame_type.name} | {payloads[frame_type.name]} |")
    return "\n".join(rows) + "\n"


def _describe_frame(frame: bytes) -> str:
    frame_type = stream_protocol.FrameType(frame[0])
    payload = frame[1:]
    if frame_type is stream_protocol.FrameType.CREDIT:
        return f"CREDIT {int.from_bytes(payload, 'big')}"
    if payload:
        return f"{frame_type.name} {bytes(payload)!r}"
    return frame_type.name


def data_plane_example() -> str:
    """A real exchange between two ``StreamConnection`` objects, frame by frame.

    The window is 8 bytes and the largest message 6 bytes (5 of payload), so
    splitting, waiting for credit, half-close and reset all show in a few frames.

    Returns:
        A Markdown table: who sent the frame, its bytes in hex, what it means.
    """
    options = {"max_message_size": 6, "receive_window": 8, "grant_threshold": 4}
    a = stream_protocol.StreamConnection(**options)
    b = stream_protocol.StreamConnection(**options)
    rows = ["| step | frame (hex) | meaning |", "| --- | --- | --- |"]

    def deliver(sender: str, frames: list[bytes], receiver: Any, note: str) -> list[Any]:
        events: list[Any] = []
        for frame in frames:
            rows.append(f"| {sender}: {note} | `{frame.hex(' ')}` | {_describe_frame(frame)} |")
            events.extend(receiver.receive_frame(frame))
        return events

    events = deliver("A", a.send_data(b"hello, world"), b, "`send_data(b'hello, world')`")
    received = sum(len(e.data) for e in events if isinstance(e, stream_protocol.DataReceived))
    credit = deliver("B", b.consumed(received), a, f"`consumed({received})`")
    del credit
    deliver("A", a.flush(), b, "`flush()` after the credit")
    deliver("A", a.send_eof(), b, "`send_eof()`")
    deliver("B", b.reset("done"), a, "`reset('done')`")
    return "\n".join(rows) + "\n"


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line else "" for line in text.split("\n"))
