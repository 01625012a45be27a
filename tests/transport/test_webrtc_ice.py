"""ICE helpers: host-address choice per loop, candidate JSON both ways."""

from __future__ import annotations

import asyncio
import json

import aioice.ice
import pytest

from unisockets.transport import webrtc_ice
from unisockets.transport.webrtc_ice import (
    candidate_from_json,
    candidate_to_json,
    install_aioice_tuning,
    local_candidates,
    set_host_addresses,
)

LINE = "candidate:16572de6 1 udp 2130706431 127.0.0.1 43883 typ host"
SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=application 43883 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 127.0.0.1\r\n"
    "a=mid:0\r\na=sctp-port:5000\r\n"
    "a=candidate:16572de6 1 udp 2130706431 127.0.0.1 43883 typ host\r\n"
    "a=candidate:26572de6 1 udp 2130706431 192.0.2.7 40000 typ host\r\n"
    "a=end-of-candidates\r\na=ice-ufrag:PxQW\r\na=ice-pwd:ZRzF2Iul3PmajFFajtOEa4\r\n"
    "a=fingerprint:sha-256 98:81:4D:8C:EB:42:FF:FC:02:D5:AD:42:7F:CC:A7:2F:F5:6A:F2:53:4A:"
    "61:B3:19:65:BC:27:AB:9B:68:12:DF\r\na=setup:actpass\r\n"
)


def test_candidate_json_round_trip_as_browsers_send_it() -> None:
    text = json.dumps(
        {"candidate": LINE, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "PxQW"}
    )
    parsed = candidate_from_json(text)
    assert parsed is not None
    candidate, ufrag = parsed
    assert (candidate.ip, candidate.port, candidate.type, ufrag) == (
        "127.0.0.1",
        43883,
        "host",
        "PxQW",
    )
    assert (candidate.sdpMid, candidate.sdpMLineIndex) == ("0", 0)
    back = json.loads(
        candidate_to_json(candidate, sdp_mid="0", sdp_mline_index=0, username_fragment="PxQW")
    )
    assert back == json.loads(text)


def test_local_candidates_lists_every_sdp_candidate() -> None:
    found = [json.loads(text) for text in local_candidates(SDP)]
    assert [item["candidate"].split()[4] for item in found] == ["127.0.0.1", "192.0.2.7"]
    assert {
        (item["sdpMid"], item["sdpMLineIndex"], item["usernameFragment"]) for item in found
    } == {("0", 0, "PxQW")}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        "null",
        '{"candidate": 5}',
        '{"sdpMid": "0"}',
        '{"candidate": "candidate:1 1"}',
    ],
)
def test_bad_candidate_json_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        candidate_from_json(text)


def test_end_of_candidates_and_missing_mid() -> None:
    assert candidate_from_json('{"candidate": ""}') is None
    parsed = candidate_from_json(json.dumps({"candidate": LINE}))
    assert parsed is not None
    assert parsed[0].sdpMLineIndex == 0  # our single m= line
    assert parsed[1] is None


def test_host_addresses_apply_per_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    install_aioice_tuning()
    assert aioice.ice.get_host_addresses is webrtc_ice._get_host_addresses
    monkeypatch.setattr(webrtc_ice, "_original_get_host_addresses", lambda **_: [])

    async def gathered() -> list[str]:
        return list(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))

    unregistered = asyncio.new_event_loop()
    loopback_only = asyncio.new_event_loop()
    default = asyncio.new_event_loop()
    try:
        set_host_addresses(loopback_only, ["127.0.0.1", "::1"])
        set_host_addresses(default, None)
        assert unregistered.run_until_complete(gathered()) == []  # aioice's own answer
        assert loopback_only.run_until_complete(gathered()) == ["127.0.0.1", "::1"]
        # a machine with only loopback: the default falls back to 127.0.0.1
        assert default.run_until_complete(gathered()) == ["127.0.0.1"]
    finally:
        for loop in (unregistered, loopback_only, default):
            loop.close()


@pytest.mark.parametrize("addresses", [[], "127.0.0.1", ["localhost"], ["10.0.0.300"]])
def test_bad_host_addresses_raise_value_error(addresses: object) -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError):
            set_host_addresses(loop, addresses)  # type: ignore[arg-type]
    finally:
        loop.close()
