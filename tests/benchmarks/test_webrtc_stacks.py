"""``benchmarks.webrtc_stacks`` starts, reports its rows and ratios, and its lossy path loses.

The script runs as users run it (``python -m benchmarks.webrtc_stacks --quick
--lossy``) in a subprocess; it asserts no speed. The node rows need npm
packages that CI does not install: when the script reports them skipped (no
node, no registry, no prebuilt binary), the test accepts that, and checks every
row that did run. The relay's candidate rewriting and the TUN path's checksum
update are checked directly.
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import lossy_relay, lossy_tun
from unisockets.transport.native_rtc import native_available

ROOT = Path(__file__).resolve().parents[2]
HANG = 900  # seconds: only to turn a hang into a failure
#: Rows whose third-party stack may fail a run on a loaded machine (docs/benchmarks.md):
#: @roamhq/wrtc lost messages and events; node-datachannel once never opened a channel.
FLAKY = {"ndc", "wrtc"}
ROW_LABELS = {
    "tcp": "trio TCP",
    "ndc": "libdatachannel (node-datachannel)",
    "wrtc": "libwebrtc (@roamhq/wrtc)",
    "aiortc": "raw aiortc",
    "webrtc": "unisockets (aiortc)",
    "native-rtc": "unisockets (native backend)",
    "str0m": "raw str0m (native transport)",
}


def _row(stdout: str, label: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(f"  {label}  ")]

    assert len(lines) == 1, f"{label!r} not once in:\n{stdout}"
    return lines[0]


@pytest.mark.slow
@pytest.mark.timeout(HANG)
def test_script_reports_every_row_with_ratios_and_a_lossy_column() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.webrtc_stacks", "--quick", "--lossy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    output = result.stdout + result.stderr
    failed = set(re.findall(r", 2p, (\S+): FAILED|   (\S+): lossy FAILED", result.stderr))
    failed_rows = {name for pair in failed for name in pair if name}
    # a node stack's own failure is reported by the script, and is not this project's
    assert failed_rows <= FLAKY, output
    assert result.returncode == (1 if failed_rows else 0), output
    assert re.search(r"bulk +RTT p50 +RTT p99 +set-up +lossy", result.stdout), output
    no_tun = "no TUN path for TCP" in result.stdout  # not root: kernel TCP cannot meet the loss
    expected_gaps = {"tcp": int(no_tun), "aiortc": 0, "webrtc": 1}  # webrtc: no lossy cell
    for key, gaps in expected_gaps.items():
        assert _row(result.stdout, ROW_LABELS[key]).split().count("n/a") == gaps, output
    for key in ("ndc", "wrtc"):
        if f"  skipped: {ROW_LABELS[key]} (" not in result.stdout and key not in failed_rows:
            assert "n/a" not in _row(result.stdout, ROW_LABELS[key]), output
    if native_available():  # the native core is built (cargo was there): its row is measured
        assert _row(result.stdout, ROW_LABELS["native-rtc"]).split().count("n/a") == 1, output
        # raw str0m: no set-up cell, its lossy cell is the native backend's
        assert _row(result.stdout, ROW_LABELS["str0m"]).split().count("n/a") == 1, output
        lossy_ratio = r"lossy / trio TCP: .*raw str0m \(native transport\) [0-9.]+x"
        assert no_tun or re.search(lossy_ratio, result.stdout), output
    else:
        for key in ("native-rtc", "str0m"):
            assert f"  skipped: {ROW_LABELS[key]} (not built" in result.stdout, output
    assert "bulk / trio TCP: " in result.stdout, output
    assert no_tun or re.search(r"lossy / trio TCP: .*raw aiortc [0-9.]+x", result.stdout), output


def test_candidates_point_at_the_relay_and_tcp_candidates_go() -> None:
    sdp = (
        "v=0\r\n"
        "a=candidate:1 1 UDP 2130706431 127.0.0.1 40000 typ host\r\n"
        "a=candidate:2 1 TCP 1518280447 127.0.0.1 9 typ host tcptype active\r\n"
        "a=end-of-candidates\r\n"
    )
    relay_of = {("127.0.0.1", 40000): ("127.0.0.1", 50000)}
    assert lossy_relay.candidate_addresses(sdp) == [("127.0.0.1", 40000)]
    assert lossy_relay.rewrite_candidates(sdp, relay_of) == (
        "v=0\r\na=candidate:1 1 UDP 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"
    )
    single = "candidate:842163049 1 udp 1677729535 127.0.0.1 40000 typ host generation 0"
    assert lossy_relay.rewrite_candidates(single, relay_of).endswith(
        "127.0.0.1 50000 typ host generation 0"
    )
    tcp = "candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active"
    assert lossy_relay.rewrite_candidates(tcp, relay_of) == ""
    ipv6 = "candidate:4 1 udp 2122262783 fd00::2 41234 typ host generation 0"
    assert lossy_relay.candidate_addresses(ipv6) == []
    assert lossy_relay.rewrite_candidates(ipv6, relay_of) == ""
    with pytest.raises(KeyError):
        lossy_relay.rewrite_candidates(single.replace("40000", "40001"), relay_of)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _tcp_packet(src: str, dst: str, payload: bytes) -> bytes:
    tcp = bytearray(struct.pack("!HHIIBBHHH", 40000, 5000, 1, 0, 5 << 4, 0x18, 65535, 0, 0))
    tcp += payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp[16:18] = _checksum(pseudo + bytes(tcp)).to_bytes(2, "big")
    ip = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(tcp),
            7,
            0x4000,
            64,
            6,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
    )
    ip[10:12] = _checksum(bytes(ip)).to_bytes(2, "big")
    return bytes(ip + tcp)


def test_readdressed_packets_carry_the_checksums_a_fresh_packet_would() -> None:
    before = _tcp_packet("10.201.3.1", "10.201.3.2", b"payload of odd length")
    after = lossy_tun.readdress(
        before, socket.inet_aton("10.202.3.2") + socket.inet_aton("10.202.3.1")
    )
    assert after == _tcp_packet("10.202.3.2", "10.202.3.1", b"payload of odd length")
    assert lossy_tun.readdress(b"\x60" + bytes(39), bytes(8)) == b"\x60" + bytes(39)  # IPv6: as is
