"""The wire codec: recorded frames round-trip exactly; garbage raises only RemoteProtocolError.

The garbage tests follow h11's ``fuzz/afl-server.py``: whatever bytes arrive,
:func:`decode` either returns a message or raises
:class:`RemoteProtocolError`, never anything else, for the whole input and
for every prefix of it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unisockets.protocol.errors import LocalProtocolError, RemoteProtocolError
from unisockets.protocol.messages import (
    MAX_CANDIDATE_LENGTH,
    MAX_CONNECTION_ID_LENGTH,
    MAX_SDP_LENGTH,
    MAX_TOKEN_LENGTH,
    MESSAGE_TYPES,
    REJECTED_ID,
    Acknowledged,
    Alias,
    Knock,
    Message,
)
from unisockets.protocol.wire import MAX_MESSAGE_LENGTH, decode, encode

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"


def _recorded_frames() -> list[str]:
    path = VECTORS / "original-session.jsonl"
    if not path.is_file():  # reported by the vectors_dir fixture in the test itself
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [record["frame"] for record in records if "frame" in record]


RECORDED = _recorded_frames()


def check_decode(data: str | bytes) -> Message | None:
    """The afl invariant: decode returns a message that round-trips, or RemoteProtocolError."""
    try:
        message = decode(data)
    except RemoteProtocolError:
        return None
    assert type(message) in MESSAGE_TYPES.values()
    assert decode(encode(message)) == message
    return message


# -- strategies: one for every message type, built from the field kinds ------------

octets = st.integers(0, 255)
ids = st.builds("{}.{}.{}.{}".format, octets, octets, octets, octets)
subnets = st.builds("{}.{}.{}".format, octets, octets, octets)
aliases = st.builds("{}:{}".format, ids, st.integers(0, 65535))


def _bounded_text(limit: int) -> st.SearchStrategy[str]:
    # st.text() never draws lone surrogates, which are rightly invalid (not UTF-8).
    near_limit = st.builds(
        lambda n, c: c * n, st.integers(limit - 2, limit), st.sampled_from("vé😀\x01\\")
    )
    return st.text(min_size=1, max_size=min(limit, 300)) | near_limit


KIND_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "id": ids,
    "subnet": subnets,
    "alias": aliases,
    "bool": st.booleans(),
    "sdp": _bounded_text(MAX_SDP_LENGTH),
    "candidate": _bounded_text(MAX_CANDIDATE_LENGTH),
    "connection_id": _bounded_text(MAX_CONNECTION_ID_LENGTH),
    "rejoin_token": _bounded_text(MAX_TOKEN_LENGTH),
}


def _strategy(cls: type[Message]) -> st.SearchStrategy[Message]:
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        value = KIND_STRATEGIES[f.metadata["kind"]]
        kwargs[f.name] = st.none() | value if f.metadata.get("optional") else value
    return st.builds(cls, **kwargs)


messages: st.SearchStrategy[Message] = st.one_of(
    *(_strategy(cls) for cls in MESSAGE_TYPES.values()),
    st.just(Acknowledged(id=REJECTED_ID, rejected=True)),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


# -- recorded frames ---------------------------------------------------------------


def test_recorded_frames_are_present(vectors_dir: Path) -> None:
    assert vectors_dir == VECTORS
    assert len(RECORDED) >= 25


@pytest.mark.parametrize("frame", RECORDED, ids=lambda f: json.loads(f)["opcode"])
def test_recorded_frame_round_trips_byte_for_byte(frame: str) -> None:
    assert encode(decode(frame)) == frame
    assert encode(decode(frame.encode("utf-8"))) == frame


@pytest.mark.parametrize("frame", RECORDED, ids=lambda f: json.loads(f)["opcode"])
def test_every_prefix_of_a_recorded_frame_raises_only_remote_errors(frame: str) -> None:
    data = frame.encode("utf-8")
    for end in range(len(data)):
        assert check_decode(data[:end]) is None
    assert check_decode(data) is not None


# -- round trips -------------------------------------------------------------------


@given(messages)
def test_decode_inverts_encode(message: Message) -> None:
    text = encode(message)
    assert decode(text) == message
    assert decode(text.encode("utf-8")) == message
    assert encode(decode(text)) == text


@given(messages)
def test_encode_writes_data_then_opcode_and_omits_absent_optionals(message: Message) -> None:
    document = json.loads(encode(message))
    assert list(document) == ["data", "opcode"]
    assert document["opcode"] == message.OPCODE
    assert None not in document["data"].values()


@settings(max_examples=40)
@given(messages)
def test_every_prefix_of_a_generated_frame_raises_only_remote_errors(message: Message) -> None:
    data = encode(message).encode("utf-8")
    for end in range(0, len(data), max(1, len(data) // 200)):
        assert check_decode(data[:end]) is None


WORST_CASE_BY_KIND: dict[str, Any] = {
    "id": "255.255.255.255",
    "subnet": "255.255.255",
    "alias": "255.255.255.255:65535",
    "bool": False,
    "sdp": "\x01" * MAX_SDP_LENGTH,  # JSON writes each as \u0001: 6 bytes per character
    "candidate": "\x01" * MAX_CANDIDATE_LENGTH,
    "connection_id": "\x01" * MAX_CONNECTION_ID_LENGTH,
    "rejoin_token": "\x01" * MAX_TOKEN_LENGTH,
}


@pytest.mark.parametrize("cls", list(MESSAGE_TYPES.values()), ids=lambda c: c.OPCODE)
def test_the_largest_valid_message_of_every_type_fits_the_decode_limit(
    cls: type[Message],
) -> None:
    message = cls(
        **{f.name: WORST_CASE_BY_KIND[f.metadata["kind"]] for f in dataclasses.fields(cls)}
    )
    data = encode(message).encode("utf-8")
    assert len(data) <= MAX_MESSAGE_LENGTH
    assert decode(data) == message


def test_non_ascii_is_written_as_is_and_read_from_utf8() -> None:
    message = Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True, client_connection_id="é😀")
    text = encode(message)
    assert "é😀" in text
    assert decode(text.encode("utf-8")) == message


# -- garbage -----------------------------------------------------------------------


@given(st.text())
def test_arbitrary_text_raises_only_remote_errors(text: str) -> None:
    check_decode(text)


@given(st.binary())
def test_arbitrary_bytes_raise_only_remote_errors(data: bytes) -> None:
    check_decode(data)


@given(json_values)
def test_arbitrary_json_raises_only_remote_errors(value: Any) -> None:
    check_decode(json.dumps(value))


@given(messages, st.data())
def test_mutated_valid_frames_raise_only_remote_errors(
    message: Message, data: st.DataObject
) -> None:
    document = json.loads(encode(message))
    fields = document["data"]
    mutation = data.draw(st.sampled_from(["set", "delete", "add", "opcode", "data", "wrap"]))
    if mutation == "set" and fields:
        key = data.draw(st.sampled_from(sorted(fields)))
        fields[key] = data.draw(
            json_values
            | st.integers(60_000, 70_000).map("x".__mul__)
            | st.sampled_from(["", " 10.0.0.1", "10.0.0.01", "10.0.0.1:65536", "true", 1, 0.5])
        )
    elif mutation == "delete" and fields:
        del fields[data.draw(st.sampled_from(sorted(fields)))]
    elif mutation == "add":
        fields[data.draw(st.text(max_size=12))] = data.draw(json_values)
    elif mutation == "opcode":
        document["opcode"] = data.draw(json_values | st.sampled_from(sorted(MESSAGE_TYPES)))
    elif mutation == "data":
        document["data"] = data.draw(json_values)
    else:
        document = data.draw(st.sampled_from([[document], {"message": document}, [[[document]]]]))
    check_decode(json.dumps(document, ensure_ascii=data.draw(st.booleans())))


@pytest.mark.parametrize(
    "data",
    [
        "[" * 60_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        '{"data":{"subnet":"10.0.0"},"opcode":"knock","x":' + "1" * 5000 + "}",
        '{"data":{"subnet":NaN},"opcode":"knock"}',
        '{"data":{"subnet":Infinity},"opcode":"knock"}',
        "\ufeff" + '{"data":{"subnet":"10.0.0"},"opcode":"knock"}',
        '{"data":{"subnet":"10.0.0"},"opcode":"knock"}\x00',
        b'{"data":{"subnet":"10.0.0"},"opcode":"knock"\xff}',
        '{"data":{"offererId":"10.0.0.1","answererId":"10.0.0.2","offer":"\\ud800"},"opcode":"offer"}',
        '{"data":{"id":"10.0.0.1","rejected":1},"opcode":"acknowledged"}',
        '{"data":{"id":"-1","rejected":false},"opcode":"acknowledged"}',
        '{"data":{"id":"10.0.0.1","alias":"10.0.0.1:1","set":true,"clientConnectionId":""},'
        '"opcode":"alias"}',
        '{"data":[],"opcode":"goodbye"}',
        '{"data":{},"opcode":"__class__"}',
        '{"data":{},"opcode":"toString"}',
    ],
)
def test_known_nasty_inputs_raise_remote_errors(data: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode(data)
    assert info.value.close_code == 1008


@pytest.mark.parametrize("size", [MAX_MESSAGE_LENGTH + 1, 10 * MAX_MESSAGE_LENGTH])
def test_oversize_input_raises_with_close_code_1009(size: int) -> None:
    for data in ("x" * size, b"x" * size):
        with pytest.raises(RemoteProtocolError) as info:
            decode(data)
        assert info.value.close_code == 1009


@pytest.mark.parametrize("data", [None, 7, ["knock"], {"opcode": "knock"}])
def test_non_text_input_raises_remote_error(data: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(data)


def test_unknown_fields_are_ignored_as_original_peers_do() -> None:
    text = '{"data":{"subnet":"10.0.0","extra":[1,{"x":null}]},"opcode":"knock","v":2}'
    assert decode(text) == Knock(subnet="10.0.0")


# -- constructors ------------------------------------------------------------------

INVALID_BY_KIND: dict[str, list[Any]] = {
    "id": [
        "",
        "10.0.0",
        "10.0.0.256",
        "10.0.0.01",
        " 10.0.0.1",
        "10.0.0.1\n",
        "\u0661\u0660.0.0.1",
        1,
        None,
    ],
    "subnet": ["", "10.0.0.1", "10.0", "10.0.256", "010.0.0", 10, None],
    "alias": ["10.0.0.1", "10.0.0.1:", "10.0.0.1:65536", "10.0.0.1:-1", "10.0.0.1:01", 1],
    "bool": [0, 1, "true", None],
    "sdp": ["", "x" * (MAX_SDP_LENGTH + 1), "\ud800", b"v=0", None],
    "candidate": ["", "x" * (MAX_CANDIDATE_LENGTH + 1), "\udfff", 1],
    "connection_id": ["", "x" * (MAX_CONNECTION_ID_LENGTH + 1), "a\ud83db", ["id"]],
    "rejoin_token": ["", "x" * (MAX_TOKEN_LENGTH + 1), "a\ud83db", 7],
}


def _valid_kwargs(cls: type[Message]) -> dict[str, Any]:
    examples = {
        "id": "10.0.0.1",
        "subnet": "10.0.0",
        "alias": "10.0.0.1:1",
        "bool": False,
        "sdp": "v=0\r\n",
        "candidate": "{}",
        "connection_id": "c",
        "rejoin_token": "t",
    }
    return {f.name: examples[f.metadata["kind"]] for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        (cls, f.name, value)
        for cls in MESSAGE_TYPES.values()
        for f in dataclasses.fields(cls)
        for value in INVALID_BY_KIND[f.metadata["kind"]]
        if not (f.metadata.get("optional") and value is None)
    ],
    ids=repr,
)
def test_invalid_constructor_arguments_raise_local_errors(
    cls: type[Message], name: str, value: Any
) -> None:
    kwargs = _valid_kwargs(cls)
    cls(**kwargs)  # the baseline is valid
    kwargs[name] = value
    with pytest.raises(LocalProtocolError):
        cls(**kwargs)


@given(st.sampled_from(list(MESSAGE_TYPES.values())), st.data())
def test_constructors_raise_only_local_errors(cls: type[Message], data: st.DataObject) -> None:
    kwargs = _valid_kwargs(cls)
    name = data.draw(st.sampled_from(sorted(kwargs)))
    kwargs[name] = data.draw(json_values | ids | aliases | subnets)
    try:
        message = cls(**kwargs)
    except LocalProtocolError:
        return
    assert decode(encode(message)) == message


def test_messages_are_frozen_and_keyword_only() -> None:
    knock = Knock(subnet="10.0.0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        knock.subnet = "10.0.1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Knock("10.0.0")  # type: ignore[call-arg]


def test_encode_of_a_non_message_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode({"opcode": "knock"})  # type: ignore[arg-type]
