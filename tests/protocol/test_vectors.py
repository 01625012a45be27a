"""Replays the recorded original session against SignalingServerProtocol.

shared/vectors/original-session.jsonl holds every frame between two original
nodes and the original TypeScript server. Fed the client frames and the
open/close events in file order, our server (configured with the original's
suffix range 0..255) must send exactly the recorded server frames, byte for
byte, to the same connections, in the same order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.wire import encode


def _records(vectors_dir: Path) -> list[dict[str, Any]]:
    lines = (vectors_dir / "original-session.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_replay_of_the_recorded_session_sends_the_recorded_frames(vectors_dir: Path) -> None:
    records = _records(vectors_dir)
    server: SignalingServerProtocol[str] = SignalingServerProtocol(suffixes=range(0, 256))
    sent: list[tuple[str, str]] = []
    for record in records:
        conn = record["conn"]
        if record.get("event") == "open":
            sent.extend((k, encode(m)) for k, m in server.client_connected(conn))
        elif record.get("event") == "close":
            sent.extend((k, encode(m)) for k, m in server.client_disconnected(conn))
        elif record["dir"] == "client->server":
            sent.extend((k, encode(m)) for k, m in server.receive_data(conn, record["frame"]))
    expected = [
        (record["conn"], record["frame"])
        for record in records
        if record.get("dir") == "server->client"
    ]
    assert sent == expected


def test_recorded_session_has_frames_of_both_directions(vectors_dir: Path) -> None:
    """Guards the replay test against an empty or truncated vector file."""
    records = _records(vectors_dir)
    directions = [record.get("dir") for record in records]
    assert directions.count("server->client") >= 15
    assert directions.count("client->server") >= 10
    assert {record["conn"] for record in records} == {"ws1", "ws2"}


@pytest.mark.parametrize("as_bytes", [False, True])
def test_replay_never_sends_a_frame_before_its_cause(vectors_dir: Path, as_bytes: bool) -> None:
    """Each recorded server frame was already produced when it was recorded.

    Stronger than comparing the whole sequence at the end: our answers queue
    up as inputs are fed, and every recorded server frame must be the head of
    that queue at its place in the file (the original sent some answers late,
    after a later input, so the queue may hold more than one run). Run with
    str and with UTF-8 bytes input.
    """
    records = _records(vectors_dir)
    server: SignalingServerProtocol[str] = SignalingServerProtocol(suffixes=range(0, 256))
    queue: list[tuple[str, str]] = []
    for record in records:
        if record.get("dir") == "server->client":
            assert queue, f"recorded frame not (yet) sent by us: {record['frame']}"
            assert queue.pop(0) == (record["conn"], record["frame"])
            continue
        conn = record["conn"]
        if record.get("event") == "open":
            out = server.client_connected(conn)
        elif record.get("event") == "close":
            out = server.client_disconnected(conn)
        else:
            frame: str = record["frame"]
            out = server.receive_data(conn, frame.encode() if as_bytes else frame)
        queue.extend((k, encode(m)) for k, m in out)
    assert queue == []
    assert server.members == {}
    assert server.aliases == {}
