"""The relay fast path of the wire format: same results as the general decoder, and canonicity.

:func:`~unisockets.protocol.wire.decode_canonical` (and :func:`decode`, which
shares its fast path) must return exactly what the general JSON path
returns, or raise the same error, for *any* input; and it may only call a
text canonical when re-encoding the message gives that very text.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unisockets.protocol import Answer, Candidate, Message, Offer, RemoteProtocolError
from unisockets.protocol.wire import _decode, decode, decode_canonical, encode

ids = st.ip_addresses(v=4).map(str)
strings = st.text(min_size=1, max_size=300)
relays = st.one_of(
    st.builds(Offer, offerer_id=ids, answerer_id=ids, offer=strings),
    st.builds(Answer, offerer_id=ids, answerer_id=ids, answer=strings),
    st.builds(Candidate, offerer_id=ids, answerer_id=ids, candidate=strings),
)


def _general(text: str) -> Message | str:
    """What the general path makes of ``text``: the message, or its error's text."""
    try:
        return _decode(text)
    except RemoteProtocolError as exc:
        return f"error: {exc}"


def _fast(text: str) -> Message | str:
    try:
        message, canonical = decode_canonical(text)
    except RemoteProtocolError as exc:
        return f"error: {exc}"
    if canonical:
        assert encode(message) == text
    assert decode(text) == message
    return message


@given(relays)
def test_an_encoded_relay_is_canonical(message: Message) -> None:
    text = encode(message)
    assert decode_canonical(text) == (message, True)
    assert decode(text) == message


@given(relays, st.booleans())
def test_other_spellings_of_a_relay_decode_the_same_but_are_not_called_canonical(
    message: Message, ascii_only: bool
) -> None:
    text = encode(message)
    document = json.loads(text)
    respelled = json.dumps(document, ensure_ascii=ascii_only, separators=(",", ": "))
    assert decode_canonical(respelled) == (message, respelled == text)
    escaped = text.replace(',"opcode"', ',"opc\\u006fde"')
    assert decode_canonical(escaped) == (message, False)


@given(relays, st.data())
def test_mutated_relays_get_what_the_general_path_gives(
    message: Message, data: st.DataObject
) -> None:
    text = encode(message)
    position = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(st.sampled_from(["", '"', "\\", "}", "0", ".", "\x01", "\\u0000", " "]))
    mutated = text[:position] + insert + text[position + cut :]
    assert _fast(mutated) == _general(mutated)


@pytest.mark.parametrize(
    "text",
    [
        '{"data":{"offererId":"10.0.0.1","answererId":"10.0.0.2","candidate":"x"},"opcode":"offer"}',
        '{"data":{"offererId":"10.0.0.01","answererId":"10.0.0.2","offer":"x"},"opcode":"offer"}',
        '{"data":{"offererId":"10.0.0.1","answererId":"10.0.0.2","offer":""},"opcode":"offer"}',
        '{"data":{"offererId":"10.0.0.1","answererId":"10.0.0.2","offer":"\\ud800"},"opcode":"offer"}',
        '{"data":{"offererId":"10.0.0.1","answererId":"10.0.0.2","offer":"x\n"},"opcode":"offer"}',
        '{"data":{"offererId":"10.0.0.1","answererId":"10.0.0.2","offer":"x"},"opcode":"offer"} ',
        '{"data":{"offererId":"10.0.0.1","answererId":"10.0.0.2","answer":"x"},"opcode":"answer"}',
    ],
)
def test_near_misses_get_what_the_general_path_gives(text: str) -> None:
    assert _fast(text) == _general(text)


@pytest.mark.parametrize(
    ("escape", "canonical"),
    [
        ('\\"', True),
        ("\\\\", True),
        ("\\n", True),
        ("\\u001f", True),  # what encode() writes for U+001F
        ("é", True),
        ("\\/", False),  # the same strings, spelled otherwise
        ("\\u0041", False),
        ("\\u00e9", False),
        ("\\u001F", False),
        ("\\u0008", False),  # encode() writes \b
        ("\\ud83d\\ude00", False),
    ],
)
def test_only_the_escapes_encode_writes_are_canonical(escape: str, canonical: bool) -> None:
    text = encode(Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate="x"))
    text = text.replace('"candidate":"x"', f'"candidate":"x{escape}"')
    value = "x" + json.loads(f'"{escape}"')
    message = Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate=value)
    assert decode_canonical(text) == (message, canonical)
    assert (encode(message) == text) is canonical
