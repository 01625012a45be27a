"""Messages and events validate every field exactly as the generic per-field validation did.

Construction checks each field against a table built once per class (not
``dataclasses.fields`` per instance). The oracle here is the generic rule
the classes used to run, written from the field metadata alone: for any
arguments, the constructor must accept exactly what the oracle accepts and
reject the rest with the same :class:`LocalProtocolError` message.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unisockets.protocol import events
from unisockets.protocol.addresses import is_alias, is_id, is_subnet
from unisockets.protocol.errors import LocalProtocolError
from unisockets.protocol.events import Request, RequestKind
from unisockets.protocol.messages import (
    MAX_CANDIDATE_LENGTH,
    MAX_CONNECTION_ID_LENGTH,
    MAX_SDP_LENGTH,
    MAX_TOKEN_LENGTH,
    MESSAGE_TYPES,
    REJECTED_ID,
    Acknowledged,
    Alias,
    Candidate,
    Connect,
    Knock,
    Offer,
    Shutdown,
)

EVENT_TYPES: list[type[Any]] = [*typing.get_args(events.Event), Request]

# -- the oracle: the generic per-field rule, from the metadata alone ------------------------

LIMITS = {
    "sdp": MAX_SDP_LENGTH,
    "candidate": MAX_CANDIDATE_LENGTH,
    "connection_id": MAX_CONNECTION_ID_LENGTH,
    "rejoin_token": MAX_TOKEN_LENGTH,
}
ADDRESS_RULES = {
    "id": (is_id, "a dotted IPv4 id"),
    "subnet": (is_subnet, "a three-octet subnet"),
    "alias": (is_alias, "an ipv4:port alias"),
}


def message_error(cls: type[Any], kwargs: dict[str, Any]) -> str | None:
    """The error the generic validation gives a message built from ``kwargs``, or None."""
    if cls is Acknowledged and kwargs["rejected"] is True and kwargs["id"] == REJECTED_ID:
        return None
    for f in dataclasses.fields(cls):
        value, kind = kwargs.get(f.name), f.metadata["kind"]
        if value is None and f.metadata.get("optional"):
            continue
        if kind in ADDRESS_RULES:
            valid, what = ADDRESS_RULES[kind]
            if not valid(value):
                return f"{f.name} must be {what}, got {value!r:.80}"
        elif kind == "bool":
            if type(value) is not bool:
                return f"{f.name} must be a boolean, got {value!r:.80}"
        else:
            limit = LIMITS[kind]
            if type(value) is not str:
                return f"{f.name} must be a string, not {type(value).__name__}"
            if not 0 < len(value) <= limit:
                return f"{f.name} must be 1..{limit} characters, got {len(value)}"
            if re.search("[\ud800-\udfff]", value):
                return f"{f.name} holds a lone surrogate, which is not valid Unicode"
    return None


EVENT_RULES = {
    "id": is_id,
    "alias": is_alias,
    "subnet": is_subnet,
    "text": lambda value: type(value) is str and len(value) > 0,
    "reason": lambda value: type(value) is str,
}


def event_field_error(cls: type[Any], kwargs: dict[str, Any]) -> str | None:
    """The error the generic validation gives the ``kind`` fields of an event, or None."""
    for f in dataclasses.fields(cls):
        if "kind" in f.metadata and not EVENT_RULES[f.metadata["kind"]](kwargs[f.name]):
            return f"{f.name} must be a valid {f.metadata['kind']}, got {kwargs[f.name]!r:.80}"
    return None


def outcome(build: Any) -> str | None:
    try:
        build()
    except LocalProtocolError as exc:
        return str(exc)
    return None


# -- strategies ---------------------------------------------------------------------------

octets = st.integers(0, 255)
ids = st.builds("{}.{}.{}.{}".format, octets, octets, octets, octets)
subnets = st.builds("{}.{}.{}".format, octets, octets, octets)
aliases = st.builds("{}:{}".format, ids, st.integers(0, 70000))
#: Values just beside the rules, and of the wrong type.
NEAR_MISSES: list[Any] = [
    *("", "10.0.0", "10.0.0.01", "10.0.0.1:", "10.0.0.1:01", " 10.0.0.1", REJECTED_ID),
    *("\ud800", "é\udfff", "é", "x" * (MAX_SDP_LENGTH + 1), "x" * 2049, "x" * 129),
    *(None, 0, 1, True, b"v=0", 1.0, ["x"]),
]
near_misses = st.sampled_from(NEAR_MISSES)


def _long(limit: int) -> st.SearchStrategy[str]:
    return st.builds(lambda n, c: c * n, st.integers(limit - 1, limit + 1), st.sampled_from("aé"))


anything = (
    st.none()
    | st.booleans()
    | st.integers(-1, 2)
    | st.text(max_size=20)  # never a lone surrogate: NEAR_MISSES has those
    | ids
    | subnets
    | aliases
    | near_misses
    | st.lists(st.text(max_size=3), max_size=2)
    | st.sampled_from([REJECTED_ID, b"v=0", 1.0])
)
strings = anything | _long(MAX_SDP_LENGTH) | _long(MAX_CANDIDATE_LENGTH) | _long(128)


#: Values valid for each field kind (messages' and events' kinds).
VALID_BY_KIND: dict[str, st.SearchStrategy[Any]] = {
    "id": ids,
    "subnet": subnets,
    "alias": aliases.filter(is_alias),
    "bool": st.booleans(),
    "sdp": st.text(min_size=1, max_size=30) | st.just("v=0 é 😀"),
    "candidate": st.text(min_size=1, max_size=30),
    "connection_id": st.text(min_size=1, max_size=30),
    "rejoin_token": st.text(min_size=1, max_size=30),
    "text": st.text(min_size=1, max_size=30),
    "reason": st.text(max_size=30),
}


def _value(kind: str) -> st.SearchStrategy[Any]:
    """Mostly valid values, so that later fields and whole valid objects are reached too."""
    valid = VALID_BY_KIND[kind]
    return st.one_of(valid, valid, near_misses, strings)


def _kwargs(cls: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {f.name: _value(f.metadata["kind"]) for f in dataclasses.fields(cls)}
    )


REQUEST = Request(kind=RequestKind.BIND, alias="10.0.0.1:1", number=1)


# -- messages -----------------------------------------------------------------------------


@settings(max_examples=500)
@given(
    st.sampled_from(list(MESSAGE_TYPES.values())).flatmap(
        lambda c: st.tuples(st.just(c), _kwargs(c))
    )
)
def test_messages_accept_and_reject_exactly_as_the_generic_rule(
    case: tuple[type[Any], dict[str, Any]],
) -> None:
    cls, kwargs = case
    assert outcome(lambda: cls(**kwargs)) == message_error(cls, kwargs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Knock(subnet="10.0.0.1"), "subnet must be a three-octet subnet, got '10.0.0.1'"),
        (
            lambda: Offer(offerer_id="10.0.0.1", answerer_id="1", offer="v"),
            "answerer_id must be a dotted IPv4 id, got '1'",
        ),
        (
            lambda: Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer=""),
            f"offer must be 1..{MAX_SDP_LENGTH} characters, got 0",
        ),
        (
            lambda: Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate=b"{}"),
            "candidate must be a string, not bytes",
        ),
        (
            lambda: Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate="é\udfff"),
            "candidate holds a lone surrogate, which is not valid Unicode",
        ),
        (
            lambda: Alias(id="10.0.0.1", alias="10.0.0.1:1", set=1),
            "set must be a boolean, got 1",
        ),
        (
            lambda: Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True, is_connection_alias=0),
            "is_connection_alias must be a boolean, got 0",
        ),
        (
            lambda: Connect(id="10.0.0.1", client_connection_id="c", remote_alias="10.0.0.1:65536"),
            "remote_alias must be an ipv4:port alias, got '10.0.0.1:65536'",
        ),
        (
            lambda: Acknowledged(id=REJECTED_ID, rejected=False),
            "id must be a dotted IPv4 id, got '-1'",
        ),
    ],
)
def test_message_errors_name_the_field_and_the_rule(build: Any, message: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        build()
    assert str(info.value) == message


def test_non_ascii_strings_without_surrogates_are_valid() -> None:
    sdp = "v=0 é 😀 \x01"
    assert Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer=sdp).offer == sdp
    alias = Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True, client_connection_id="é")
    assert alias.client_connection_id == "é"
    assert alias.is_connection_alias is None


_VALID = {
    "id": "10.0.0.1",
    "subnet": "10.0.0",
    "alias": "10.0.0.1:1",
    "bool": True,
    "sdp": "v=0",
    "candidate": "{}",
    "connection_id": "c",
    "rejoin_token": "t",
}


@pytest.mark.parametrize("cls", list(MESSAGE_TYPES.values()), ids=lambda c: c.OPCODE)
def test_every_near_miss_in_every_field_is_judged_as_the_generic_rule(cls: type[Any]) -> None:
    for f in dataclasses.fields(cls):
        for value in [*NEAR_MISSES, "x" * MAX_SDP_LENGTH]:
            kwargs = {g.name: _VALID[g.metadata["kind"]] for g in dataclasses.fields(cls)}
            kwargs[f.name] = value
            got = outcome(lambda kwargs=kwargs: cls(**kwargs))
            assert got == message_error(cls, kwargs), (f.name, value)


def test_every_message_field_is_checked() -> None:
    for cls in MESSAGE_TYPES.values():
        for f in dataclasses.fields(cls):
            kwargs = {g.name: _VALID[g.metadata["kind"]] for g in dataclasses.fields(cls)}
            cls(**kwargs)
            kwargs[f.name] = ["not", "valid"]
            with pytest.raises(LocalProtocolError, match=f"^{f.name} "):
                cls(**kwargs)


# -- events -------------------------------------------------------------------------------


def _event_kwargs(cls: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    fixed = {
        "request": REQUEST,
        "undo": Shutdown(id="10.0.0.1", alias="10.0.0.1:1"),
        "member_address": False,
    }
    return st.fixed_dictionaries(
        {
            f.name: _value(f.metadata["kind"]) if "kind" in f.metadata else st.just(fixed[f.name])
            for f in dataclasses.fields(cls)
        }
    )


@settings(max_examples=500)
@given(
    st.sampled_from([cls for cls in EVENT_TYPES if cls is not Request]).flatmap(
        lambda c: st.tuples(st.just(c), _event_kwargs(c))
    )
)
def test_events_accept_and_reject_exactly_as_the_generic_rule(
    case: tuple[type[Any], dict[str, Any]],
) -> None:
    cls, kwargs = case
    assert outcome(lambda: cls(**kwargs)) == event_field_error(cls, kwargs)


@settings(max_examples=500)
@given(strings)
def test_request_checks_its_alias_first(alias: Any) -> None:
    expected = event_field_error(Request, {"alias": alias})
    assert outcome(lambda: Request(kind=RequestKind.BIND, alias=alias, number=1)) == expected
    assert outcome(lambda: Request(kind="bind", alias=alias, number=1)) == (  # type: ignore[arg-type]
        expected or "kind must be a RequestKind, got 'bind'"
    )


def test_every_event_field_with_a_kind_is_checked() -> None:
    valid = {"id": "10.0.0.1", "alias": "10.0.0.1:1", "subnet": "10.0.0", "text": "t", "reason": ""}
    fixed = {
        "request": REQUEST,
        "undo": Shutdown(id="10.0.0.1", alias="10.0.0.1:1"),
        "kind": RequestKind.BIND,
        "number": 1,
        "connection_id": None,
        "member_address": False,
    }
    checked = 0
    for cls in EVENT_TYPES:
        fields = dataclasses.fields(cls)
        base = {
            f.name: valid[f.metadata["kind"]] if "kind" in f.metadata else fixed[f.name]
            for f in fields
        }
        cls(**base)
        for f in fields:
            if "kind" not in f.metadata:
                continue
            with pytest.raises(LocalProtocolError, match=f"^{f.name} must be a valid "):
                cls(**{**base, f.name: 7})
            checked += 1
    assert checked >= 30
