"""The JSON wire format of signaling messages (shared/PROTOCOL.md, "Framing").

One WebSocket text frame holds one JSON object
``{"data": {<camelCase fields>}, "opcode": <string>}``. :func:`encode` writes
exactly what the original TypeScript implementation writes (``data`` first,
fields in its order, no spaces, optional fields omitted when absent);
:func:`decode` accepts any JSON object of that shape, ignores fields it does
not know (as original peers do), and turns *every* malformed input into a
:class:`~unisockets.protocol.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from .errors import LocalProtocolError, RemoteProtocolError
from .messages import MESSAGE_TYPES, Message

__all__ = ["MAX_MESSAGE_LENGTH", "decode", "encode"]

#: Longest encoded message :func:`decode` accepts, in bytes (UTF-8) or characters.
MAX_MESSAGE_LENGTH: Final = 64 * 1024

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


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
