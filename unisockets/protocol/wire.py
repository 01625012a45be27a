"""The JSON wire format of signaling messages (docs/protocol.md, "Framing").

One WebSocket text frame holds one JSON object
``{"data": {<camelCase fields>}, "opcode": <string>}``. :func:`encode` writes
exactly what the original TypeScript implementation writes (``data`` first,
fields in its order, no spaces, optional fields omitted when absent);
:func:`decode` accepts any JSON object of that shape, ignores fields it does
not know (as original peers do), and turns *every* malformed input into a
:class:`~unisockets.protocol.errors.RemoteProtocolError`.

The relayed messages (``offer``, ``answer``, ``candidate``) as :func:`encode`
writes them take a fast path that scans only their one free-form string and
returns the same message the general path would (validated in full);
:func:`decode_canonical` also says whether a text is exactly what
:func:`encode` would write, so that a server can relay it as it came.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from json import decoder as _json_decoder
from json.encoder import encode_basestring
from typing import Any, Final

from .errors import LocalProtocolError, RemoteProtocolError
from .messages import MESSAGE_TYPES, Answer, Candidate, Message, Offer

__all__ = ["MAX_MESSAGE_LENGTH", "decode", "decode_canonical", "encode"]

#: Longest encoded message :func:`decode` accepts, in bytes (UTF-8) or characters.
MAX_MESSAGE_LENGTH: Final = 64 * 1024

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
#: The string scanner ``json.loads`` parses every JSON string with (the C one); not in typeshed.
_scanstring: Final[Callable[[str, int, bool], tuple[str, int]]] = _json_decoder.scanstring  # type: ignore[attr-defined]


def encode(message: Message) -> str:
    """Encode one message as the text of one WebSocket frame.

    Args:
        message: any message of :mod:`unisockets.protocol.messages`.

    Returns:
        The JSON text, e.g. ``'{"data":{"subnet":"10.0.0"},"opcode":"knock"}'``.

    Raises:
        LocalProtocolError: ``message`` is not a signaling message.
    """
    if type(message) not in _FIELDS:
        raise LocalProtocolError(f"not a signaling message: {message!r:.80}")
    data: dict[str, Any] = {}
    for name, wire, _optional in _FIELDS[type(message)]:
        value = getattr(message, name)
        if value is not None:
            data[wire] = value
    return _ENCODER.encode({"data": data, "opcode": message.OPCODE})


def decode_canonical(text: str | bytes) -> tuple[Message, bool]:
    """Decode like :func:`decode`, and tell whether ``text`` is exactly what :func:`encode` writes.

    A relay can then pass the text on as it came instead of encoding the
    message again. Known cheaply only for the relayed messages (``offer``,
    ``answer``, ``candidate``) written as :func:`encode` writes them, which is
    what nodes send: there the JSON is not parsed as a whole, only its one
    free-form string is (by :mod:`json`'s own string scanner); the message is
    validated in full as always.

    Args:
        text: the frame's payload, as ``str`` or as UTF-8 ``bytes``.

    Returns:
        ``(message, canonical)``: the validated message, and ``True`` only if
        ``text == encode(message)`` (``False`` means "not known").

    Raises:
        RemoteProtocolError: exactly as :func:`decode`.
    """
    if type(text) is str and len(text) <= MAX_MESSAGE_LENGTH:
        relay = _decode_relay(text)
        if relay is not None:
            return relay
    return _decode(text), False


def decode(text: str | bytes) -> Message:
    """Decode the text of one WebSocket frame into a message.

    Args:
        text: the frame's payload, as ``str`` or as UTF-8 ``bytes``.

    Returns:
        The validated message.

    Raises:
        RemoteProtocolError: for anything that is not a valid message: a
            payload over :data:`MAX_MESSAGE_LENGTH` (``close_code`` 1009),
            invalid UTF-8, invalid JSON, not an object, an unknown opcode,
            missing fields, fields of the wrong type or out of range. Nothing
            else is ever raised.
    """
    if type(text) is str and len(text) <= MAX_MESSAGE_LENGTH:
        relay = _decode_relay(text)
        if relay is not None:
            return relay[0]
    return _decode(text)


def _decode(text: str | bytes) -> Message:
    """:func:`decode` in general: parse the JSON document, then build (and validate) the message."""
    if not isinstance(text, str | bytes | bytearray | memoryview):
        raise RemoteProtocolError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise RemoteProtocolError(
            f"message of {len(text)} exceeds {MAX_MESSAGE_LENGTH}", close_code=1009
        )
    try:
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8")
        document = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"not a JSON message: {exc}") from None
    if not isinstance(document, dict):
        raise RemoteProtocolError("a message must be a JSON object")
    opcode = document.get("opcode")
    data = document.get("data")
    if not isinstance(opcode, str) or opcode not in MESSAGE_TYPES:
        raise RemoteProtocolError(f"unknown opcode {opcode!r:.40}")
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"{opcode}: 'data' must be a JSON object")
    cls = MESSAGE_TYPES[opcode]
    kwargs: dict[str, Any] = {}
    for name, wire, optional in _FIELDS[cls]:
        if wire in data:
            kwargs[name] = data[wire]
        elif not optional:
            raise RemoteProtocolError(f"{opcode}: missing field {wire!r}")
    try:
        return cls(**kwargs)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"{opcode}: {exc}") from None


#: ``{"data":{"offererId":"<id>","answererId":"<id>","<opcode>":"`` as :func:`encode` writes
#: ``offer``, ``answer`` and ``candidate`` (ids hold only digits and dots, so no escapes).
_RELAY_HEAD: Final = re.compile(
    r'\{"data":\{"offererId":"([0-9.]{1,15})","answererId":"([0-9.]{1,15})",'
    r'"(offer|answer|candidate)":"'
)
#: What follows the last field's string, per opcode.
_RELAY_TAIL: Final = {op: f'}},"opcode":"{op}"}}' for op in ("offer", "answer", "candidate")}


def _decode_relay(text: str) -> tuple[Message, bool] | None:
    """The fast path of :func:`decode_canonical`: ``None`` unless ``text`` has the relay shape.

    ``None`` also for that shape with invalid values: the general path then
    raises its usual error. Where this returns a message, the general path
    returns an equal one (same JSON string scanner, same constructor).
    """
    match = _RELAY_HEAD.match(text)
    if match is None:
        return None
    opcode = match.group(3)
    start = match.end()
    try:
        value, end = _scanstring(text, start, True)
    except ValueError:  # json.JSONDecodeError: an unterminated string, a raw control character
        return None
    if text[end:] != _RELAY_TAIL[opcode]:
        return None
    offerer, answerer = match.group(1), match.group(2)
    message: Message
    try:
        if opcode == "candidate":
            message = Candidate(offerer_id=offerer, answerer_id=answerer, candidate=value)
        elif opcode == "offer":
            message = Offer(offerer_id=offerer, answerer_id=answerer, offer=value)
        else:
            message = Answer(offerer_id=offerer, answerer_id=answerer, answer=value)
    except LocalProtocolError:
        return None
    # encode() writes every string with this very function (JSONEncoder, ensure_ascii=False)
    return message, encode_basestring(value) == text[start - 1 : end]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


#: For each message class: (python name, wire name, optional) of its fields, in wire order.
_FIELDS: Final[dict[type, tuple[tuple[str, str, bool], ...]]] = {
    cls: tuple(
        (f.name, f.metadata["wire"], bool(f.metadata.get("optional")))
        for f in dataclasses.fields(cls)
    )
    for cls in MESSAGE_TYPES.values()
}
